"""Append-only logs and blobs on local disk or S3. Speaks bytes; knows no workflows.

Open a backend with :func:`open_storage`; plug in another with
:func:`register_scheme`; check it with :mod:`storage_backends.conformance`.
"""

from ._base import Storage
from ._errors import (
    AppendConflictError,
    BlobNotFoundError,
    BucketNotFoundError,
    InvalidIdError,
    LogCorruptedError,
    StorageError,
    StorageIOError,
    StorageURLError,
    UnknownSchemeError,
)
from ._framing import Batch, Record, TornTail
from ._ids import (
    MAX_LOG_ID_LENGTH,
    SYSTEM_PREFIX,
    is_system_id,
    system_id,
    system_name,
    validate_blob_name,
    validate_log_id,
)
from ._local import LocalStorage
from ._registry import (
    DEFAULT_STORAGE,
    STORAGE_ENV_VAR,
    default_storage_url,
    open_storage,
    register_scheme,
    registered_schemes,
)
from ._s3 import S3Storage

register_scheme("file", LocalStorage)
register_scheme("s3", S3Storage)

__all__ = [
    "AppendConflictError",
    "Batch",
    "BlobNotFoundError",
    "BucketNotFoundError",
    "DEFAULT_STORAGE",
    "InvalidIdError",
    "LocalStorage",
    "LogCorruptedError",
    "MAX_LOG_ID_LENGTH",
    "Record",
    "S3Storage",
    "STORAGE_ENV_VAR",
    "SYSTEM_PREFIX",
    "Storage",
    "StorageError",
    "StorageIOError",
    "StorageURLError",
    "TornTail",
    "UnknownSchemeError",
    "default_storage_url",
    "is_system_id",
    "open_storage",
    "register_scheme",
    "registered_schemes",
    "system_id",
    "system_name",
    "validate_blob_name",
    "validate_log_id",
]
