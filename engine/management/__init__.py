"""Managing many workflows: ``list_all``, ``resume_all``, ``cancel``, ``delete``, ``reindex``, ``gc``.

Re-exported by :mod:`engine`. The status index these read lives in :mod:`engine.store`,
because the runtime writes it too.
"""
