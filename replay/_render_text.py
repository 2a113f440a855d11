"""Terminal renderings: ``show`` / ``at`` (a state), ``events`` (the stream), ``timeline`` (a Gantt)."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from ._events import Event, PayloadRef
from ._format import (
    compact_json,
    describe_value,
    fmt_duration,
    fmt_payload,
    fmt_ts,
    short,
)
from ._inspect import Entry
from ._runs import Run
from ._spans import LaneGroup, TaskLane, attempts_run, build_timeline, group_lanes
from ._state import TaskState, TaskStatus, WorkflowState, WorkflowStatus
from ._waits import describe_wait

# --- show / at ----------------------------------------------------------------------------


def render_state(state: WorkflowState, payload_reprs: dict[str, str] | None = None,
                 historical: bool = False, runs: Sequence[Run] | None = None) -> str:
    """The ``show`` text of a folded state.

    Args:
        payload_reprs: (opt-in) "" / task id -> the repr of the output value.
        historical: the state is a past one (``at``), not the log's latest.
        runs: :func:`replay.runs_of` the events folded, to list each run (else only their ids).
    """
    lines = [f"workflow   {state.workflow_id}", f"status     {_status_line(state, historical)}"]
    lines.append(f"submitted  {fmt_ts(state.start_time)}")
    origin = state.submission.forked_from if state.submission is not None else None
    if origin is not None:
        lines.append(f"forked     {fork_text(origin, state)}")
    if state.end_time is not None:
        lines.append(f"ended      {fmt_ts(state.end_time)}  "
                     f"(took {fmt_duration(state.end_time - (state.start_time or state.end_time))})")
    elif state.last_ts is not None:
        lines.append(f"last event {fmt_ts(state.last_ts)}  "
                     f"({fmt_duration(state.last_ts - (state.start_time or state.last_ts))} after submission)")
    if runs:
        lines.append(f"runs       {len(runs)}")
        lines.extend(f"  run {n:<5}{fmt_ts(run.started_at)}  {run_text(run)}" for n, run in enumerate(runs, 1))
    elif state.run_ids:
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


def run_text(run: Run) -> str:
    """``330ms failed``, ``running (1.2s so far)``, ``... (resumed), on <owner>``."""
    text = f"{fmt_duration(run.duration)} {run.outcome}" if run.ended_at is not None else run.outcome
    if run.resumed:
        text += " (resumed)"
    if run.where:
        text += f", on {run.where}"
    return text


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
                     str(attempts_run(task)), _task_duration(state, task), _task_result(state, task)))
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
    """How long the task ran; a continued task's own work, then its wait for the sub-DAG."""
    if task.continuation_output_task_id is not None and task.spans and task.spans[-1][2] is not None:
        _attempt, start, own_end = task.spans[-1]
        waited = f"+{fmt_duration(task.ended_at - own_end)}" if task.ended_at is not None else "+..."
        return f"{fmt_duration(own_end - start)} ({waited} sub-DAG)"
    if task.duration is not None:
        return fmt_duration(task.duration)
    if task.status is TaskStatus.RUNNING and task.started_at is not None and state.last_ts is not None:
        return f"{fmt_duration(state.last_ts - task.started_at)}+"  # at least this long, still going
    return "-"


def _task_result(state: WorkflowState, task: TaskState) -> str:
    parts = [describe_wait(state, task)] if task.wait is not None else []
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
    return f"{entry.seq:>6}  {_when(event.ts, t0)}  {entry.tag:<26} {event_fields(event)}".rstrip()


def event_fields(event: Event) -> str:
    """``name=value`` for each field of ``event`` that is not its default (no ts, no traceback)."""
    fields = []
    for info in msgspec.structs.fields(event):
        if info.name in ("ts", "traceback"):  # a traceback is many lines (--json has it whole)
            continue
        value = getattr(event, info.name)
        if _is_default(info, value):
            continue
        fields.append(f"{info.name}={describe_value(value)}")
    return " ".join(fields)


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
GAP_BAR = {"queued": "-", "backoff": "_", "subdag": "."}
_PRIORITY = {c: i for i, c in enumerate(" /-_.?~=>x")}  # a later char wins a shared cell
LEGEND = ("= ok   x failed   ~ continued (its own work)   . waiting for its sub-DAG   - queued   "
          "_ retry backoff   > running   ? interrupted (its run stopped)   / idle, not to scale   1 2 .. runs")


def render_timeline(state: WorkflowState, events: Sequence[Event] = (), width: int = 60,
                    expand: bool = False) -> str:
    """A text Gantt chart: the workflow's runs, then one row per task (or per group of a wide
    fan-out's siblings, unless ``expand``), one bar per attempt, and the gaps between them."""
    timeline = build_timeline(state, events)
    if not timeline.lanes:
        return f"workflow {state.workflow_id}: no tasks scheduled\n"
    scale = timeline.scale
    rows = list(timeline.lanes) if expand else group_lanes(timeline.lanes)

    def col(t: float) -> int:
        return min(width - 1, max(0, int(scale.frac(t) * width)))

    breaks = [(int(a * width), max(int(a * width), int(b * width) - 1)) for a, b, _ in scale.break_spans()]
    labels = [_row_label(row) for row in rows]
    label_w = max(len("TASK"), len("(runs)"), *(len(label) for label in labels))
    span = timeline.t1 - timeline.t0
    lines = [f"timeline of {state.workflow_id}: {state.status}, {fmt_duration(span)} from {fmt_ts(timeline.t0)}"
             + (f"; {len(breaks)} idle stretch{'es' if len(breaks) != 1 else ''} not to scale" if breaks else ""),
             ""]
    lines.append(f"{'TASK':<{label_w}}  {_axis(scale, width)}   ATTEMPTS")
    lines.append(f"{'(runs)':<{label_w}}  {_runs_cells(timeline, col, width, breaks)}   {_runs_text(timeline)}".rstrip())
    for row, label in zip(rows, labels):
        cells = [" "] * width
        for c0, c1 in breaks:
            for c in range(c0, c1 + 1):
                cells[c] = "/"
        for lane in (row.lanes if isinstance(row, LaneGroup) else [row]):
            _draw_lane(cells, lane, col)
        text = _attempts_text(row)
        if isinstance(row, TaskLane) and row.task.wait is not None:  # a timer or an event wait
            text += f"; {describe_wait(state, row.task)}"
        lines.append(f"{label:<{label_w}}  {''.join(cells)}   {text}".rstrip())
    lines.append("")
    lines.extend(f"  {'+' + fmt_duration(m.ts - timeline.t0):>10}  {m.label}" for m in timeline.marks)
    if len(rows) < len(timeline.lanes):
        lines.append(f"  ({len(timeline.lanes)} tasks in {len(rows)} rows; --expand shows every task)")
    lines += ["", LEGEND]
    return "\n".join(lines) + "\n"


def _row_label(row) -> str:
    if isinstance(row, LaneGroup):
        return "  " * row.depth + f"{row.name.rpartition('.')[2]} x{len(row.lanes)}"
    return "  " * row.depth + row.task.task_id


def _put(cells: list[str], c0: int, c1: int, char: str) -> None:
    for c in range(c0, c1 + 1):
        if _PRIORITY[char] >= _PRIORITY.get(cells[c], 0):
            cells[c] = char


def _draw_lane(cells: list[str], lane: TaskLane, col) -> None:
    for gap in lane.gaps:
        if gap.end > gap.start:
            _put(cells, col(gap.start), max(col(gap.start), col(gap.end) - 1), GAP_BAR[gap.kind])
    for s in lane.spans:
        _put(cells, col(s.start), col(s.end), BAR[s.outcome])


def _axis(scale, width: int) -> str:
    axis = [" "] * width
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        offset = fmt_duration(scale.time_at(frac) - scale.t0)
        label = "|" + offset if frac < 1 else offset + "|"
        pos = min(int(frac * width), width - 1)
        start = pos if frac < 1 else max(0, width - len(label))
        if all(c == " " for c in axis[max(0, start - 1):start + len(label)]):  # a space between labels
            axis[start:start + len(label)] = list(label[: width - start])
    return "".join(axis)


def _runs_cells(timeline, col, width: int, breaks) -> str:
    cells = [" "] * width
    for c0, c1 in breaks:
        for c in range(c0, c1 + 1):
            cells[c] = "/"
    for number, run in enumerate(timeline.runs, start=1):
        end = run.ended_at if run.ended_at is not None else timeline.t1
        char = str(number) if number < 10 else "+"
        for c in range(col(run.started_at), col(end) + 1):
            cells[c] = char
    for mark in timeline.marks:
        if mark.kind in ("cancel", "canceled"):
            cells[col(mark.ts)] = "C"
    return "".join(cells)


def _runs_text(timeline) -> str:
    parts = []
    for number, run in enumerate(timeline.runs, start=1):
        took = fmt_duration(run.duration) if run.duration is not None else "so far"
        parts.append(f"run {number}{' (resumed)' if run.resumed else ''} {run.outcome} {took}")
    return ", ".join(parts) or "never run"


def fork_text(origin, state: WorkflowState) -> str:
    """``from W at seq N, re-run from task T, with a new DAG; K completions reused``."""
    text = f"from {origin.workflow_id} at seq {origin.seq}"
    if origin.from_task is not None:
        text += f", re-run from task {origin.from_task}"
    if origin.new_dag:
        text += ", with a new DAG"
    reused = sum(1 for t in state.tasks.values() if t.forked)
    return text + f"; {reused} completion{'s' if reused != 1 else ''} reused"


def _attempts_text(row) -> str:
    if isinstance(row, LaneGroup):
        counts = row.outcomes()
        text = f"{len(row.lanes)} tasks: " + ", ".join(f"{n} {outcome}" for outcome, n in sorted(counts.items()))
        if row.failed_attempts:
            text += f" ({row.failed_attempts} failed attempt{'s' if row.failed_attempts != 1 else ''})"
        return text
    if not row.spans:
        if row.task.forked:
            return f"forked ({row.task.status})"
        return f"not started ({row.task.status})"
    text = ", ".join(f"#{s.attempt} {s.outcome} {fmt_duration(s.end - s.start)}" for s in row.spans)
    wait = row.wait
    if wait is not None:
        text += f", then waited {fmt_duration(wait[1] - wait[0])} for its sub-DAG"
    return text


def payload_targets(state: WorkflowState) -> dict[str, PayloadRef | None]:
    """The payloads ``--load-payloads`` shows: the workflow's output ("") and each task's."""
    targets: dict[str, PayloadRef | None] = {}
    if state.output is not None:
        targets[""] = state.output
    for task in state.tasks.values():
        if task.output is not None:
            targets[task.task_id] = task.output
    return targets
