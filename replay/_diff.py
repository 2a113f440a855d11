"""``diff``: how two runs of a workflow differ, from their logs alone.

Structural differences (tasks added or removed, a different status, a
different number of attempts, outputs whose digests differ) make the exit
status 1; duration changes beyond the threshold are reported but, since no
two runs take exactly as long, do not count as differences.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ._format import fmt_duration
from ._state import TaskState, WorkflowState


@dataclass(slots=True)
class Diff:
    a: str
    b: str
    lines: list[str] = field(default_factory=list)  # structural differences
    fork: list[str] = field(default_factory=list)  # how one forks the other (informational)
    durations: list[str] = field(default_factory=list)  # informational

    @property
    def differs(self) -> bool:
        return bool(self.lines)


def _digest(task_or_state) -> str | None:
    ref = task_or_state.output
    return None if ref is None else ref.digest


def _duration(state: WorkflowState) -> float | None:
    if state.start_time is None or state.end_time is None:
        return None
    return state.end_time - state.start_time


def diff_states(a: WorkflowState, b: WorkflowState, threshold: float = 0.10) -> Diff:
    """Compare ``a`` with ``b``; durations count as changed beyond ``threshold`` (relative)."""
    d = Diff(a.workflow_id, b.workflow_id)
    d.fork = _fork_lines(a, b) or _fork_lines(b, a)
    if a.status != b.status:
        d.lines.append(f"status: {a.status} -> {b.status}")
    if _digest(a) != _digest(b):
        d.lines.append(f"workflow output digest: {_digest(a) or '(none)'} -> {_digest(b) or '(none)'}")
    if a.error_type != b.error_type or a.failed_task_id != b.failed_task_id:
        d.lines.append(f"failure: {_failure(a)} -> {_failure(b)}")
    only_a = [t for t in a.tasks if t not in b.tasks]
    only_b = [t for t in b.tasks if t not in a.tasks]
    if only_a:
        d.lines.append(f"tasks only in {a.workflow_id} (removed): {', '.join(only_a)}")
    if only_b:
        d.lines.append(f"tasks only in {b.workflow_id} (added): {', '.join(only_b)}")
    for task_id, ta in a.tasks.items():
        tb = b.tasks.get(task_id)
        if tb is None:
            continue
        changes = _task_changes(ta, tb)
        if changes:
            d.lines.append(f"task {task_id}: " + "; ".join(changes))
        change = _duration_change(ta.duration, tb.duration, threshold)
        if change and not (ta.forked or tb.forked):  # a reused completion did not run again
            d.durations.append(f"task {task_id}: {change}")
    change = _duration_change(_duration(a), _duration(b), threshold)
    if change:
        d.durations.insert(0, f"workflow: {change}")
    return d


def _fork_lines(source: WorkflowState, fork: WorkflowState) -> list[str]:
    """If ``fork`` is a fork of ``source``: where it forked, and which tasks it reused or re-ran."""
    origin = fork.submission.forked_from if fork.submission is not None else None
    if origin is None or origin.workflow_id != source.workflow_id:
        return []
    where = f"{fork.workflow_id} forks {source.workflow_id} at seq {origin.seq}"
    if origin.from_task is not None:
        where += f", re-run from task {origin.from_task}"
    if origin.new_dag:
        where += ", with a new DAG"
    reused = [t for t, task in fork.tasks.items() if task.forked]
    ran = [t for t, task in fork.tasks.items() if not task.forked]
    return [where, f"reused ({len(reused)}): {', '.join(reused) or '-'}",
            f"ran in the fork ({len(ran)}): {', '.join(ran) or '-'}"]


def _failure(state: WorkflowState) -> str:
    if state.error_type is None:
        return "(none)"
    return f"{state.error_type} in task {state.failed_task_id}"


def _task_changes(a: TaskState, b: TaskState) -> list[str]:
    changes = []
    if a.name != b.name:
        changes.append(f"function {a.name} -> {b.name}")
    if a.status != b.status:
        changes.append(f"status {a.status} -> {b.status}")
    if a.attempt != b.attempt:
        changes.append(f"attempts {a.attempt} -> {b.attempt}")
    if _digest(a) != _digest(b):
        changes.append(f"output digest {_digest(a) or '(none)'} -> {_digest(b) or '(none)'}")
    errors_a = [e.error_type for e in a.errors]
    errors_b = [e.error_type for e in b.errors]
    if errors_a != errors_b:
        changes.append(f"errors [{', '.join(errors_a)}] -> [{', '.join(errors_b)}]")
    if a.continuation_output_task_id != b.continuation_output_task_id:
        changes.append(f"continued into {a.continuation_output_task_id} -> {b.continuation_output_task_id}")
    return changes


def _duration_change(a: float | None, b: float | None, threshold: float) -> str | None:
    if a is None or b is None:
        return None if a is None and b is None else f"{fmt_duration(a)} -> {fmt_duration(b)}"
    delta = b - a
    base = max(abs(a), 1e-9)
    if abs(delta) / base <= threshold:
        return None
    sign = "+" if delta >= 0 else "-"
    return f"{fmt_duration(a)} -> {fmt_duration(b)} ({sign}{fmt_duration(abs(delta))}, {sign}{abs(delta) / base:.0%})"


def render_diff(d: Diff) -> str:
    lines = [f"diff {d.a} -> {d.b}"]
    lines += ["  " + line for line in d.fork]
    if d.lines:
        lines += ["  " + line for line in d.lines]
    else:
        lines.append("  same tasks, statuses, attempts and outputs")
    if d.durations:
        lines.append("durations (changed beyond the threshold):")
        lines += ["  " + line for line in d.durations]
    return "\n".join(lines) + "\n"
