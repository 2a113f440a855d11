"""The storage interface every backend implements.

Storage speaks bytes: per-log append-only sequences of records, and blobs kept
beside each log. It knows nothing about workflows or events; one log per
workflow is the engine's convention, not this module's.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from typing import ClassVar

from ._framing import Batch, Record, TornTail


class Storage(abc.ABC):
    """Async, append-only logs of records plus blobs, addressed by log id.

    Subclass this and call :func:`storage_backends.register_scheme` to plug in a
    third-party backend; run :mod:`storage_backends.conformance` against it.

    Attributes:
        scheme: the URL scheme this backend serves (``"file"``, ``"s3"``, ...).
        url: the URL this instance was opened with (never holds credentials).
    """

    scheme: ClassVar[str] = ""
    url: str = ""

    @classmethod
    @abc.abstractmethod
    def from_url(cls, url: str, **options) -> Storage:
        """Open the backend named by ``url`` (its scheme already matched)."""

    # --- logs -----------------------------------------------------------------

    @abc.abstractmethod
    async def append(self, log_id: str, records: Sequence[bytes], expected_next_seq: int) -> int:
        """Append ``records`` atomically iff the log's next seq is ``expected_next_seq``.

        The records get seqs ``expected_next_seq, expected_next_seq + 1, ...``.
        The append is durable when this returns.

        Returns:
            the log's new next seq.

        Raises:
            AppendConflictError: the log's next seq differs; nothing was written.
        """

    @abc.abstractmethod
    def read(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Record]:
        """Yield the log's records with seq >= ``from_seq``, in order.

        An unknown log yields nothing. A torn tail is silently not part of the
        log; damage before the tail raises LogCorruptedError after every record
        before it was yielded.
        """

    async def read_batches(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Batch]:
        """Like :meth:`read`, but whole batches: the records' bytes back to back, for bulk readers.

        Same order, same records, same errors as :meth:`read`. This default
        makes each record its own batch; backends that store batches override it.
        """
        async for record in self.read(log_id, from_seq):
            yield Batch(record.seq, record.data, (len(record.data),), record.offset)

    @abc.abstractmethod
    async def next_seq(self, log_id: str) -> int:
        """The seq the next appended record would get (0 for an empty or unknown log)."""

    @abc.abstractmethod
    async def list_logs(self) -> list[str]:
        """Every user log id that has at least one record, sorted.

        System logs (``system:<name>``, see :func:`storage_backends.system_id`) are
        never listed. A backend keeps them where no user log id can reach: map
        them with :func:`storage_backends.system_name`, as the local and S3
        backends do.
        """

    @abc.abstractmethod
    async def delete(self, log_id: str) -> bool:
        """Remove the log and all its blobs; True if anything was there."""

    async def torn_tail(self, log_id: str) -> TornTail | None:
        """The bytes after the log's last whole batch, which :meth:`read` treats as not written.

        A crash in the middle of an append leaves them; the next append replaces them. For
        tools that must report them (``replay verify``); None if there are none, and always
        None from a backend whose appends are atomic (S3: a PUT is whole or absent).
        """
        return None

    async def check(self) -> None:
        """Check, before anything relies on it, that this storage can be read and written.

        The default lists the logs (an unreachable store or a missing bucket fails here).

        Raises:
            StorageError: saying what is wrong and what to do about it.
        """
        await self.list_logs()

    async def exists(self, log_id: str) -> bool:
        """Whether the log has at least one record."""
        return await self.next_seq(log_id) > 0

    async def read_all(self, log_id: str, from_seq: int = 0) -> list[Record]:
        """All records of :meth:`read` as a list."""
        return [record async for record in self.read(log_id, from_seq)]

    # --- exclusive writers (optional: the defaults are correct, only slower) --

    def tail_token(self, log_id: str) -> bytes | None:
        """What this instance knows of the log's tail after its own last append, as opaque
        bytes for another instance's :meth:`learn_tail` (None: nothing worth handing over)."""
        return None

    def learn_tail(self, log_id: str, token: bytes | None) -> None:
        """Take what another instance knew of the log's tail (its :meth:`tail_token`), so that
        the next append here need not look the tail up first; it checks it as it checks what
        it saw itself. A token that is not one of this backend's is ignored."""

    def hold(self, log_id: str) -> None:
        """Nobody deletes the log (and begins it anew) until :meth:`release`: the caller
        vouches for it (a lease above storage, say). A backend may then trust the tail it
        last saw without proving it again before an append. Appends stay conditional on
        ``expected_next_seq``: another writer's append is still a conflict."""

    def release(self, log_id: str) -> None:
        """End :meth:`hold`; the backend may forget what it cached about the log."""

    # --- blobs ----------------------------------------------------------------

    @abc.abstractmethod
    async def put_blob(self, log_id: str, name: str, data: bytes) -> None:
        """Store ``data`` as blob ``name`` of ``log_id`` (replacing any blob of that name)."""

    @abc.abstractmethod
    async def get_blob(self, log_id: str, name: str) -> bytes:
        """The blob's bytes; BlobNotFoundError if it does not exist."""

    @abc.abstractmethod
    async def blob_exists(self, log_id: str, name: str) -> bool:
        """Whether blob ``name`` of ``log_id`` exists."""

    @abc.abstractmethod
    async def delete_blob(self, log_id: str, name: str) -> bool:
        """Remove one blob; True if it was there."""

    async def list_blobs(self, log_id: str) -> dict[str, int] | None:
        """Every blob of ``log_id``: name -> size in bytes ({} if none).

        None means this backend cannot list blobs; callers then know only the blobs they
        named themselves (a third-party backend that predates this method says so).
        """
        return None

    # --- lifecycle ------------------------------------------------------------

    async def close(self) -> None:
        """Release connections and file handles. The instance is unusable afterwards."""

    async def __aenter__(self) -> Storage:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
