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

from ._format import fmt_duration
from ._inspect import Entry, Log
from ._spans import lanes, run_boundaries
from ._state import WorkflowState

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
    boundaries = run_boundaries(e.event for e in log.entries if e.event is not None)
    for tid, lane in enumerate(lanes(state, boundaries), start=1):
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
