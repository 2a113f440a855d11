"""Errors raised by storage backends.

Every error names the log (and, where it applies, the byte offset or key) so a
person reading it knows where to look. None of them ever carries credentials.
"""


class StorageError(Exception):
    """Base class of every storage error."""


class InvalidIdError(StorageError, ValueError):
    """A log id or blob name that could escape its prefix or is not portable."""


class UnknownSchemeError(StorageError, ValueError):
    """A storage URL whose scheme no registered backend handles."""


class StorageURLError(StorageError, ValueError):
    """A storage URL or root that names no usable place: blank or padded with spaces, a file, an
    unknown query parameter, no bucket, credentials in it."""


class AppendConflictError(StorageError):
    """Another writer appended first; nothing was written.

    Attributes:
        log_id: the log that was appended to.
        expected_next_seq: the sequence number the caller expected to write.
        actual_next_seq: the log's real next sequence number, when known.
    """

    def __init__(self, log_id: str, expected_next_seq: int, actual_next_seq: int | None):
        self.log_id = log_id
        self.expected_next_seq = expected_next_seq
        self.actual_next_seq = actual_next_seq
        actual = "unknown" if actual_next_seq is None else str(actual_next_seq)
        super().__init__(
            f"append conflict on log {log_id!r}: expected to write seq {expected_next_seq}, "
            f"but the log's next seq is {actual} (another writer got there first); "
            "nothing was written - re-read the log before appending again"
        )

    def __reduce__(self):  # (pickled as its arguments: storage errors cross Ray processes)
        return (type(self), (self.log_id, self.expected_next_seq, self.actual_next_seq))


class LogCorruptedError(StorageError):
    """Damage inside a log (not a torn tail): a bad checksum, a bad frame, a seq gap.

    Attributes:
        log_id: the damaged log.
        offset: byte offset of the damaged frame (local) or its position in the log.
        location: where the damage is, in the backend's own terms (a path or key).
    """

    def __init__(self, log_id: str, offset: int, reason: str, location: str = ""):
        self.log_id = log_id
        self.offset = offset
        self.reason = reason
        self.location = location
        where = f" ({location})" if location else ""
        super().__init__(f"log {log_id!r} is corrupted at byte offset {offset}{where}: {reason}")

    def __reduce__(self):
        return (type(self), (self.log_id, self.offset, self.reason, self.location))


class BlobNotFoundError(StorageError, KeyError):
    """A blob that does not exist."""

    def __init__(self, log_id: str, name: str):
        self.log_id = log_id
        self.name = name
        super().__init__(f"blob {name!r} of log {log_id!r} does not exist")

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]

    def __reduce__(self):
        return (type(self), (self.log_id, self.name))


class BucketNotFoundError(StorageError):
    """The S3 bucket named in the storage URL does not exist."""


class StorageIOError(StorageError, OSError):
    """The disk under a storage refused an operation (full, read-only, an I/O error).

    Also an ``OSError`` with the original ``errno``, so ``except OSError`` still catches it.
    The failed call left nothing behind: an append that fails is not in the log.

    Attributes:
        op: what was being done ("append", "put_blob", "check", ...).
        log_id: the log it was for (None for the storage as a whole).
        path: the file or directory that failed.
    """

    def __init__(self, op: str, log_id: str | None, path: str, errno: int | None, strerror: str,
                 note: str = ""):
        OSError.__init__(self, errno, strerror)
        self.op = op
        self.log_id = log_id
        self.path = path
        self.note = note
        subject = f" of log {log_id!r}" if log_id else ""
        code = f"[Errno {errno}] " if errno is not None else ""
        self.message = f"{op}{subject} failed at {path}: {code}{strerror}" + (f"; {note}" if note else "")
        self.args = (self.message,)

    def __str__(self) -> str:
        return self.message

    def __reduce__(self):
        return (type(self), (self.op, self.log_id, self.path, self.errno, self.strerror, self.note))
