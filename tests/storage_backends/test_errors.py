"""Storage errors cross process boundaries (a manager actor raises them to a driver), so
each must survive pickling whole: same type, same message, same attributes."""

import pickle

import pytest

import storage_backends as sb

ERRORS = [
    sb.AppendConflictError("w", 3, 5),
    sb.AppendConflictError("w", 3, None),
    sb.LogCorruptedError("w", 120, "bad checksum", "/data/w/events.log"),
    sb.LogCorruptedError("w", 0, "seq gap"),
    sb.BlobNotFoundError("w", "out-abc-1"),
    sb.InvalidIdError("log id '../x' is not allowed"),
    sb.UnknownSchemeError("no backend for 'ftp://'"),
    sb.BucketNotFoundError("bucket 'b' does not exist"),
    sb.StorageError("anything"),
    sb.StorageURLError("storage URL '' is blank"),
    sb.StorageIOError("append", "w", "/data/w/events.log", 28, "No space left on device", "nothing was appended"),
    sb.StorageIOError("check", None, "/data", 30, "Read-only file system"),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert vars(copy) == vars(error)
