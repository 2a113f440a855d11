"""The ray.workflow functions a driver calls: ``init`` (``_init``) and run, resume, outputs,
status, metadata and continuation (``_workflows``). Re-exported by :mod:`engine`."""
