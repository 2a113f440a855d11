"""Local-disk backend: one framed, fsynced append-only file per log.

Layout under the root directory (0700; files 0600):

    <root>/<log_id>/events.log        batches framed by :mod:`._framing`
    <root>/<log_id>/blobs/<name>      one file per blob, written atomically

One writer per log is enforced with ``flock`` on the log file: under the lock
an append re-checks the log's real tail, so a stale writer (another asyncio
task or another process) gets AppendConflictError and writes nothing. The
locked section runs as one call in aiofiles' thread pool, so an append costs
one thread hop plus the fsync.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Sequence
from urllib.parse import unquote, urlsplit

import aiofiles
import aiofiles.os

from ._base import Storage
from ._errors import AppendConflictError, BlobNotFoundError, LogCorruptedError, StorageError
from ._framing import Record, encode_batch, scan
from ._ids import validate_blob_name, validate_log_id

LOG_FILE = "events.log"
BLOB_DIR = "blobs"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def _private_opener(path: str, flags: int) -> int:
    return os.open(path, flags, _FILE_MODE)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalStorage(Storage):
    """Logs and blobs in a directory on local disk (or NFS for multi-node clusters)."""

    scheme = "file"

    def __init__(self, root: str):
        self.root = os.path.abspath(os.path.expanduser(root))
        self.url = "file://" + self.root
        # log_id -> (inode, valid end offset, next seq) as last seen under the lock,
        # so an append scans only what other writers added since.
        self._tails: dict[str, tuple[int, int, int]] = {}
        self._root_ready = False

    @classmethod
    def from_url(cls, url: str, **options) -> LocalStorage:
        if options:
            raise TypeError(f"local storage takes no options, got {sorted(options)}")
        if "://" in url:
            parts = urlsplit(url)
            path = unquote(parts.netloc + parts.path)
        else:
            path = url
        if not path:
            raise StorageError(f"storage URL {url!r} names no directory")
        return cls(path)

    # --- paths ----------------------------------------------------------------

    def _log_dir(self, log_id: str) -> str:
        return os.path.join(self.root, validate_log_id(log_id))

    def _log_path(self, log_id: str) -> str:
        return os.path.join(self._log_dir(log_id), LOG_FILE)

    def _blob_path(self, log_id: str, name: str) -> str:
        return os.path.join(self._log_dir(log_id), BLOB_DIR, validate_blob_name(name))

    def _ensure_dir(self, path: str) -> None:
        if not self._root_ready:
            os.makedirs(self.root, mode=_DIR_MODE, exist_ok=True)
            self._root_ready = True
        if not os.path.isdir(path):
            os.makedirs(path, mode=_DIR_MODE, exist_ok=True)
            _fsync_dir(os.path.dirname(path))

    # --- logs -----------------------------------------------------------------

    async def append(self, log_id: str, records: Sequence[bytes], expected_next_seq: int) -> int:
        path = self._log_path(log_id)
        if not records:
            raise ValueError("append needs at least one record")
        frame = encode_batch(expected_next_seq, records)
        return await aiofiles.os.wrap(self._append_locked)(
            log_id, path, frame, expected_next_seq, len(records)
        )

    def _append_locked(self, log_id: str, path: str, frame: bytes, expected: int, count: int) -> int:
        self._ensure_dir(os.path.dirname(path))
        fd = os.open(path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            stat = os.fstat(fd)
            valid_end, next_seq = self._tail_under_lock(log_id, fd, stat)
            if next_seq != expected:
                raise AppendConflictError(log_id, expected, next_seq)
            if stat.st_size > valid_end:  # a torn tail from a crashed writer: drop it
                os.ftruncate(fd, valid_end)
            written = os.pwrite(fd, frame, valid_end)
            if written != len(frame):
                os.ftruncate(fd, valid_end)
                raise StorageError(f"short write to log {log_id!r} ({written} of {len(frame)} bytes)")
            os.fsync(fd)
            if stat.st_size == 0:
                _fsync_dir(os.path.dirname(path))
            self._tails[log_id] = (stat.st_ino, valid_end + len(frame), expected + count)
            return expected + count
        finally:
            os.close(fd)  # also releases the flock

    def _tail_under_lock(self, log_id: str, fd: int, stat: os.stat_result) -> tuple[int, int]:
        cached = self._tails.get(log_id)
        start, seq = 0, 0
        if cached and cached[0] == stat.st_ino and cached[1] <= stat.st_size:
            start, seq = cached[1], cached[2]
        if stat.st_size > start:
            result = scan(os.pread(fd, stat.st_size - start, start), base_offset=start, expected_seq=seq,
                          keep_from_seq=1 << 62)
            if result.error is not None:
                raise LogCorruptedError(log_id, result.error.offset, result.error.reason,
                                        self._log_path(log_id))
            return result.valid_end, result.next_seq
        return start, seq

    async def read(self, log_id: str, from_seq: int = 0) -> AsyncIterator[Record]:
        path = self._log_path(log_id)
        try:
            async with aiofiles.open(path, "rb") as f:
                data = await f.read()
        except FileNotFoundError:
            return
        result = scan(data, keep_from_seq=from_seq)
        for record in result.records:
            yield record
        if result.error is not None:
            raise LogCorruptedError(log_id, result.error.offset, result.error.reason, path)

    async def next_seq(self, log_id: str) -> int:
        path = self._log_path(log_id)
        try:
            async with aiofiles.open(path, "rb") as f:
                data = await f.read()
        except FileNotFoundError:
            return 0
        result = scan(data, keep_from_seq=1 << 62)
        if result.error is not None:
            raise LogCorruptedError(log_id, result.error.offset, result.error.reason, path)
        return result.next_seq

    async def list_logs(self) -> list[str]:
        return await aiofiles.os.wrap(self._list_logs_sync)()

    def _list_logs_sync(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        ids = []
        for entry in entries:
            if entry.name[:1].isalnum() and entry.is_dir():
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
        # Rename first so the log vanishes atomically even if the removal is cut short.
        tomb = os.path.join(self.root, f".deleted-{log_id}-{uuid.uuid4().hex}")
        try:
            os.rename(log_dir, tomb)
        except FileNotFoundError:
            return False
        self._tails.pop(log_id, None)
        shutil.rmtree(tomb, ignore_errors=True)
        return True

    # --- blobs ----------------------------------------------------------------

    async def put_blob(self, log_id: str, name: str, data: bytes) -> None:
        path = self._blob_path(log_id, name)
        directory = os.path.dirname(path)
        await aiofiles.os.wrap(self._ensure_dir)(directory)
        tmp = os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")
        async with aiofiles.open(tmp, "wb", opener=_private_opener) as f:
            await f.write(data)
            await f.flush()
            await aiofiles.os.wrap(os.fsync)(f.fileno())
        await aiofiles.os.replace(tmp, path)
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


