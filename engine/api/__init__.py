"""The ray.workflow functions a driver calls: ``init`` (``_init``), run, resume, outputs,
status, metadata and continuation (``_workflows``), and ``send_event`` (``_events``).
Re-exported by :mod:`engine`."""
