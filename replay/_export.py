"""``export``: a log as JSON lines, or as a Chrome trace for Perfetto / chrome://tracing.

JSON lines are lossless: one object per record with its ``seq`` and byte
``offset`` and every field of the event (bytes, i.e. inline payloads, as
base64; nothing is unpickled). An unknown event type is exported as its
plain fields with ``"unknown": true``; an undecodable record as its error.

The Chrome trace holds one complete ("X") event per task attempt, on one
thread (row) per task, in microseconds since the Unix epoch.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import msgspec

from ._events import PayloadRef
from ._format import fmt_duration
from ._inspect import Entry, Log
from ._runs import Run
from ._spans import Timeline, attempts_run, lanes
from ._state import TaskState, TaskStatus, WorkflowState

_json = msgspec.json.Encoder()


def entry_dict(entry: Entry) -> dict[str, Any]:
    """The JSON-ready form of one record."""
    head: dict[str, Any] = {"seq": entry.seq, "offset": entry.offset}
    if entry.event is not None:
        return {**head, **msgspec.to_builtins(entry.event)}
    if entry.unknown and isinstance(entry.raw, dict):
        return {**head, **_plain(entry.raw), "unknown": True}
    out = {**head, "undecodable": True, "error": str(entry.error)}
    if entry.raw is not None:
        out["raw"] = _plain(entry.raw)
    return out


def _plain(value: Any) -> Any:
    """Raw msgpack data as JSON-ready builtins (bytes as base64, non-string keys as strings)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)


def entry_json(entry: Entry) -> str:
    return _json.encode(entry_dict(entry)).decode()


def to_jsonl(log: Log) -> str:
    return "".join(entry_json(entry) + "\n" for entry in log.entries)


def to_chrome_trace(state: WorkflowState, log: Log) -> dict[str, Any]:
    """A Chrome trace-event document (the JSON Object Format) of the workflow's task attempts."""
    pid = 1
    events: list[dict[str, Any]] = [
        {"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
         "args": {"name": f"workflow {state.workflow_id} ({state.status})"}},
        {"ph": "M", "name": "thread_name", "pid": pid, "tid": 0, "args": {"name": "workflow"}},
    ]
    for entry in log.entries:  # workflow-level moments as instant events on row 0
        if entry.event is not None and entry.tag.startswith("workflow."):
            events.append({"ph": "i", "s": "p", "name": entry.tag, "cat": "workflow", "pid": pid, "tid": 0,
                           "ts": _us(entry.event.ts), "args": {"seq": entry.seq}})
    for tid, lane in enumerate(lanes(state, [e.event for e in log.entries if e.event is not None]), start=1):
        task = lane.task
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": f"{task.task_id} ({task.name})"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                       "args": {"sort_index": tid}})
        for span in lane.spans:
            args: dict[str, Any] = {"task_id": task.task_id, "attempt": span.attempt, "outcome": span.outcome,
                                    "duration": fmt_duration(span.end - span.start)}
            if span.error is not None:
                args["error"] = f"{span.error.error_type}: {span.error.message}"
            events.append({"ph": "X", "name": f"{task.name} #{span.attempt}", "cat": f"attempt,{span.outcome}",
                           "pid": pid, "tid": tid, "ts": _us(span.start),
                           "dur": max(0, _us(span.end) - _us(span.start)), "args": args,
                           **({"cname": "terrible"} if span.outcome == "failed" else {})})
        if lane.wait is not None:
            start, end = lane.wait
            events.append({"ph": "X", "name": f"waiting for {task.continuation_output_task_id}",
                           "cat": "continuation", "pid": pid, "tid": tid, "ts": _us(start),
                           "dur": max(0, _us(end) - _us(start)),
                           "args": {"task_id": task.task_id, "output_task_id": task.continuation_output_task_id}})
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "otherData": {"workflow_id": state.workflow_id, "status": str(state.status),
                          "events": len(log.entries), "source": "ray-durable replay export"}}


def _us(ts: float) -> int:
    return int(round(ts * 1_000_000))


def chrome_trace_json(state: WorkflowState, log: Log) -> str:
    return json.dumps(to_chrome_trace(state, log), indent=1) + "\n"


# --- JSON for show / at / timeline ---------------------------------------------------------

def payload_dict(ref: PayloadRef | None) -> dict[str, Any] | None:
    """What a payload is and where it lives (never its bytes)."""
    if ref is None:
        return None
    return {"type_name": ref.type_name, "size": ref.size, "digest": ref.digest, "codec": ref.codec,
            "inline": ref.inline is not None, "blob": ref.blob}


def failure_dict(state: WorkflowState) -> dict[str, Any] | None:
    """The failed task, its exception type and message, the attempt, and the traceback; None if none."""
    if state.failed_task_id is None:
        return None
    task = state.tasks.get(state.failed_task_id)
    error = task.error if task is not None else None
    return {"task_id": state.failed_task_id, "error_type": state.error_type, "message": state.error_message,
            "attempt": error.attempt if error is not None else None,
            "traceback": error.traceback if error is not None else None}


def state_dict(state: WorkflowState, runs: list[Run] | None = None) -> dict[str, Any]:
    """A folded workflow as JSON-ready data: what ``show`` prints, every field whole."""
    sub = state.submission
    return {
        "workflow_id": state.workflow_id,
        "status": None if state.status is None else str(state.status),
        "start_time": state.start_time, "end_time": state.end_time, "last_event_time": state.last_ts,
        "events": state.last_seq + 1,
        "cancel_requested": state.cancel_requested,
        "failure": failure_dict(state),
        "runs": [run_dict(r) for r in runs] if runs is not None else [{"run_id": r} for r in state.run_ids],
        "user_metadata": dict(state.user_metadata),
        "versions": None if sub is None else {"ray-durable": sub.engine_version, "ray": sub.ray_version,
                                              "python": sub.python_version},
        "output": payload_dict(state.output),
        "forked_from": None if sub is None or sub.forked_from is None else msgspec.to_builtins(sub.forked_from),
        "tasks": [task_dict(state, t) for t in state.tasks.values()],
    }


def task_dict(state: WorkflowState, task: TaskState) -> dict[str, Any]:
    return {
        "task_id": task.task_id, "name": task.name, "status": str(task.status),
        "attempts": attempts_run(task), "latest_attempt": task.attempt,
        "parent_task_id": task.parent_task_id,
        "scheduled_at": task.scheduled_at, "started_at": task.started_at, "ended_at": task.ended_at,
        "continued_into": state.continuation_chain(task.task_id)[1:],
        "output": payload_dict(task.output) if task.status is TaskStatus.SUCCESSFUL else None,
        "errors": [{"attempt": e.attempt, "error_type": e.error_type, "message": e.message,
                    "traceback": e.traceback, "at": e.at} for e in task.errors],
        "task_options": dict(task.task_options), "user_metadata": dict(task.user_metadata),
        "forked": task.forked,
    }


def run_dict(run: Run) -> dict[str, Any]:
    owner = run.owner
    if owner is not None and not isinstance(owner, (str, int, float, bool, dict, list)):
        owner = msgspec.to_builtins(owner) if isinstance(owner, msgspec.Struct) else repr(owner)
    return {"run_id": run.run_id, "started_at": run.started_at, "ended_at": run.ended_at,
            "outcome": run.outcome, "resumed": run.resumed, "owner": owner}


def timeline_dict(timeline: Timeline) -> dict[str, Any]:
    """Everything a timeline draws: runs, marks, and per task its attempts and gaps (Unix seconds)."""
    return {
        "workflow_id": timeline.state.workflow_id, "status": str(timeline.state.status),
        "start": timeline.t0, "end": timeline.t1,
        "runs": [run_dict(r) for r in timeline.runs],
        "marks": [{"ts": m.ts, "kind": m.kind, "label": m.label} for m in timeline.marks],
        "idle": [{"start": a, "end": b} for a, b in timeline.scale.breaks],
        "tasks": [{
            "task_id": lane.task.task_id, "name": lane.task.name, "depth": lane.depth,
            "attempts": [{"attempt": s.attempt, "start": s.start, "end": s.end, "outcome": s.outcome,
                          "error": None if s.error is None else f"{s.error.error_type}: {s.error.message}"}
                         for s in lane.spans],
            "gaps": [{"kind": g.kind, "start": g.start, "end": g.end, "attempt": g.attempt} for g in lane.gaps],
            "own_time": lane.own_time,
        } for lane in timeline.lanes],
    }


def timeline_json(timeline: Timeline) -> str:
    return json.dumps(timeline_dict(timeline), indent=1) + "\n"


def state_json(state: WorkflowState, runs: list[Run] | None = None) -> str:
    return json.dumps(state_dict(state, runs), indent=1, default=repr) + "\n"
