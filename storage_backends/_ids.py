"""Validation of log ids and blob names at the storage boundary, and the system-log namespace.

Ids become path components (local) and key components (S3), so anything that
could climb out of the storage prefix, or mean different things on different
backends, is refused here, once, for every backend.

Two kinds of log id share one string type:

* *user* ids (one per workflow): letters, digits, ``.``, ``_`` and ``-``,
  not starting with ``.`` or ``-`` (so never ``.``/``..``, a hidden name or
  something a shell takes for an option), at most 128 characters;
* *system* ids, ``system:<name>`` (see :func:`system_id`): the engine's own
  logs (the status index; later leases, timers). No user id contains ``:``,
  so the two can never collide, and every backend keeps system logs apart
  from user logs (local: ``<root>/.system/<name>/``; S3:
  ``<prefix>/system/...``), where :meth:`Storage.list_logs` never looks.
"""

import re

from ._errors import InvalidIdError

MAX_LOG_ID_LENGTH = 128
MAX_BLOB_NAME_LENGTH = 200
SYSTEM_PREFIX = "system:"

# A name: starts with a letter or digit, then letters, digits, and . _ - only: no
# separators, no spaces, no control chars. User log ids may also start with "_"
# (ray.workflow accepted ids like "__function_chain_test"; "_x" is a fine file and key name).
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_USER_ID_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_LOG_ID_PATTERN = re.compile(rf"(?:{re.escape(SYSTEM_PREFIX)}{_ID_PATTERN.pattern}|{_USER_ID_PATTERN.pattern})")


def _check(kind: str, value: object, max_length: int, pattern: re.Pattern = _ID_PATTERN,
           start: str = "starting with a letter or digit") -> str:
    if not isinstance(value, str):
        raise InvalidIdError(f"{kind} must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise InvalidIdError(f"{kind} must not be empty")
    if len(value) > max_length:
        raise InvalidIdError(
            f"{kind} {value[:40]!r}... is {len(value)} characters long; the limit is {max_length}"
        )
    if not pattern.fullmatch(value):
        raise InvalidIdError(
            f"{kind} {value!r} is not allowed: use letters, digits, '.', '_' and '-' only, "
            f"{start}; no '/', '\\', spaces or '..'"
        )
    if ".." in value:
        raise InvalidIdError(f"{kind} {value!r} must not contain '..'")
    return value


def validate_log_id(log_id: object) -> str:
    """Return ``log_id`` if it is a safe, portable log id (user or system), else raise InvalidIdError."""
    return _check("workflow id", log_id, MAX_LOG_ID_LENGTH, _LOG_ID_PATTERN,
                  "starting with a letter, digit or '_'")


def system_id(name: str) -> str:
    """The log id of the system log ``name``: ``system_id("status_index") == "system:status_index"``.

    Every backend stores system logs apart from user logs and never lists them,
    and no user id can take this form, so engine-owned logs (an index, leases,
    timers) can never collide with a workflow's log, whatever its id.

    Raises:
        InvalidIdError: ``name`` is not a letter or digit followed by letters, digits, '.', '_', '-'.
    """
    _check("system log name", name, MAX_LOG_ID_LENGTH - len(SYSTEM_PREFIX))
    return SYSTEM_PREFIX + name


def is_system_id(log_id: object) -> bool:
    """Whether ``log_id`` has the form of a system log id (``system:<name>``, see :func:`system_id`)."""
    return isinstance(log_id, str) and log_id.startswith(SYSTEM_PREFIX)


def system_name(log_id: str) -> str | None:
    """The ``<name>`` of a (valid) system log id, or None for a user log id.

    Backends call this to place system logs apart from user logs.
    """
    return log_id[len(SYSTEM_PREFIX):] if is_system_id(log_id) else None


def is_listable_log_id(name: str) -> bool:
    """Whether a name found in storage is a user log's id: a valid id, not a system one.

    Backends call this on what they find (directory names, key prefixes) so that
    ``list_logs`` skips system logs, tombstones and anything foreign alike.
    """
    try:
        validate_log_id(name)
    except InvalidIdError:
        return False
    return not is_system_id(name)


def validate_blob_name(name: object) -> str:
    """Return ``name`` if it is a safe blob name, else raise InvalidIdError."""
    return _check("blob name", name, MAX_BLOB_NAME_LENGTH)
