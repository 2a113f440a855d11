"""Output of the management CLI (``ray-durable list/status/...``): tables, JSON, progress.

Pure formatting: no Ray, no storage. Human output goes to stdout; progress
and diagnostics go to stderr, so ``--json`` output stays machine-readable.
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO


def workflows_json(rows: Sequence[tuple[str, Any]]) -> str:
    """``[{"workflow_id": ..., "status": ...}, ...]`` as an indented JSON array."""
    return json.dumps([{"workflow_id": wid, "status": str(status)} for wid, status in rows], indent=2) + "\n"


def workflows_table(rows: Sequence[tuple[str, Any]], storage_url: str, statuses: Sequence[str] | None) -> str:
    """An aligned two-column table and a one-line summary ("3 workflows: 2 SUCCESSFUL, 1 FAILED")."""
    which = f"{'/'.join(statuses)} " if statuses else ""
    if not rows:
        return f"no {which}workflows in {storage_url}\n"
    width = max(len("WORKFLOW ID"), *(len(wid) for wid, _ in rows))
    lines = [f"{'WORKFLOW ID':<{width}}  STATUS"]
    lines += [f"{wid:<{width}}  {status}" for wid, status in rows]
    counts = Counter(str(status) for _, status in rows)
    by_status = ", ".join(f"{n} {s}" for s, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    noun = "workflow" if len(rows) == 1 else "workflows"
    lines.append(f"\n{len(rows)} {which}{noun} in {storage_url} ({by_status})")
    return "\n".join(lines) + "\n"


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts).astimezone().isoformat(sep=" ", timespec="seconds")


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2f}s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"


def status_json(workflow_id: str, status: Any, metadata: dict[str, Any], storage_url: str) -> str:
    """Everything ``get_metadata`` returns, plus the id, the live status and the storage URL."""
    doc = {"workflow_id": workflow_id, **metadata, "status": str(status), "storage": storage_url}
    return json.dumps(doc, indent=2, default=str) + "\n"


def status_text(workflow_id: str, status: Any, metadata: dict[str, Any], storage_url: str) -> str:
    """A few ``key  value`` lines: status, start/end time and duration, user metadata, versions."""
    stats = metadata.get("stats") or {}
    start, end = stats.get("start_time"), stats.get("end_time")
    ended = _when(end)
    if start is not None and end is not None:
        ended += f"  (took {_duration(max(0.0, end - start))})"
    elif start is not None:
        ended += f"  ({_duration(max(0.0, time.time() - start))} since start)"
    rows = [
        ("workflow", workflow_id),
        ("status", str(status)),
        ("started", _when(start)),
        ("ended", ended),
        ("metadata", json.dumps(metadata.get("user_metadata") or {}, sort_keys=True, default=str)),
    ]
    versions = [f"{name} {metadata[key]}" for name, key in (("ray", "ray_version"),
                                                            ("ray-durable", "engine_version"))
                if metadata.get(key)]
    if versions:
        rows.append(("submitted with", ", ".join(versions)))
    if metadata.get("runtime_env"):
        rows.append(("runtime_env", json.dumps(metadata["runtime_env"], sort_keys=True, default=str)))
    rows.append(("storage", storage_url))
    width = max(len(key) for key, _ in rows)
    return "".join(f"{key + ':':<{width + 1}}  {value}\n" for key, value in rows)


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
