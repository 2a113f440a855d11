"""Task attempts as time spans, for the timelines and the Chrome trace export.

The fold records each attempt's (attempt, start, end) in ``TaskState.spans``;
this module only decides how each one ended, for drawing: ``ok``, ``failed``,
``continued`` (returned a sub-DAG), ``running`` (still going, as far as the
log knows) or ``interrupted`` (its driver went away; the attempt ran again).
An attempt that failed before it started (no span) becomes a zero-length
failed span, so every failure is visible.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ._events import Event, WorkflowCanceled, WorkflowFailed, WorkflowRunStarted
from ._state import TaskError, TaskState, TaskStatus, WorkflowState, WorkflowStatus

OUTCOMES = ("ok", "failed", "continued", "running", "interrupted")
_BOUNDARY_EVENTS = (WorkflowFailed, WorkflowCanceled, WorkflowRunStarted)


@dataclass(slots=True)
class Span:
    attempt: int
    start: float
    end: float  # open spans are closed at the next attempt's start or the log's last event
    outcome: str  # one of OUTCOMES
    error: TaskError | None = None


@dataclass(slots=True)
class TaskLane:
    """One task's row in a timeline."""

    task: TaskState
    depth: int  # nesting under the task that continued into it
    spans: list[Span]
    wait: tuple[float, float] | None  # a continued task waiting for its sub-DAG's output

    @property
    def failed_attempts(self) -> int:
        return sum(1 for s in self.spans if s.outcome == "failed")


def run_boundaries(events: Iterable[Event]) -> list[float]:
    """When runs ended or began (workflow failed / canceled / run started): where an attempt
    left in flight by its run stopped, as far as the log can tell."""
    return sorted(e.ts for e in events if isinstance(e, _BOUNDARY_EVENTS))


def lanes(state: WorkflowState, boundaries: Sequence[float] = ()) -> list[TaskLane]:
    """Every task of ``state`` in scheduling order, with its attempts as spans.

    Args:
        boundaries: :func:`run_boundaries` of the log, to end interrupted attempts
            where their run ended rather than where the next attempt began.
    """
    now = state.last_ts if state.last_ts is not None else 0.0
    out = []
    for task in state.tasks.values():
        spans = _spans(state, task, now, boundaries)
        wait = None
        if task.continuation_output_task_id is not None and spans:
            end = task.ended_at if task.status is TaskStatus.SUCCESSFUL and task.ended_at else now
            wait = (spans[-1].end, max(end, spans[-1].end))
        out.append(TaskLane(task, _depth(state, task), spans, wait))
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


def _depth(state: WorkflowState, task: TaskState) -> int:
    depth, parent, seen = 0, task.parent_task_id, set()
    while parent is not None and parent in state.tasks and parent not in seen:
        seen.add(parent)
        depth += 1
        parent = state.tasks[parent].parent_task_id
    return depth


def bounds(state: WorkflowState, all_lanes: list[TaskLane]) -> tuple[float, float]:
    """The time range a timeline covers: submission to the last event (never empty)."""
    starts = [s.start for lane in all_lanes for s in lane.spans]
    ends = [s.end for lane in all_lanes for s in lane.spans]
    ends += [lane.wait[1] for lane in all_lanes if lane.wait]
    t0 = min([t for t in (state.start_time,) if t is not None] + starts, default=0.0)
    t1 = max([t for t in (state.end_time, state.last_ts) if t is not None] + ends, default=t0)
    return t0, max(t1, t0 + 1e-6)
