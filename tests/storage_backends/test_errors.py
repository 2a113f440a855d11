"""Storage errors cross process boundaries (a manager actor raises them to a driver), so
each must survive pickling whole: same type, same message, same attributes."""

import pickle

import pytest

from storage_backends import (
    AppendConflictError,
    BlobNotFoundError,
    BucketNotFoundError,
    InvalidIdError,
    LogCorruptedError,
    StorageError,
    UnknownSchemeError,
)

ERRORS = [
    AppendConflictError("w", 3, 5),
    AppendConflictError("w", 3, None),
    LogCorruptedError("w", 120, "bad checksum", "/data/w/events.log"),
    LogCorruptedError("w", 0, "seq gap"),
    BlobNotFoundError("w", "out-abc-1"),
    InvalidIdError("log id '../x' is not allowed"),
    UnknownSchemeError("no backend for 'ftp://'"),
    BucketNotFoundError("bucket 'b' does not exist"),
    StorageError("anything"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
