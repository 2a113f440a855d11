"""``workflow.gc``: delete (or trim to their result) the ended workflows a retention rule selects.

The work is :func:`engine.store._retention.collect`, which ``ray-durable gc`` and a manager's
background retention (``workflow.init(retention=...)``) run too.
"""

from __future__ import annotations

from typing import Any

from ..api._init import context
from ..store._retention import GcReport, collect
from ..store._sync import run_sync


def gc(statuses: Any = None, older_than: Any = 0, keep_output: bool = False, dry_run: bool = False) -> GcReport:
    """Delete the workflows that ended at least ``older_than`` ago with one of ``statuses``.

    Only SUCCESSFUL, CANCELED and FAILED workflows are ever touched (their status judged by the
    same rule as ``get_status``: a RUNNING log whose cluster's lease is live is RUNNING, without
    one it is RESUMABLE); a delete that an earlier gc left unfinished (a crash) is finished first.

    Args:
        statuses: a status, a name, ``"SUCCESSFUL,FAILED"`` or an iterable of them (default:
            SUCCESSFUL, CANCELED and FAILED).
        older_than: how long ago it must have ended: seconds, a ``datetime.timedelta`` or a
            string like ``"30d"`` (units s, m, h, d, w). Default 0: whatever ended.
        keep_output: a SUCCESSFUL workflow keeps its log and result and loses its intermediate
            outputs instead of being deleted (as ``run(..., keep="output")``); FAILED and
            CANCELED ones have no result and are deleted.
        dry_run: delete nothing; the report says what would go.

    Returns:
        a ``GcReport``: ``.items`` (one ``GcItem`` per workflow: id, action, status, end time,
        blobs removed with their sizes), ``.deleted``, ``.trimmed``, ``.to_dict()``.

    Raises:
        ValueError, TypeError: bad ``statuses`` (RUNNING, PENDING and RESUMABLE are refused),
            ``older_than`` or ``keep_output``, before anything is touched.
    """
    return run_sync(collect(context().storage, statuses, older_than, keep_output, dry_run))
