"""Small text formatters shared by the replay tool's renderers.

Times are shown in UTC so that output does not depend on the machine that
reads the log (and golden files stay stable).
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import msgspec

from ._events import Event, PayloadRef


def tag_of(event: Event) -> str:
    """The event's stored tag (``"task.completed"``), never its class name."""
    return type(event).__struct_config__.tag


def fmt_ts(ts: float | None) -> str:
    """``2023-11-14 22:13:20.125 UTC``, or ``-``."""
    if ts is None:
        return "-"
    moment = datetime.datetime.fromtimestamp(ts, datetime.timezone.utc)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


def fmt_duration(seconds: float | None) -> str:
    """A short human duration: ``850ms``, ``2.500s``, ``3m04.2s``, ``2h05m``; ``-`` if unknown."""
    if seconds is None:
        return "-"
    sign = "-" if seconds < 0 else ""
    s = abs(seconds)
    if s < 1:
        return f"{sign}{s * 1000:.0f}ms"
    if s < 60:
        return f"{sign}{s:.3f}s"
    if s < 3600:
        minutes, rest = divmod(s, 60)
        return f"{sign}{int(minutes)}m{rest:04.1f}s"
    hours, rest = divmod(s, 3600)
    return f"{sign}{int(hours)}h{int(rest // 60):02d}m"


def fmt_size(size: int) -> str:
    """``512 B``, ``1.5 KiB``, ``3.2 MiB``..."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def fmt_payload(ref: PayloadRef | None) -> str:
    """What a payload is and where it lives, without loading it: ``builtins.int, 24 B, inline``."""
    if ref is None:
        return "-"
    if ref.codec == "none":
        return f"{ref.type_name or 'value'}, not checkpointed"
    where = "inline" if ref.inline is not None else (f"blob {ref.blob}" if ref.blob else "nowhere")
    if ref.blob and ref.log:  # a fork's output, shared with the workflow that made it
        where += f" of {ref.log}"
    kind = ref.type_name or "unknown type"
    codec = "" if ref.codec == "cloudpickle" else f", codec {ref.codec}"
    return f"{kind}, {fmt_size(ref.size)}, {where}{codec}"


def short(text: str, limit: int = 60) -> str:
    """The first line of ``text``, cut to ``limit`` characters."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def compact_json(value: Any) -> str:
    """One-line JSON for metadata and options; anything JSON cannot hold is shown by repr."""
    return json.dumps(value, sort_keys=True, separators=(", ", ": "), default=repr)


def describe_value(value: Any) -> str:
    """A one-line rendering of an event field for ``events`` lines."""
    if isinstance(value, PayloadRef):
        return "<" + fmt_payload(value) + ">"
    if isinstance(value, (dict, list)):
        return compact_json(value)
    if isinstance(value, msgspec.Struct):  # e.g. a fork's origin
        return compact_json(msgspec.to_builtins(value))
    if isinstance(value, bytes):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return json.dumps(short(value, 80)) if value else '""'
    return str(value)
