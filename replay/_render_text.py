"""Terminal renderings: ``show`` / ``at`` (a state), ``events`` (the stream), ``timeline`` (a Gantt)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ._events import PayloadRef
from ._format import (
    compact_json,
    describe_value,
    fmt_duration,
    fmt_payload,
    fmt_ts,
    short,
)
from ._inspect import Entry
from ._spans import bounds, lanes
from ._state import TaskState, TaskStatus, WorkflowState, WorkflowStatus

# --- show / at ----------------------------------------------------------------------------


def render_state(state: WorkflowState, payload_reprs: dict[str, str] | None = None,
                 historical: bool = False) -> str:
    """The ``show`` text of a folded state.

    Args:
        payload_reprs: (opt-in) "" / task id -> the repr of the output value.
        historical: the state is a past one (``at``), not the log's latest.
    """
    lines = [f"workflow   {state.workflow_id}", f"status     {_status_line(state, historical)}"]
    lines.append(f"submitted  {fmt_ts(state.start_time)}")
    if state.end_time is not None:
        lines.append(f"ended      {fmt_ts(state.end_time)}  "
                     f"(took {fmt_duration(state.end_time - (state.start_time or state.end_time))})")
    elif state.last_ts is not None:
        lines.append(f"last event {fmt_ts(state.last_ts)}  "
                     f"({fmt_duration(state.last_ts - (state.start_time or state.last_ts))} after submission)")
    if state.run_ids:
        lines.append(f"runs       {len(state.run_ids)}  ({', '.join(state.run_ids)})")
    if state.cancel_requested and state.status is not WorkflowStatus.CANCELED:
        lines.append("cancel     requested")
    sub = state.submission
    if sub is not None:
        versions = [f"{name} {v}" for name, v in (("ray-durable", sub.engine_version), ("ray", sub.ray_version),
                                                   ("python", sub.python_version)) if v]
        if versions:
            lines.append(f"written by {', '.join(versions)}")
        if state.user_metadata:
            lines.append(f"metadata   {compact_json(state.user_metadata)}")
        lines.append(f"dag        {fmt_payload(sub.dag)}")
    if state.output is not None:
        lines.append(f"output     {fmt_payload(state.output)}  digest {state.output.digest[:16]}")
    if payload_reprs and "" in payload_reprs:
        lines.append(f"value      {payload_reprs['']}")
    lines.append(f"events     {state.last_seq + 1}  (seq 0-{state.last_seq})" if state.last_seq >= 0
                 else "events     0")
    lines.append("")
    lines.extend(render_task_table(state))
    if payload_reprs:
        task_values = [(tid, text) for tid, text in payload_reprs.items() if tid]
        if task_values:
            lines.append("")
            lines.append("task outputs (unpickled)")
            width = max(len(tid) for tid, _ in task_values)
            lines.extend(f"  {tid:<{width}}  {text}" for tid, text in task_values)
    return "\n".join(lines) + "\n"


def _status_line(state: WorkflowState, historical: bool) -> str:
    if state.status is None:
        return "NOT SUBMITTED (the log holds no submission event)"
    text = str(state.status)
    if state.status is WorkflowStatus.FAILED:
        text += f"  (task {state.failed_task_id}: {state.error_type}: {short(state.error_message or '', 80)})"
    elif state.status is WorkflowStatus.RUNNING and not historical:
        text += "  (as the log says: RESUMABLE if no driver is alive)"
    return text


def render_task_table(state: WorkflowState) -> list[str]:
    if not state.tasks:
        return ["tasks      none scheduled"]
    depth = _depths(state)
    rows = [("TASK", "NAME", "STATUS", "ATTEMPTS", "DURATION", "OUTPUT / ERROR")]
    for task in state.tasks.values():
        rows.append(("  " * depth[task.task_id] + task.task_id, task.name, str(task.status),
                     str(task.attempt), _task_duration(state, task), _task_result(state, task)))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    out = [f"tasks ({len(state.tasks)})"]
    for row in rows:
        out.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    return [line.rstrip() for line in out]


def _depths(state: WorkflowState) -> dict[str, int]:
    depths: dict[str, int] = {}
    for task in state.tasks.values():
        parent = task.parent_task_id
        depths[task.task_id] = depths.get(parent, -1) + 1 if parent in state.tasks else 0
    return depths


def _task_duration(state: WorkflowState, task: TaskState) -> str:
    if task.duration is not None:
        return fmt_duration(task.duration)
    if task.status is TaskStatus.RUNNING and task.started_at is not None and state.last_ts is not None:
        return f"{fmt_duration(state.last_ts - task.started_at)}+"  # at least this long, still going
    return "-"


def _task_result(state: WorkflowState, task: TaskState) -> str:
    parts = []
    if task.continuation_output_task_id is not None:
        parts.append("continued -> " + " -> ".join(state.continuation_chain(task.task_id)[1:]))
    if task.status is TaskStatus.SUCCESSFUL:
        parts.append(fmt_payload(task.output))
    error = task.error
    if error is not None:
        text = f"{error.error_type}: {short(error.message, 60)}"
        if task.status is TaskStatus.FAILED:
            parts.append(f"attempt {error.attempt} failed: {text}")
        else:
            n = len(task.errors)
            parts.append(f"after {n} failed attempt{'s' if n != 1 else ''} (last: {text})")
    if task.status in (TaskStatus.SCHEDULED, TaskStatus.RUNNING) and state.status is not WorkflowStatus.RUNNING:
        parts.append("(was in flight when the run stopped)")
    return "; ".join(parts)


# --- events ---------------------------------------------------------------------------------


def render_event_line(entry: Entry, t0: float | None) -> str:
    """One line per event: seq, time (and offset from submission), tag, fields."""
    if entry.event is None:
        if entry.unknown and isinstance(entry.raw, dict):
            fields = " ".join(f"{k}={describe_value(v)}" for k, v in entry.raw.items() if k not in ("type", "ts"))
            ts = entry.raw.get("ts")
            when = _when(ts if isinstance(ts, (int, float)) else None, t0)
            return f"{entry.seq:>6}  {when}  {entry.tag:<26} [unknown event type] {fields}".rstrip()
        return f"{entry.seq:>6}  {'?':<34}  {'?':<26} [undecodable record at byte offset {entry.offset}] " \
               f"{entry.error}"
    event = entry.event
    fields = []
    for info in msgspec.structs.fields(event):
        if info.name in ("ts", "traceback"):  # a traceback is many lines (--json has it whole)
            continue
        value = getattr(event, info.name)
        if _is_default(info, value):
            continue
        fields.append(f"{info.name}={describe_value(value)}")
    return f"{entry.seq:>6}  {_when(event.ts, t0)}  {entry.tag:<26} {' '.join(fields)}".rstrip()


def _is_default(info: msgspec.structs.FieldInfo, value) -> bool:
    if value is None:
        return True
    if info.default is not msgspec.NODEFAULT:
        return value == info.default
    if info.default_factory is not msgspec.NODEFAULT:
        return value == info.default_factory()
    return False


def _when(ts: float | None, t0: float | None) -> str:
    if ts is None:
        return f"{'?':<34}"
    rel = f"+{ts - t0:.3f}s" if t0 is not None else ""
    return f"{fmt_ts(ts)}  {rel:>9}"


# --- timeline ------------------------------------------------------------------------------

BAR = {"ok": "=", "failed": "x", "continued": "~", "running": ">", "interrupted": "?"}
LEGEND = "= ok   x failed   ~ continued (returned a sub-DAG)   . waiting for its sub-DAG   " \
         "> running   ? interrupted (ran again)"


def render_timeline(state: WorkflowState, width: int = 60, boundaries: Sequence[float] = ()) -> str:
    """A text Gantt chart: one row per task, one bar per attempt."""
    rows = lanes(state, boundaries)
    if not rows:
        return f"workflow {state.workflow_id}: no tasks scheduled\n"
    t0, t1 = bounds(state, rows)
    span = t1 - t0
    label_w = max(len("TASK"), max(len("  " * r.depth + r.task.task_id) for r in rows))

    def col(t: float) -> int:
        return min(width - 1, max(0, int((t - t0) / span * width)))

    lines = [f"timeline of {state.workflow_id}: {state.status}, {fmt_duration(span)} "
             f"from {fmt_ts(t0)}", ""]
    axis = [" "] * width
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        label = "|" + fmt_duration(span * frac) if frac < 1 else fmt_duration(span) + "|"
        pos = min(int(frac * width), width - 1)
        start = pos if frac < 1 else max(0, width - len(label))
        if all(c == " " for c in axis[start:start + len(label)]):
            axis[start:start + len(label)] = list(label[: width - start])
    lines.append(f"{'TASK':<{label_w}}  {''.join(axis)}   ATTEMPTS")
    for lane in rows:
        cells = [" "] * width
        if lane.wait is not None:
            for c in range(col(lane.wait[0]), col(lane.wait[1]) + 1):
                cells[c] = "."
        for s in lane.spans:
            for c in range(col(s.start), col(s.end) + 1):
                if cells[c] in (" ", ".") or s.outcome == "failed":
                    cells[c] = BAR[s.outcome]
        attempts = ", ".join(f"#{s.attempt} {s.outcome} {fmt_duration(s.end - s.start)}" for s in lane.spans)
        if not lane.spans:
            attempts = f"not started ({lane.task.status})"
        label = "  " * lane.depth + lane.task.task_id
        lines.append(f"{label:<{label_w}}  {''.join(cells)}   {attempts}".rstrip())
    lines += ["", LEGEND]
    return "\n".join(lines) + "\n"


def payload_targets(state: WorkflowState) -> dict[str, PayloadRef | None]:
    """The payloads ``--load-payloads`` shows: the workflow's output ("") and each task's."""
    targets: dict[str, PayloadRef | None] = {}
    if state.output is not None:
        targets[""] = state.output
    for task in state.tasks.values():
        if task.output is not None:
            targets[task.task_id] = task.output
    return targets
