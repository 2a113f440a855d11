"""Local-disk backend: one framed, fsynced append-only file per log.

Layout under the root directory (directories 0700, files 0600):

    <root>/<log_id>/events.log        batches framed by :mod:`._framing`
    <root>/<log_id>/blobs/<name>      one file per blob, written atomically
    <root>/.system/<name>/...         the same, for system log ``system:<name>``

One writer per log is enforced with ``flock`` on the log file: under the lock
an append re-checks the log's real tail, so a stale writer (another asyncio
task, another thread or another process) gets AppendConflictError and writes
nothing. A torn tail left by a crashed writer is cut off under the same lock
before the new batch is written, and the append returns only after ``fsync``
(and, for a new log, an fsync of its directory).

Where the time goes. An append is one ``pwrite`` + ``fsync`` plus a few cheap
syscalls (flock, fstat, stat, one 24-byte pread, unlock); what costs is the hop
to a thread and back. So the whole locked section runs as *one* call on a few
I/O threads owned by this storage, handed work through a plain queue and
answering through ``call_soon_threadsafe`` (about half the cost of
``run_in_executor``), and the log files of the last 64 logs appended to stay
open between appends (a thread lock per log serializes this storage's own
threads on its fd, since ``flock`` does not exclude threads sharing one; both in
:mod:`storage_backends._local_io`).
Before writing, an append checks that its fd is still the file at the log's
path, so a log deleted or replaced meanwhile (``delete`` renames it away
under the lock) is never written to. Each log's tail (offset, next seq, last
frame header) is cached, so an append reads only what other writers added
since, after checking that the cached last frame is still there byte for byte.
Reading a log is one hop to read the file, then :func:`._framing.scan`. Blobs
are read and written with aiofiles.

Damage that was already in a log when this storage first looked at it is
found by that first scan, and no append goes past it; damage appearing later
*before* the cached tail (bit rot in bytes already checked) is found by the
next read, not by appends.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import uuid
import weakref
from collections.abc import AsyncIterator, Sequence
from urllib.parse import unquote, urlsplit

import aiofiles
import aiofiles.os

from ._base import Storage
from ._errors import (
    AppendConflictError,
    BlobNotFoundError,
    LogCorruptedError,
    StorageError,
    StorageIOError,
    StorageURLError,
)
from ._framing import HEADER_SIZE, Batch, Record, TornTail, describe_tail, encode_batch, scan
from ._ids import is_listable_log_id, system_name, validate_blob_name, validate_log_id
from ._local_io import MAX_OPEN_LOGS, IoThreads, LogHandle, LogHandles, release

LOG_FILE = "events.log"
BLOB_DIR = "blobs"
_TOMB_ATTEMPTS = 5  # renames onto a tomb another delete of the same log is still removing
SYSTEM_DIR = ".system"  # system logs (``system:<name>``): <root>/.system/<name>/, never listed
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_NO_RECORDS = 1 << 62  # keep_from_seq that keeps nothing: a tail-only scan
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


@contextlib.contextmanager
def _disk_errors(op: str, log_id: str | None, path: str, note: str):
    """An OSError from the disk (full, read-only, EIO...) as a StorageIOError naming what failed."""
    try:
        yield
    except (StorageError, FileNotFoundError):
        raise  # (a missing file means something else to each caller)
    except OSError as exc:
        raise StorageIOError(op, log_id, exc.filename or path, exc.errno, exc.strerror or str(exc),
                             note) from exc


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags | _O_CLOEXEC, _FILE_MODE)


def _truncate_quietly(fd: int, size: int) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError:
        pass


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_file(path: str) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        size = os.fstat(fd).st_size
        chunks = []
        while True:  # to EOF, even if the file grew since fstat
            chunk = os.read(fd, max(size, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            size = 1 << 20
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)  # b"" if empty
    finally:
        os.close(fd)


async def _write_durably(path: str, data: bytes) -> None:
    async with aiofiles.open(path, "wb", opener=_private_opener) as f:
        await f.write(data)
        await f.flush()
        await aiofiles.os.wrap(os.fsync)(f.fileno())


class LocalStorage(Storage):
    """Logs and blobs in a directory on local disk (or NFS for multi-node clusters)."""

    scheme = "file"

    def __init__(self, root: str):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = "file://" + self.root
        self._reset_runtime_state()

    def _reset_runtime_state(self) -> None:
        # log_id -> (st_dev, st_ino, valid end, next seq, offset of the last frame, its header)
        # as last seen: an append scans only what other writers added since.
        self._tails: dict[str, tuple[int, int, int, int, int, bytes]] = {}
        self._io = IoThreads()
        self._handles = LogHandles()
        weakref.finalize(self, release, self._io, self._handles)

    def __getstate__(self) -> dict:
        # Picklable (for Ray tasks and child processes): the root travels, threads and caches do not.
        return {"root": self.root, "url": self.url}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_runtime_state()

    @classmethod
    def from_url(cls, url: str, **options) -> LocalStorage:
        if options:
            raise TypeError(f"local storage takes no options, got {sorted(options)}")
        if "://" in url:
            parts = urlsplit(url)
            if parts.query or parts.fragment:
                raise StorageURLError(
                    f"local storage URL {url!r} has a query or fragment, and local storage takes "
                    "no options: use file://PATH or a plain path"
                )
            path = unquote(parts.netloc + parts.path)
        else:
            path = url
        if not path.strip():
            raise StorageURLError(
                f"storage URL {url!r} names no directory: pass a path, file://PATH or "
                "s3://BUCKET/PREFIX, or leave it unset for the default")
        if path != path.strip():
            raise StorageURLError(
                f"storage path {path!r} starts or ends with whitespace (a copy-paste slip?): "
                "remove it, or pass the exact directory")
        return cls(path)

    async def close(self) -> None:
        await self._io.run(self._handles.close_all)  # after any append in flight
        self._io.shutdown()

    # --- paths ----------------------------------------------------------------

    def _log_dir(self, log_id: str) -> str:
        name = system_name(validate_log_id(log_id))
        if name is not None:  # apart from every user log, in a directory no user id can name
            return os.path.join(self.root, SYSTEM_DIR, name)
        return os.path.join(self.root, log_id)

    def _log_path(self, log_id: str) -> str:
        return os.path.join(self._log_dir(log_id), LOG_FILE)

    def _blob_path(self, log_id: str, name: str) -> str:
        return os.path.join(self._log_dir(log_id), BLOB_DIR, validate_blob_name(name))

    def _make_dir(self, path: str) -> None:
        """Create ``path`` (0700) and any missing parents up to the root, durably."""
        parent = os.path.dirname(path)
        if path != self.root and not os.path.isdir(parent):
            self._make_dir(parent)
        try:
            os.mkdir(path, _DIR_MODE)
        except FileExistsError:
            return
        except FileNotFoundError:  # above the root
            os.makedirs(path, mode=_DIR_MODE, exist_ok=True)
        _fsync_dir(parent)

    def _open_log_for_append(self, path: str) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, _FILE_MODE)
        except FileNotFoundError:  # no log directory yet (or it was just deleted)
            self._make_dir(os.path.dirname(path))
            return os.open(path, os.O_RDWR | os.O_CREAT | _O_CLOEXEC, _FILE_MODE)

    # --- logs -----------------------------------------------------------------

    def release(self, log_id: str) -> None:
        self._tails.pop(log_id, None)  # (an append re-reads the tail: a cache, not a promise)

    async def append(self, log_id: str, records: Sequence[bytes], expected_next_seq: int) -> int:
        path = self._log_path(log_id)
        if not records:
            raise ValueError("append needs at least one record")
        frame = encode_batch(expected_next_seq, records)
        with _disk_errors("append", log_id, path, "nothing was appended (the log is as it was)"):
            return await self._io.run(self._append_locked, log_id, path, frame, expected_next_seq,
                                      len(records))

    def _append_locked(self, log_id: str, path: str, frame: bytes, expected: int, count: int) -> int:
        while True:
            handle = self._handles.get(log_id)
            with handle.lock:
                if not handle.closed:  # (else it was evicted meanwhile: take a new one)
                    return self._append_with(handle, log_id, path, frame, expected, count)

    def _append_with(self, handle: LogHandle, log_id: str, path: str, frame: bytes, expected: int,
                     count: int) -> int:
        if handle.fd < 0:
            if expected != 0 and not os.path.exists(path):
                raise AppendConflictError(log_id, expected, 0)  # (creating it would leave a trace)
            handle.fd = self._open_log_for_append(path)
        fd = handle.fd
        done = False
        try:
            while True:
                fcntl.flock(fd, fcntl.LOCK_EX)
                stat = os.fstat(fd)
                # The open fd may be a file that is no longer the log: delete() renames it away
                # (under this lock), maybe while the fd sat in the cache or between open and flock.
                try:
                    current = os.stat(path)
                    if current.st_ino == stat.st_ino and current.st_dev == stat.st_dev:
                        break
                except FileNotFoundError:
                    pass
                handle.fd = -1
                os.close(fd)  # (releases the flock)
                if expected != 0 and not os.path.exists(path):  # deleted: creating it would leave a trace
                    raise AppendConflictError(log_id, expected, 0)
                fd = handle.fd = self._open_log_for_append(path)
            try:
                valid_end, next_seq = self._tail(log_id, path, fd, stat)
                if next_seq != expected:
                    raise AppendConflictError(log_id, expected, next_seq)
                if stat.st_size > valid_end:  # a torn tail from a crashed writer: drop it
                    os.ftruncate(fd, valid_end)
                self._write_all(fd, frame, valid_end)
                try:
                    os.fsync(fd)
                except OSError:  # not durable: take the frame back, as a failed write does
                    _truncate_quietly(fd, valid_end)
                    raise
                if valid_end == 0:  # a new log file: make its directory entry durable too
                    _fsync_dir(os.path.dirname(path))
                self._tails[log_id] = (stat.st_dev, stat.st_ino, valid_end + len(frame), expected + count,
                                       valid_end, frame[:HEADER_SIZE])
                done = True
                return expected + count
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            if not done and handle.fd >= 0:  # after any error, start the next append from a fresh open
                handle.fd = -1
                os.close(fd)

    @staticmethod
    def _write_all(fd: int, frame: bytes, offset: int) -> None:
        view = memoryview(frame)
        done = 0
        try:
            while done < len(frame):
                written = os.pwrite(fd, view[done:], offset + done)
                if written <= 0:
                    raise OSError(errno.EIO, "pwrite wrote nothing")
                done += written
        except BaseException:  # never leave part of a frame behind (a reader would treat it as torn anyway)
            _truncate_quietly(fd, offset)
            raise

    def _tail(self, log_id: str, path: str, fd: int, stat: os.stat_result) -> tuple[int, int]:
        """(valid end offset, next seq) of the open log ``fd``; raises LogCorruptedError on damage."""
        start, seq, last, header = 0, 0, -1, b""
        cached = self._tails.get(log_id)
        if (cached is not None and cached[0] == stat.st_dev and cached[1] == stat.st_ino
                and cached[2] <= stat.st_size
                and (cached[4] < 0 or os.pread(fd, HEADER_SIZE, cached[4]) == cached[5])):
            _dev, _ino, start, seq, last, header = cached
        if stat.st_size > start:
            buf = os.pread(fd, stat.st_size - start, start)
            result = scan(buf, base_offset=start, expected_seq=seq, keep_from_seq=_NO_RECORDS)
            if result.error is not None:
                self._tails.pop(log_id, None)
                raise LogCorruptedError(log_id, result.error.offset, result.error.reason, path)
            if result.last_frame >= 0:
                at = result.last_frame - start
                last, header = result.last_frame, buf[at:at + HEADER_SIZE]
            start, seq = result.valid_end, result.next_seq
            self._tails[log_id] = (stat.st_dev, stat.st_ino, start, seq, last, header)
        return start, seq

    async def read(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Record]:
        async for batch in self.read_batches(log_id, from_seq):
            for record in batch.records():
                yield record

    async def read_batches(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Batch]:
        path = self._log_path(log_id)
        data = await self._io.run(_read_file, path)
        if not data:
            return
        result = scan(data, keep_from_seq=from_seq)
        del data
        for batch in result.batches:
            yield batch
        if result.error is not None:
            raise LogCorruptedError(log_id, result.error.offset, result.error.reason, path)

    async def read_all(self, log_id: str, from_seq: int = 0) -> list[Record]:
        path = self._log_path(log_id)
        data = await self._io.run(_read_file, path)
        if not data:
            return []
        result = scan(data, keep_from_seq=from_seq)
        if result.error is not None:
            raise LogCorruptedError(log_id, result.error.offset, result.error.reason, path)
        return result.records

    async def next_seq(self, log_id: str) -> int:
        path = self._log_path(log_id)
        return await self._io.run(self._next_seq_sync, log_id, path)

    def _next_seq_sync(self, log_id: str, path: str) -> int:
        try:
            fd = os.open(path, os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            return 0
        try:  # no lock: a batch being written right now is not part of the log yet
            return self._tail(log_id, path, fd, os.fstat(fd))[1]
        finally:
            os.close(fd)

    async def torn_tail(self, log_id: str) -> TornTail | None:
        path = self._log_path(log_id)
        data = await self._io.run(_read_file, path)
        if not data:
            return None
        result = scan(data, keep_from_seq=_NO_RECORDS)
        if result.error is not None or not result.torn:
            return None  # (damage before the end is read()'s to report)
        return describe_tail(data, result.valid_end, result.next_seq)

    async def check(self) -> None:
        await self._io.run(self._check_sync)

    def _check_sync(self) -> None:
        root = self.root
        if os.path.exists(root) and not os.path.isdir(root):
            raise StorageURLError(
                f"local storage root {root} is a file, not a directory: pass a directory "
                "(it is created if missing)")
        with _disk_errors("check", None, root, "the storage must be a writable directory; to read a "
                          "store that cannot be written, use `ray-durable replay` (no Ray needed)"):
            self._make_dir(root)
            probe = os.path.join(root, f".probe-{uuid.uuid4().hex}")
            os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_CLOEXEC, _FILE_MODE))
            os.unlink(probe)

    async def list_logs(self) -> list[str]:
        return await aiofiles.os.wrap(self._list_logs_sync)()

    def _list_logs_sync(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        ids = []
        for entry in entries:
            # Not listed: system logs (".system/"), tombstones (".deleted-..."), anything foreign.
            if is_listable_log_id(entry.name) and entry.is_dir():
                try:
                    if os.stat(os.path.join(entry.path, LOG_FILE)).st_size > 0:
                        ids.append(entry.name)
                except FileNotFoundError:
                    pass
        return sorted(ids)

    async def delete(self, log_id: str) -> bool:
        return await aiofiles.os.wrap(self._delete_sync)(log_id)

    def _delete_sync(self, log_id: str) -> bool:
        log_dir = self._log_dir(log_id)
        self._handles.discard(log_id)
        # Rename first so the log vanishes atomically even if the removal is cut short,
        # holding the log's lock so an append in flight finishes before (never into the tomb).
        # The tomb's name is the same for every delete of this log: a delete of a log that was
        # written again after a cut-short one (a delete rerun re-creates a forks log) clears both.
        tomb = self._tomb(log_dir)
        try:
            fd = os.open(os.path.join(log_dir, LOG_FILE), os.O_RDONLY | _O_CLOEXEC)
        except FileNotFoundError:
            fd = -1
        try:
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            for attempt in range(_TOMB_ATTEMPTS):
                if os.path.lexists(tomb):  # left by a delete cut short (or still being removed)
                    shutil.rmtree(tomb, ignore_errors=True)
                try:
                    os.rename(log_dir, tomb)
                    break
                except FileNotFoundError:
                    return self._sweep_tombs(log_dir)
                except OSError as e:  # a non-empty tomb: another delete of this log is removing it
                    if e.errno not in (errno.ENOTEMPTY, errno.EEXIST) or attempt == _TOMB_ATTEMPTS - 1:
                        raise
            self._tails.pop(log_id, None)
        finally:
            if fd >= 0:
                os.close(fd)
        found = any(files for _dirs, _subdirs, files in os.walk(tomb))  # (not just empty directories)
        shutil.rmtree(tomb, ignore_errors=True)
        return found

    def _tomb(self, log_dir: str) -> str:
        """Where a delete moves ``log_dir``: ``.deleted-<name>-<32 hex>`` at the root, the hex a
        digest of the log's path (a user log and a system log of the same name differ)."""
        relative = os.path.relpath(log_dir, self.root)
        digest = hashlib.blake2b(relative.encode(), digest_size=16).hexdigest()
        return os.path.join(self.root, f".deleted-{os.path.basename(log_dir)}-{digest}")

    def _sweep_tombs(self, log_dir: str) -> bool:
        """Remove what an earlier delete of this log left when it was cut short after its rename
        (tombs of stores written before tomb names were fixed per log end in a random uuid)."""
        prefix = f".deleted-{os.path.basename(log_dir)}-"
        found = False
        try:
            entries = [e for e in os.scandir(self.root) if e.name.startswith(prefix)
                       and len(e.name) == len(prefix) + 32]
        except FileNotFoundError:
            return False
        for entry in entries:
            found = found or any(files for _d, _s, files in os.walk(entry.path))
            shutil.rmtree(entry.path, ignore_errors=True)
        return found

    # --- blobs ----------------------------------------------------------------

    async def put_blob(self, log_id: str, name: str, data: bytes) -> None:
        path = self._blob_path(log_id, name)
        directory = os.path.dirname(path)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        with _disk_errors("put_blob", log_id, path, "the blob was not stored"):
            await self._put_blob(path, directory, tmp, data)

    async def _put_blob(self, path: str, directory: str, tmp: str, data: bytes) -> None:
        try:
            try:
                await _write_durably(tmp, data)
            except FileNotFoundError:  # no blob directory yet
                await aiofiles.os.wrap(self._make_dir)(directory)
                await _write_durably(tmp, data)
            await aiofiles.os.replace(tmp, path)
        except BaseException:
            try:
                await aiofiles.os.remove(tmp)
            except OSError:
                pass
            raise
        await aiofiles.os.wrap(_fsync_dir)(directory)

    async def get_blob(self, log_id: str, name: str) -> bytes:
        path = self._blob_path(log_id, name)
        try:
            async with aiofiles.open(path, "rb") as f:
                return await f.read()
        except FileNotFoundError:
            raise BlobNotFoundError(log_id, name) from None

    async def blob_exists(self, log_id: str, name: str) -> bool:
        return await aiofiles.os.path.isfile(self._blob_path(log_id, name))

    async def delete_blob(self, log_id: str, name: str) -> bool:
        try:
            await aiofiles.os.remove(self._blob_path(log_id, name))
            return True
        except FileNotFoundError:
            return False

    async def list_blobs(self, log_id: str) -> dict[str, int]:
        directory = os.path.join(self._log_dir(log_id), BLOB_DIR)
        return await aiofiles.os.wrap(_list_blobs_sync)(directory)


def _list_blobs_sync(directory: str) -> dict[str, int]:
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return {}
    out = {}
    for entry in entries:
        if entry.name.startswith("."):  # a put_blob in flight (or cut short): not a blob yet
            continue
        try:
            out[entry.name] = entry.stat().st_size
        except FileNotFoundError:  # deleted meanwhile
            pass
    return dict(sorted(out.items()))
