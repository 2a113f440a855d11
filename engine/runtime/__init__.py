"""Execution on Ray: the manager actor, one run per workflow it drives, and the task workers.

``_manager`` (the named, detached actor) → ``_run`` (one workflow: what runs next, retries,
continuations, cancel) → ``_worker`` (one task attempt on a Ray worker), with ``_log_writer``
(group commit of a run's events) and ``_arrivals`` (task outcomes onto the actor's loop).
``_waits`` waits for a run's timers and events on the actor's loop (never a Ray task);
``_listeners`` is the shared actor that runs listeners' polls; ``_http_provider`` is the Ray
Serve deployment that takes HTTP events (imported only where Serve is wanted).
"""
