"""Retention: which finished workflows to delete (or to trim to their result), and doing it.

One function, :func:`collect`, serves ``ray-durable gc``, ``workflow.gc()`` and the manager's
background retention (``workflow.init(retention=...)``). It needs storage only, no Ray:

1. it first finishes every delete that was begun and cut short (a deletion mark in the status
   index, see :mod:`engine.store._index`): a ``kill -9`` in the middle of a gc leaves marks,
   and the next gc completes them;
2. it selects the workflows whose status, by the one rule of :mod:`engine.store._status`, is one
   of ``statuses`` (only SUCCESSFUL, CANCELED and FAILED may be asked for: nothing RUNNING,
   PENDING or RESUMABLE is ever touched) and that *ended* at least ``older_than`` ago;
3. each is deleted whole (:func:`engine.store._offline.delete_from_storage`), or with
   ``keep_output`` a SUCCESSFUL one keeps its log and result and loses the rest
   (:func:`engine.store._offline.drop_outputs`); FAILED and CANCELED ones have no result to keep
   and are deleted whole.

Everything it deletes is in the :class:`GcReport` it returns. Following Temporal, age counts
from the end of a workflow (its retention period starts when it closes), and by default every
closed status goes, FAILED included, as with Temporal's namespace retention and DBOS's
``garbage_collect``; the period and the statuses are the caller's to choose.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import re
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from replay import WorkflowStatus, load_state
from storage_backends import Storage

from ..exceptions import WorkflowNotFoundError
from . import _index
from ._offline import delete_from_storage, drop_outputs, finish_delete
from ._status import list_workflows

COLLECTABLE = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED, WorkflowStatus.FAILED)
DEFAULT_EVERY_S = 3600.0  # how often a manager applies its retention
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")


def parse_duration(value: Any, what: str = "duration") -> float:
    """Seconds, from a number of seconds, a ``datetime.timedelta`` or a string like ``"30d"``.

    Units: ``s``, ``m``, ``h``, ``d``, ``w`` (no unit: seconds).

    Raises:
        TypeError: not one of those types. ValueError: negative, not finite, or a string that
            is not a duration.
    """
    if isinstance(value, datetime.timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match is None:
            raise ValueError(f"{what} {value!r} is not a duration: use a number of seconds or a number with "
                             "a unit s, m, h, d or w, e.g. '30d', '12h', '90m'")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise TypeError(f"{what} must be a duration (seconds as a number, a datetime.timedelta, or a string "
                        f"like '30d'), got {type(value).__name__} {value!r}")
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"{what} must be a finite duration of 0 or more, got {value!r}")
    return seconds


def parse_statuses(value: Any) -> frozenset[WorkflowStatus]:
    """The statuses gc may collect, from a status, a name, ``"A,B"``, or an iterable of those.

    Raises:
        ValueError: an unknown status, a status gc never touches (RUNNING, PENDING, RESUMABLE),
            or none at all. TypeError: not a status or an iterable of them.
    """
    if isinstance(value, (str, WorkflowStatus)):
        value = str(value).split(",")
    if not isinstance(value, Iterable):
        raise TypeError(f"statuses must be a status or an iterable of statuses, got {value!r}")
    out = set()
    names = [part for item in value for part in (item.split(",") if isinstance(item, str) else [item])]
    for item in names:
        name = str(item).strip().upper()
        if not name:
            continue
        try:
            status = WorkflowStatus(name)
        except ValueError:
            raise ValueError(f"unknown workflow status {item!r}; gc collects "
                             f"{', '.join(s.value for s in COLLECTABLE)}") from None
        if status not in COLLECTABLE:
            raise ValueError(f"gc never touches {status.value} workflows; it collects "
                             f"{', '.join(s.value for s in COLLECTABLE)}")
        out.add(status)
    if not out:
        raise ValueError(f"statuses names no status; gc collects {', '.join(s.value for s in COLLECTABLE)}")
    return frozenset(out)


@dataclass(frozen=True)
class Retention:
    """How long finished workflows are kept: ``workflow.init(retention=Retention(...))``.

    The manager the ``init`` creates applies it every ``every`` in the background, as
    ``ray-durable gc --older-than OLDER_THAN --status ...`` would (see :func:`collect`).

    Args:
        older_than: how long after it ended a workflow is kept: seconds, a ``timedelta`` or
            ``"30d"`` (units s, m, h, d, w). Stored as seconds.
        statuses: which ended workflows it applies to (default SUCCESSFUL, CANCELED and FAILED).
        keep_output: keep a SUCCESSFUL workflow's log and result, dropping its intermediate
            outputs, instead of deleting it (FAILED and CANCELED ones are deleted).
        every: how often the manager applies it (default 1 hour).

    Raises:
        TypeError, ValueError: a field out of its shape, saying which and what is allowed.
    """

    older_than: float
    statuses: frozenset[WorkflowStatus] = frozenset(COLLECTABLE)
    keep_output: bool = False
    every: float = DEFAULT_EVERY_S

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "older_than", parse_duration(self.older_than, "retention older_than"))
        set_(self, "statuses", parse_statuses(self.statuses))
        if not isinstance(self.keep_output, bool):
            raise TypeError(f"retention keep_output must be True or False, got {self.keep_output!r}")
        every = parse_duration(self.every, "retention every")
        if every < 0.1:
            raise ValueError(f"retention every must be at least 0.1 seconds, got {self.every!r}")
        set_(self, "every", every)


def as_retention(value: Any) -> Retention | None:
    """``init(retention=...)``: None (no retention), a :class:`Retention`, a dict of its fields,
    or a duration alone (``"30d"``, seconds, a ``timedelta``), meaning ``Retention(older_than=...)``.

    Raises:
        TypeError, ValueError: anything else, or a field out of its shape.
    """
    if value is None or isinstance(value, Retention):
        return value
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"older_than", "statuses", "keep_output", "every"})
        if unknown:
            raise ValueError(f"unknown retention field(s) {', '.join(map(repr, unknown))}; the fields are "
                             "older_than, statuses, keep_output, every")
        if "older_than" not in value:
            raise ValueError("retention needs older_than (e.g. {'older_than': '30d'})")
        return Retention(**value)
    if isinstance(value, (str, int, float, datetime.timedelta)) and not isinstance(value, bool):
        return Retention(older_than=value)
    raise TypeError(f"retention must be None, a duration ('30d', seconds, a timedelta), a dict of Retention's "
                    f"fields or an engine.Retention, got {type(value).__name__} {value!r}")


@dataclass
class GcItem:
    """One workflow gc acted on (or, in a dry run, would have)."""

    workflow_id: str
    action: str  # "deleted", "outputs dropped", "finished" (a delete cut short), "kept" (it ran again)
    status: str = ""  # its status when selected ("" for a delete being finished)
    end_time: float | None = None
    blobs: dict[str, int] = field(default_factory=dict)  # blobs removed: name -> bytes

    @property
    def bytes(self) -> int:
        return sum(self.blobs.values())


@dataclass
class GcReport:
    """What a gc deleted: ``items`` in workflow id order. With ``dry_run``, what it would delete."""

    dry_run: bool
    items: list[GcItem] = field(default_factory=list)

    @property
    def deleted(self) -> list[str]:
        """Ids of the workflows deleted whole (and deletes cut short that were finished)."""
        return [i.workflow_id for i in self.items if i.action in ("deleted", "finished")]

    @property
    def trimmed(self) -> list[str]:
        """Ids of the workflows that kept only their result."""
        return [i.workflow_id for i in self.items if i.action == "outputs dropped"]

    def to_dict(self) -> dict[str, Any]:
        return {"dry_run": self.dry_run, "deleted": self.deleted, "trimmed": self.trimmed,
                "items": [asdict(i) for i in self.items]}


async def collect(storage: Storage, statuses: Any = None, older_than: Any = 0, keep_output: bool = False,
                  dry_run: bool = False, now: float | None = None, concurrency: int = 8) -> GcReport:
    """Delete (or trim) the ended workflows that ``statuses`` and ``older_than`` select; see the module doc.

    Args:
        statuses: see :func:`parse_statuses`; None: SUCCESSFUL, CANCELED and FAILED.
        older_than: see :func:`parse_duration`; 0: whatever ended.
        dry_run: report what would go, change nothing.
        now: the time ages are measured against (Unix seconds; default: now).

    Raises:
        TypeError, ValueError: a bad ``statuses`` or ``older_than``, before anything is touched.
    """
    wanted = parse_statuses(COLLECTABLE if statuses is None else statuses)
    cutoff = (time.time() if now is None else now) - parse_duration(older_than, "older_than")
    if not isinstance(keep_output, bool):
        raise TypeError(f"keep_output must be True or False, got {keep_output!r}")
    report = GcReport(dry_run)
    limit = asyncio.Semaphore(concurrency)

    async def finish(workflow_id: str, started: float) -> None:
        async with limit:
            blobs = await storage.list_blobs(workflow_id) or {}
            if dry_run:
                report.items.append(GcItem(workflow_id, "finished", blobs=blobs))
            elif await finish_delete(storage, workflow_id, started):
                report.items.append(GcItem(workflow_id, "finished", blobs=blobs))

    await asyncio.gather(*(finish(w, t) for w, t in (await _index.deletion_marks(storage)).items()))

    async def one(row) -> None:
        workflow_id = row.workflow_id
        async with limit:
            if keep_output and row.status is WorkflowStatus.SUCCESSFUL:
                dropped = await drop_outputs(storage, workflow_id, await load_state(storage, workflow_id), dry_run)
                if dropped:
                    report.items.append(GcItem(workflow_id, "outputs dropped", str(row.status), row.end_time,
                                               dropped))
                return
            blobs = await storage.list_blobs(workflow_id) or {}
            if not dry_run:
                try:
                    if not await delete_from_storage(storage, workflow_id, storage.url, open_ok=False):
                        return  # it runs again: nothing was deleted
                except WorkflowNotFoundError:
                    return  # deleted meanwhile (another gc, a delete)
            report.items.append(GcItem(workflow_id, "deleted", str(row.status), row.end_time, blobs))

    rows = [row for row in await list_workflows(storage, wanted)
            if row.status in wanted and row.end_time is not None and row.end_time <= cutoff]
    await asyncio.gather(*(one(row) for row in rows))
    report.items.sort(key=lambda item: item.workflow_id)
    return report
