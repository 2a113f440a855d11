"""Output of the management CLI (``ray-durable list/status/...``): tables, JSON, progress.

Pure formatting: no Ray, no storage. Times are local, to the second. Human output goes to
stdout; progress and diagnostics go to stderr, so ``--json`` output stays machine-readable.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from replay import WorkflowStatus
from replay._export import failure_dict, run_dict
from replay._format import short

from ..store._status import Description, WorkflowSummary, metadata


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str) + "\n"


def summaries_json(rows: Sequence[WorkflowSummary]) -> str:
    """A JSON array of :meth:`WorkflowSummary.to_dict` (times in Unix seconds)."""
    return to_json([row.to_dict() for row in rows])


def summaries_table(rows: Sequence[WorkflowSummary], storage_url: str, statuses: Sequence[str] | None,
                    total: int | None = None) -> str:
    """An aligned table and a one-line summary ("3 workflows in URL (2 SUCCESSFUL, 1 FAILED)")."""
    which = f"{'/'.join(statuses)} " if statuses else ""
    if not rows:
        return f"no {which}workflows in {storage_url}\n"
    lines = table([("WORKFLOW ID", "STATUS", "STARTED", "ENDED", "DURATION", "FAILED TASK")] + [
        (r.workflow_id, str(r.status), _when(r.start_time), _when(r.end_time),
         "-" if r.duration is None else _duration(r.duration), r.failed_task or "-") for r in rows])
    counts = Counter(str(r.status) for r in rows)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    total = len(rows) if total is None else total
    noun = "workflow" if total == 1 else "workflows"
    shown = f"; showing the first {len(rows)}" if len(rows) < total else ""
    lines.append(f"\n{total} {which}{noun} in {storage_url}{shown} ({by_status})")
    return "\n".join(lines) + "\n"


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Rows as left-aligned columns two spaces apart (the first row is the header)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]


def parse_since(text: str) -> float:
    """``--since``: a duration ago (``90s``, ``30m``, ``2h``, ``7d``) or an ISO date/time; Unix seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if match:
        unit = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
        return time.time() - float(match.group(1)) * unit
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a duration or a date: {text!r} (use e.g. 30m, 2h, 7d, 2026-11-30 or 2026-11-30T08:00)") from None
    return moment.timestamp()  # a naive time is local, as ``date`` shows it


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def status_json(found: Description, storage_url: str, now: float) -> str:
    """``get_metadata``'s fields, plus the id, the storage, the failure, the runs and the lease."""
    state = found.state
    doc = {"workflow_id": state.workflow_id, **metadata(state, found.status), "storage": storage_url,
           "failure": failure_dict(state), "runs": [run_dict(r) for r in found.runs],
           "lease": None if found.lease is None else found.lease.to_dict(),
           "tasks": dict(Counter(str(t.status) for t in state.tasks.values()))}
    return to_json(doc)


def status_text(found: Description, storage_url: str, now: float) -> str:
    """``key:  value`` lines: status (and why), failure, times, each run, the lease, tasks, metadata."""
    state, status = found.state, found.status
    start, end = state.start_time, state.end_time
    ended = _when(end)
    if start is not None and end is not None:
        ended += f"  (took {_duration(max(0.0, end - start))})"
    note = ""
    if status is WorkflowStatus.RESUMABLE:
        note = (f"  (the log says {state.status}, and no live lease shows a driver; if none runs it, "
                f"'ray-durable resume {state.workflow_id}' continues it)")
    rows = [("workflow", state.workflow_id), ("status", f"{status}{note}")]
    failure = failure_dict(state)
    if failure is not None:
        attempt = f" attempt {failure['attempt']}" if failure["attempt"] else ""
        rows.append(("failure", f"task {failure['task_id']!r}{attempt}: {_short_type(failure['error_type'])}: "
                                f"{short(failure['message'] or '', 200)}"))
    rows += [("started", _when(start)), ("ended", ended)]
    rows.append(("runs", str(len(found.runs))))
    for number, run in enumerate(found.runs, start=1):
        if run.ended_at is not None:
            text = f"{_when(run.started_at)} -> {_when(run.ended_at)}  ({_duration(run.duration)}, {run.outcome})"
        else:
            text = f"{_when(run.started_at)} -> ({run.outcome} as the log says)"
        if run.resumed:
            text += ", resumed"
        if run.owner is not None:
            text += f", on {getattr(run.owner, 'label', None) or run.owner}"
        rows.append((f"run {number}", text))
    if found.lease is not None:
        lease = found.lease
        holder = f"{lease.cluster} ({lease.owner})" if lease.cluster else lease.owner
        rows.append(("lease", f"held by {holder} until {_when(lease.expires_at)} "
                              f"(in {_duration(max(0.0, lease.expires_at - now))})"))
    counts = Counter(str(t.status) for t in state.tasks.values())
    rows.append(("tasks", f"{len(state.tasks)}" + (f"  ({', '.join(f'{n} {s}' for s, n in sorted(counts.items()))})"
                                                   if counts else "")))
    rows.append(("metadata", json.dumps(state.user_metadata or {}, sort_keys=True, default=str)))
    sub = state.submission
    versions = [f"{name} {v}" for name, v in (("ray", sub.ray_version), ("ray-durable", sub.engine_version)) if v]
    if versions:
        rows.append(("submitted with", ", ".join(versions)))
    if sub.runtime_env:
        rows.append(("runtime_env", json.dumps(sub.runtime_env, sort_keys=True, default=str)))
    rows.append(("storage", storage_url))
    width = max(len(key) for key, _ in rows)
    return "".join(f"{key + ':':<{width + 1}}  {value}\n" for key, value in rows)


def _short_type(error_type: str | None) -> str:
    """``builtins.ValueError`` -> ``ValueError``; other modules are kept."""
    text = error_type or "error"
    return text.removeprefix("builtins.")


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Progress:
    """``progress(done, total)`` for long operations, drawn on stderr.

    On a terminal one line is redrawn (at most ten times a second); otherwise a
    line is printed at every tenth of the way and at the end, so logs stay short.
    """

    def __init__(self, label: str, stream: TextIO | None = None):
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        finished = done >= total
        text = f"{self.label}: {done}/{total}" + (f" ({100 * done // total}%)" if total else "")
        if self.tty:
            now = time.monotonic()
            if finished or now - self._last_draw >= 0.1:
                self._last_draw = now
                self.stream.write("\r" + text + ("\n" if finished else ""))
                self.stream.flush()
            return
        tenth = 10 * done // total if total else 10
        if finished or tenth > self._last_tenth:
            self._last_tenth = tenth
            self.stream.write(text + "\n")
            self.stream.flush()
