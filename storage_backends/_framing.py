"""The on-disk (and on-S3) frame of one appended batch of records.

A batch is the unit of atomicity: it is written whole or treated as not written.

    header  <4s I Q I I>  magic b"RDB1", payload length, first seq, record count, crc32
    payload               for each record: <I> length, then the record's bytes

The crc32 covers the header's first 20 bytes and the payload, so a flipped bit
anywhere, including in the seq, is caught.

Torn tails. A crash mid-write leaves the end of a log file holding part of a
frame, or zeros (the file grew but the data never reached the disk), or stale
bytes. So at the end of a log, a bad frame (short, bad magic, bad checksum,
length past the end) *with no whole, checksummed frame after it* is a torn
tail and reads as "not written"; the next append cuts it off. A bad frame with
a valid frame after it cannot be a crash's leftover (the torn write is always
the last one): it is damage, reported with its byte offset after every record
before it. That includes a frame whose damaged length field makes it look as
if it ran past the end of the log.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

MAGIC = b"RDB1"
_HEADER = struct.Struct("<4sIQII")
HEADER_SIZE = _HEADER.size
_LEN = struct.Struct("<I")
_CRC = struct.Struct("<I")
MAX_RECORD_SIZE = 0xFFFFFFFF


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record of a log: its sequence number, its bytes, and the byte offset of its batch.

    Immutable, compared and hashed by value. (A msgspec Struct rather than a
    dataclass only because reading creates millions of them: it is ~10x cheaper
    to construct.)
    """

    seq: int
    data: bytes
    offset: int = 0


class FrameError(Exception):
    """A frame that is damaged; ``offset`` is where it starts."""

    def __init__(self, offset: int, reason: str):
        self.offset = offset
        self.reason = reason
        super().__init__(f"at byte offset {offset}: {reason}")


def encode_batch(first_seq: int, records: Sequence[bytes]) -> bytes:
    """Frame ``records`` as one batch whose first record has sequence ``first_seq``."""
    if len(records) == 1:
        record = records[0]
        payload = _LEN.pack(len(record)) + record
    else:
        pack = _LEN.pack
        parts = []
        for record in records:
            parts.append(pack(len(record)))
            parts.append(record)
        payload = b"".join(parts)
    head = _HEADER.pack(MAGIC, len(payload), first_seq, len(records), 0)[:-4]
    return b"".join((head, _CRC.pack(zlib.crc32(payload, zlib.crc32(head))), payload))


@dataclass(slots=True)
class ScanResult:
    """What a scan of a byte buffer found."""

    records: list[Record]
    valid_end: int  # offset just past the last whole, valid batch
    next_seq: int  # the seq the next appended record would get
    torn: bool  # the buffer ends in an incomplete batch (ignored)
    error: FrameError | None = None  # damage found after ``records`` (scan stops there)
    last_frame: int = -1  # offset of the last whole, valid batch (-1: none)


def scan(
    buf: bytes | bytearray | memoryview,
    *,
    base_offset: int = 0,
    expected_seq: int = 0,
    keep_from_seq: int = 0,
    at_end_of_log: bool = True,
) -> ScanResult:
    """Parse consecutive batches from ``buf``.

    Args:
        buf: bytes starting at a batch boundary.
        base_offset: the byte offset of ``buf[0]`` in the whole log (for messages).
        expected_seq: the seq the first batch must start with; a gap is corruption.
        keep_from_seq: records below this seq are checked but not returned.
        at_end_of_log: ``buf`` runs to the end of the log, so an incomplete final
            batch is a torn tail rather than damage.

    Damage that is not a torn tail (bad magic, a bad checksum with data after
    it, a sequence gap) stops the scan: the result holds every record before it
    and the damage in ``error``, so a caller can report what is readable first.
    Never raises on bad bytes.
    """
    data = buf if type(buf) is bytes else bytes(buf)
    view = memoryview(data)
    size = len(data)
    pos = 0
    last = -1
    seq = expected_seq
    records: list[Record] = []
    append = records.append
    unpack_header = _HEADER.unpack_from
    unpack_len = _LEN.unpack_from
    crc32 = zlib.crc32
    magic_ok = MAGIC

    def stop(torn: bool = False, reason: str | None = None) -> ScanResult:
        error = None if reason is None else FrameError(base_offset + pos, reason)
        return ScanResult(records, base_offset + pos, seq, torn, error,
                          -1 if last < 0 else base_offset + last)

    def bad(reason: str) -> ScanResult:
        # At the end of a log, a bad frame with no valid frame after it is what a crash
        # mid-write leaves behind (a partial header or payload, zeros, stale blocks):
        # a torn tail. With a valid frame after it, it is damage.
        if at_end_of_log and not _valid_frame_after(data, pos + 1, seq):
            return stop(torn=True)
        return stop(reason=reason)

    while pos < size:
        if size - pos < HEADER_SIZE:
            return bad("incomplete frame header")
        magic, length, first_seq, count, crc = unpack_header(data, pos)
        body = pos + HEADER_SIZE
        end = body + length
        if magic != magic_ok:
            return bad(f"bad frame magic {magic!r}")
        if end > size:
            if not at_end_of_log:
                return stop(reason="frame runs past the end of its object")
            return bad(f"frame length {length} runs past the end of the log, but a valid frame "
                       "follows it (a damaged length)")
        if crc32(view[body:end], crc32(view[pos:pos + 20])) != crc:
            return bad("checksum mismatch")
        if first_seq != seq:
            return stop(reason=f"sequence gap: expected seq {seq}, frame starts at seq {first_seq}")
        # The records. A checksummed frame is malformed only if its writer was buggy.
        if count == 1 and length >= 4 and unpack_len(data, body)[0] == length - 4:
            if seq >= keep_from_seq:
                append(Record(seq, data[body + 4:end], base_offset + pos))
        else:
            offset = base_offset + pos
            rpos = body
            keep = seq + count > keep_from_seq
            for rseq in range(seq, seq + count):
                if rpos + 4 > end:
                    return stop(reason="record length runs past its frame")
                start = rpos + 4
                rpos = start + unpack_len(data, rpos)[0]
                if rpos > end:
                    return stop(reason="record runs past its frame")
                if keep and rseq >= keep_from_seq:
                    append(Record(rseq, data[start:rpos], offset))
            if rpos != end:
                return stop(reason="frame has bytes after its last record")
        seq += count
        last = pos
        pos = end
    return stop()


def _valid_frame_after(data: bytes, start: int, min_seq: int) -> bool:
    """Whether a whole, checksummed frame at seq >= ``min_seq`` begins anywhere from ``start``."""
    find = data.find
    size = len(data)
    at = find(MAGIC, start)
    while at >= 0 and size - at >= HEADER_SIZE:
        _magic, length, first_seq, _count, crc = _HEADER.unpack_from(data, at)
        end = at + HEADER_SIZE + length
        if first_seq >= min_seq and end <= size:
            view = memoryview(data)
            if zlib.crc32(view[at + HEADER_SIZE:end], zlib.crc32(view[at:at + 20])) == crc:
                return True
        at = find(MAGIC, at + 1)
    return False
