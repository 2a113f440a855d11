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


def _check(kind: str, value: object, max_length: int, pattern: re.Pattern = _ID_PATTERN) -> str:
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
            "starting with a letter or digit (no '/', '\\', spaces or '..')"
        )
    if ".." in value:
        raise InvalidIdError(f"{kind} {value!r} must not contain '..'")
    return value


def validate_log_id(log_id: object) -> str:
    """Return ``log_id`` if it is a safe, portable log id, else raise InvalidIdError."""
    return _check("workflow id", log_id, MAX_LOG_ID_LENGTH, _LOG_ID_PATTERN)


def is_system_id(log_id: str) -> bool:
    """Ids starting with "_" are reserved for system logs (e.g. an index); list_logs skips them."""
    return log_id.startswith(SYSTEM_PREFIX)


def validate_blob_name(name: object) -> str:
    """Return ``name`` if it is a safe blob name, else raise InvalidIdError."""
    return _check("blob name", name, MAX_BLOB_NAME_LENGTH)
