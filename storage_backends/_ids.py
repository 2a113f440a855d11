"""Validation of log ids and blob names at the storage boundary.

Ids become path components (local) and key components (S3), so anything that
could climb out of the storage prefix, or mean different things on different
backends, is refused here, once, for every backend.
"""

import re

from ._errors import InvalidIdError

MAX_LOG_ID_LENGTH = 128
MAX_BLOB_NAME_LENGTH = 200

# Starts with a letter or digit (so never "." / ".." / a hidden name), then letters,
# digits, and . _ - only: no separators, no spaces, no control chars. Log ids may also
# be one "_" followed by such a name: reserved for system logs, never listed.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_LOG_ID_PATTERN = re.compile(r"_?[A-Za-z0-9][A-Za-z0-9._-]*")
SYSTEM_PREFIX = "_"


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
    """Return ``log_id`` if it is a safe, portable log id, else raise InvalidIdError."""
    return _check("workflow id", log_id, MAX_LOG_ID_LENGTH, _LOG_ID_PATTERN,
                  "starting with a letter or digit (system logs: one '_', then a letter or digit)")


def is_system_id(log_id: str) -> bool:
    """Whether ``log_id`` names a system log: ids starting with "_" (e.g. "_status_index").

    They are reserved for the engine's own logs (an index, say): valid for every
    other operation, but never returned by ``Storage.list_logs``.
    """
    return isinstance(log_id, str) and log_id.startswith(SYSTEM_PREFIX)


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
