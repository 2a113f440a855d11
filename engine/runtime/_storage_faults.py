"""A run stopped by its storage (a full or read-only disk, an S3 outage) is interrupted, not failed.

Its log holds everything durable up to the failed append (which wrote nothing), and says
RUNNING; once the run is gone it reads RESUMABLE. So the workflow must not be marked FAILED
(that append would fail too), and the driver must learn which workflow stopped, where the
storage failed, and that resuming it later loses nothing.
"""

from __future__ import annotations

from storage_backends import (
    AppendConflictError,
    BlobNotFoundError,
    InvalidIdError,
    LogCorruptedError,
    StorageError,
)

from ..exceptions import WorkflowError, WorkflowStorageError

# Storage errors that are answers, not outages: another writer, damage, a missing checkpoint, bad input.
_NOT_OUTAGES = (AppendConflictError, LogCorruptedError, BlobNotFoundError, InvalidIdError, WorkflowError)


def storage_interruption(workflow_id: str, error: BaseException) -> WorkflowStorageError | None:
    """The error a run ends with when ``error`` is its storage failing; None if it is not that."""
    if not isinstance(error, StorageError) or isinstance(error, _NOT_OUTAGES):
        return None
    return WorkflowStorageError(workflow_id, f"its storage failed ({error})", getattr(error, "path", ""))
