"""What a timeline draws, from a folded state and its events (pure: no I/O).

Each task is a :class:`TaskLane`: its attempts as :class:`Span` s (how each ended: ``ok``,
``failed``, ``continued`` into a sub-DAG, ``running`` as far as the log knows, or
``interrupted``: its run stopped while it ran) and the time between them as
:class:`Gap` s: ``queued`` (scheduled, waiting for its inputs or a worker), ``backoff``
(a retry's delay) and ``subdag`` (a continued task waiting for its sub-DAG's output, after
its own work). Waits on timers and events (the events issue) become further gap kinds here.
An attempt that failed before it started becomes a zero-length failed span, so every
failure is visible; an attempt that never started is not counted as one.

The workflow's own line: its runs (:func:`replay.runs_of`) and marks (submitted, each run,
cancel, the end). :class:`TimeScale` maps time to the page, compressing long stretches in
which nothing ran (waiting for a driver before the first run, or between runs) so that the
work does not end up as slivers at one edge. :func:`group_lanes` folds the many tasks of a
wide fan-out into one expandable row each.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from ._events import (
    CancelRequested,
    Event,
    TaskRetried,
    TaskScheduled,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowSucceeded,
)
from ._runs import Run, runs_of
from ._state import TaskError, TaskState, TaskStatus, WorkflowState, WorkflowStatus

OUTCOMES = ("ok", "failed", "continued", "running", "interrupted")
GAP_KINDS = ("queued", "backoff", "subdag")


@dataclass(slots=True)
class Span:
    attempt: int
    start: float
    end: float  # open spans are closed at the next attempt's start or the log's last event
    outcome: str  # one of OUTCOMES
    error: TaskError | None = None


@dataclass(slots=True)
class Gap:
    kind: str  # one of GAP_KINDS
    start: float
    end: float
    attempt: int = 0  # the attempt it precedes (queued, backoff)


@dataclass(slots=True)
class TaskLane:
    """One task's row in a timeline."""

    task: TaskState
    depth: int  # nesting under the task that continued into it
    spans: list[Span]
    gaps: list[Gap] = field(default_factory=list)

    @property
    def wait(self) -> tuple[float, float] | None:
        """A continued task waiting for its sub-DAG's output."""
        return next(((g.start, g.end) for g in self.gaps if g.kind == "subdag"), None)

    @property
    def failed_attempts(self) -> int:
        return sum(1 for s in self.spans if s.outcome == "failed")

    @property
    def attempts(self) -> int:
        """Attempts that ran (or failed trying); a scheduled attempt that never started is not one."""
        return len(self.spans)

    @property
    def own_time(self) -> float:
        """Time spent running the task's own attempts (not queued, not waiting for a sub-DAG)."""
        return sum(s.end - s.start for s in self.spans)

    @property
    def outcome(self) -> str:
        """How the latest attempt ended, or ``queued`` if none started."""
        return self.spans[-1].outcome if self.spans else "queued"

    @property
    def start(self) -> float | None:
        times = [s.start for s in self.spans] + [g.start for g in self.gaps]
        return min(times) if times else None

    @property
    def end(self) -> float | None:
        times = [s.end for s in self.spans] + [g.end for g in self.gaps]
        return max(times) if times else None


@dataclass(slots=True)
class LaneGroup:
    """Sibling tasks of one function (a fan-out), drawn as one row until expanded."""

    name: str  # the function's qualified name
    depth: int
    lanes: list[TaskLane]

    @property
    def label(self) -> str:
        return f"{self.name.rpartition('.')[2]} \u00d7{len(self.lanes)}"

    @property
    def failed_attempts(self) -> int:
        return sum(lane.failed_attempts for lane in self.lanes)

    def outcomes(self) -> dict[str, int]:
        """How many member tasks are in each latest outcome (``ok``: 298, ``failed``: 2)."""
        counts: dict[str, int] = defaultdict(int)
        for lane in self.lanes:
            counts[lane.outcome] += 1
        return dict(counts)


@dataclass(slots=True)
class Mark:
    """A moment of the workflow itself: ``submitted``, ``run``, ``resumed``, ``cancel``, an end."""

    ts: float
    kind: str
    label: str


@dataclass(slots=True)
class Timeline:
    state: WorkflowState
    lanes: list[TaskLane]
    runs: list[Run]
    marks: list[Mark]
    t0: float
    t1: float
    scale: TimeScale


def run_boundaries(events: Sequence[Event]) -> list[float]:
    """When runs ended (the workflow failed or was canceled, or the run's last event before the
    next run began): where an attempt left in flight by its run stopped, as far as the log can tell."""
    ends = [r.ended_at for r in runs_of(events) if r.ended_at is not None]
    return sorted(ends + [e.ts for e in events if isinstance(e, WorkflowCanceled)])


def build_timeline(state: WorkflowState, events: Sequence[Event]) -> Timeline:
    """Everything a timeline draws, for ``state`` (the fold of ``events``)."""
    all_lanes = lanes(state, events)
    runs = runs_of(events)
    marks = _marks(state, events, runs)
    t0, t1 = bounds(state, all_lanes)
    busy = [(s.start, s.end) for lane in all_lanes for s in lane.spans]
    busy += [(g.start, g.end) for lane in all_lanes for g in lane.gaps]
    busy += [(r.started_at, r.ended_at if r.ended_at is not None else t1) for r in runs]
    return Timeline(state, all_lanes, runs, marks, t0, t1, TimeScale(t0, t1, busy))


def lanes(state: WorkflowState, events: Sequence[Event] = ()) -> list[TaskLane]:
    """Every task of ``state`` in scheduling order, with its attempts and the gaps between them.

    Args:
        events: the log's events in order (for when each attempt was scheduled, retry delays,
            and where an attempt left in flight by its run stopped). Without them a lane has
            its spans only.
    """
    now = state.last_ts if state.last_ts is not None else 0.0
    boundaries = run_boundaries(events)
    ready: dict[str, list[tuple[int, float]]] = defaultdict(list)  # task -> (attempt, when it could run)
    backoffs: dict[str, list[Gap]] = defaultdict(list)
    for event in events:
        if type(event) is TaskScheduled:
            ready[event.task_id].append((event.attempt, event.ts))
        elif type(event) is TaskRetried:
            ready[event.task_id].append((event.attempt, event.ts + event.delay_s))
            if event.delay_s > 0:
                backoffs[event.task_id].append(Gap("backoff", event.ts, event.ts + event.delay_s, event.attempt))
    out = []
    for task in state.tasks.values():
        spans = _spans(state, task, now, boundaries)
        gaps = _queued(state, task, spans, ready.get(task.task_id, []), now, boundaries)
        gaps += backoffs.get(task.task_id, [])
        if task.continuation_output_task_id is not None and spans:
            end = task.ended_at if task.status is TaskStatus.SUCCESSFUL and task.ended_at else (
                state.end_time or now)
            gaps.append(Gap("subdag", spans[-1].end, max(end, spans[-1].end)))
        gaps.sort(key=lambda g: g.start)
        out.append(TaskLane(task, _depth(state, task), spans, gaps))
    return out


def _spans(state: WorkflowState, task: TaskState, now: float, boundaries: Sequence[float]) -> list[Span]:
    errors = list(task.errors)
    spans: list[Span] = []
    last = len(task.spans) - 1
    for i, (attempt, start, end) in enumerate(task.spans):
        if end is None:
            live = (i == last and task.status is TaskStatus.RUNNING
                    and state.status is WorkflowStatus.RUNNING)
            stop = task.spans[i + 1][1] if i < last else (state.end_time or now)
            stop = min([b for b in boundaries if b >= start] + [stop]) if not live else stop
            spans.append(Span(attempt, start, max(start, stop), "running" if live else "interrupted"))
            continue
        error = next((e for e in errors if e.attempt == attempt and e.at == end), None)
        if error is not None:
            errors.remove(error)
            spans.append(Span(attempt, start, end, "failed", error))
        elif i == last and task.continuation_output_task_id is not None:
            spans.append(Span(attempt, start, end, "continued"))
        else:
            spans.append(Span(attempt, start, end, "ok"))
    for error in errors:  # failed before a start was recorded
        spans.append(Span(error.attempt, error.at, error.at, "failed", error))
    spans.sort(key=lambda s: (s.start, s.attempt))
    return spans


def _queued(state: WorkflowState, task: TaskState, spans: list[Span], ready: list[tuple[int, float]],
            now: float, boundaries: Sequence[float]) -> list[Gap]:
    """From each scheduling (or retry) to the start of the attempt it led to, or to where the
    wait ended without one: the next scheduling, the end of its run, or now if still waiting."""
    gaps = []
    for i, (attempt, since) in enumerate(ready):
        began = next((s.start for s in spans if s.attempt == attempt and s.start >= since), None)
        if began is None:
            later = [t for _a, t in ready[i + 1:]] + [b for b in boundaries if b > since]
            waiting = (i == len(ready) - 1 and task.status is TaskStatus.SCHEDULED
                       and state.status is WorkflowStatus.RUNNING)
            began = now if waiting or not later else min(later)
        if began > since:
            gaps.append(Gap("queued", since, began, attempt))
    return gaps


def attempts_run(task: TaskState) -> int:
    """How many attempts of ``task`` ran (started, or failed trying), from the fold alone."""
    started = {attempt for attempt, _start, _end in task.spans}
    return len(task.spans) + sum(1 for e in task.errors if e.attempt not in started)


def _depth(state: WorkflowState, task: TaskState) -> int:
    depth, parent, seen = 0, task.parent_task_id, set()
    while parent is not None and parent in state.tasks and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = state.tasks[parent].parent_task_id
    return depth


def _marks(state: WorkflowState, events: Sequence[Event], runs: list[Run]) -> list[Mark]:
    marks = []
    if state.start_time is not None:
        marks.append(Mark(state.start_time, "submitted", "submitted"))
    for number, run in enumerate(runs, start=1):
        kind = "resumed" if run.resumed else "run"
        marks.append(Mark(run.started_at, kind, f"run {number}" + (" (resumed)" if run.resumed else "")))
    for event in events:
        if type(event) is CancelRequested:
            marks.append(Mark(event.ts, "cancel", "cancel requested"))
        elif type(event) is WorkflowCanceled:
            marks.append(Mark(event.ts, "canceled", "canceled"))
        elif type(event) is WorkflowFailed:
            marks.append(Mark(event.ts, "failed", f"failed: task {event.task_id}"))
        elif type(event) is WorkflowSucceeded:
            marks.append(Mark(event.ts, "succeeded", "succeeded"))
    return sorted(marks, key=lambda m: m.ts)


def bounds(state: WorkflowState, all_lanes: list[TaskLane]) -> tuple[float, float]:
    """The time range a timeline covers: submission to the last event (never empty)."""
    starts = [lane.start for lane in all_lanes if lane.start is not None]
    ends = [lane.end for lane in all_lanes if lane.end is not None]
    t0 = min([t for t in (state.start_time,) if t is not None] + starts, default=0.0)
    t1 = max([t for t in (state.end_time, state.last_ts) if t is not None] + ends, default=t0)
    return t0, max(t1, t0 + 1e-6)


# --- grouping wide fan-outs ---------------------------------------------------------------

MAX_ROWS = 30  # more lanes than this: group siblings of one function
MIN_GROUP = 4  # fewer siblings than this stay rows of their own


def group_lanes(all_lanes: list[TaskLane], max_rows: int = MAX_ROWS,
                min_group: int = MIN_GROUP) -> list[TaskLane | LaneGroup]:
    """Rows to draw: lanes as they are if there are at most ``max_rows``; else the sibling tasks
    of one function (same function, same parent) as one :class:`LaneGroup` each, at the place
    of the first of them, when there are at least ``min_group`` of them."""
    if len(all_lanes) <= max_rows:
        return list(all_lanes)
    siblings: dict[tuple[str, str | None], list[TaskLane]] = defaultdict(list)
    for lane in all_lanes:
        siblings[(lane.task.name, lane.task.parent_task_id)].append(lane)
    rows: list[TaskLane | LaneGroup] = []
    placed: set[tuple[str, str | None]] = set()
    for lane in all_lanes:
        key = (lane.task.name, lane.task.parent_task_id)
        members = siblings[key]
        if len(members) < min_group:
            rows.append(lane)
        elif key not in placed:
            placed.add(key)
            rows.append(LaneGroup(lane.task.name, lane.depth, members))
    return rows


# --- time to page -------------------------------------------------------------------------

class TimeScale:
    """Maps a time in ``[t0, t1]`` to a fraction of the chart's width.

    Stretches in which nothing was busy (no attempt, gap or run) that are longer than
    ``IDLE_SHARE`` of the whole are *breaks*: each is drawn ``BREAK_WIDTH`` wide whatever
    its length, and the busy time shares the rest in proportion.
    """

    IDLE_SHARE = 0.2
    BREAK_WIDTH = 0.06

    def __init__(self, t0: float, t1: float, busy: Sequence[tuple[float, float]] = ()):
        self.t0, self.t1 = t0, t1
        total = t1 - t0
        idle = _idle_stretches(t0, t1, busy)
        self.breaks = [(a, b) for a, b in idle if b - a > self.IDLE_SHARE * total]
        # pieces: (start, end, width); breaks get a fixed width, the rest shares what is left
        pieces = []
        cursor = t0
        for a, b in self.breaks:
            if a > cursor:
                pieces.append((cursor, a, None))
            pieces.append((a, b, self.BREAK_WIDTH))
            cursor = b
        if cursor < t1 or not pieces:
            pieces.append((cursor, t1, None))
        busy_time = sum(b - a for a, b, w in pieces if w is None) or 1e-9
        left = max(0.0, 1.0 - self.BREAK_WIDTH * len(self.breaks))
        self.pieces = []
        x = 0.0
        for a, b, width in pieces:
            w = width if width is not None else left * (b - a) / busy_time
            self.pieces.append((a, b, x, w))
            x += w

    def frac(self, t: float) -> float:
        """Where ``t`` falls, from 0.0 (t0) to 1.0 (t1)."""
        for a, b, x, w in self.pieces:
            if t <= b:
                return x + (w * (t - a) / (b - a) if b > a else 0.0) if t >= a else x
        return 1.0

    def time_at(self, frac: float) -> float:
        """The time drawn at ``frac`` (the inverse of :meth:`frac`)."""
        for a, b, x, w in self.pieces:
            if frac <= x + w:
                return a + (b - a) * ((frac - x) / w if w > 0 else 0.0)
        return self.t1

    def break_spans(self) -> list[tuple[float, float, float]]:
        """(start fraction, end fraction, real length in seconds) of every break."""
        return [(x, x + w, b - a) for a, b, x, w in self.pieces if (a, b) in self.breaks]


def _idle_stretches(t0: float, t1: float, busy: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The parts of ``[t0, t1]`` that no busy interval covers."""
    idle = []
    cursor = t0
    for a, b in sorted(busy):
        if a > cursor:
            idle.append((cursor, min(a, t1)))
        cursor = max(cursor, b)
    if cursor < t1:
        idle.append((cursor, t1))
    return [(a, b) for a, b in idle if b > a]
