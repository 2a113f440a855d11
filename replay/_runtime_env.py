"""Runtime environments as a workflow's log records them: no secret values, ever.

A job's Ray ``runtime_env`` often carries secrets: ``env_vars`` values (API tokens,
passwords) and credentials inside URLs (``pip: ["--index-url https://user:token@host/..."]``).
The submission event records the environment so that a resume, even on another cluster,
runs tasks where they were meant to run; but a log is read by tools, exported, copied. So
it records env var *names* (each value is :data:`NOT_RECORDED`) and URLs without their
``user:password@`` part, and whoever resumes supplies what was left out, from its own job
(see :func:`missing_parts` and :func:`completed`).

Logs written before this rule may hold values: :func:`recorded` is also what every tool
shows, so those values are never printed either.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

NOT_RECORDED = "<not recorded>"
_USERINFO = re.compile(r"(?<=://)[^\s/@\"'<>]+@")  # the user:password@ of a URL
_REDACTED_USERINFO = "[REDACTED]@"


def recorded(env: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``env`` as it may be stored or shown: env var values left out, URL credentials removed."""
    if not env:
        return None if env is None else {}
    out = {}
    for key, value in env.items():
        if key == "env_vars" and isinstance(value, Mapping):
            out[key] = dict.fromkeys(sorted(value), NOT_RECORDED)
        else:
            out[key] = _scrubbed(value)
    return out


def recorded_task_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """A task's recorded options with any ``runtime_env`` in them passed through :func:`recorded`
    (Ray options sit under ``"ray_options"``; logs of 0.1 held them at the top level)."""
    out = dict(options)
    for holder in (out, out.get("ray_options")):
        if isinstance(holder, dict) and isinstance(holder.get("runtime_env"), Mapping):
            if holder is not out:
                holder = out["ray_options"] = dict(holder)
            holder["runtime_env"] = recorded(holder["runtime_env"])
    return out


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return _USERINFO.sub(_REDACTED_USERINFO, value)
    if isinstance(value, Mapping):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrubbed(v) for v in value]
    return value


def _left_out(value: Any) -> bool:
    if isinstance(value, str):
        return value == NOT_RECORDED or _REDACTED_USERINFO in value
    if isinstance(value, Mapping):
        return any(_left_out(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_left_out(v) for v in value)
    return False


def left_out(env: Mapping[str, Any] | None) -> list[str]:
    """What a recorded ``env`` lacks: ``"env_vars.NAME"`` per env var, else the top-level key."""
    parts = []
    for key, value in (env or {}).items():
        if key == "env_vars" and isinstance(value, Mapping):
            parts.extend(f"env_vars.{name}" for name, v in value.items() if v == NOT_RECORDED)
        elif _left_out(value):
            parts.append(key)
    return parts


def supplied(env: Mapping[str, Any] | None, job_env: Mapping[str, Any] | None,
             environ: Mapping[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The parts a recorded ``env`` left out, taken from the resuming job, and what none supplied.

    An env var comes from the job's ``runtime_env["env_vars"]``, else from ``environ`` (the
    driver's own environment); another part (a ``pip`` list with a credential in it...) from the
    job's ``runtime_env``.

    Returns:
        (``{"env_vars": {...}, key: value, ...}``, the parts still missing).
    """
    job_env = job_env or {}
    job_vars = job_env.get("env_vars") or {}
    values: dict[str, Any] = {}
    missing = []
    for part in left_out(env):
        if part.startswith("env_vars."):
            name = part[len("env_vars."):]
            value = job_vars.get(name, environ.get(name))
            if value is None:
                missing.append(part)
            else:
                values.setdefault("env_vars", {})[name] = value
        elif part in job_env:
            values[part] = job_env[part]
        else:
            missing.append(part)
    return values, missing


def completed(env: Mapping[str, Any] | None, values: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The runtime env tasks run with: the recorded ``env`` with the ``values`` it left out."""
    if not env:
        return None
    out = dict(env)
    values = values or {}
    if isinstance(out.get("env_vars"), Mapping):
        given = values.get("env_vars") or {}
        out["env_vars"] = {name: given.get(name, value) for name, value in out["env_vars"].items()
                           if given.get(name, value) != NOT_RECORDED}
    for key, value in values.items():
        if key != "env_vars":
            out[key] = value
    return out
