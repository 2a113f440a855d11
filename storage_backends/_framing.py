"""The on-disk (and on-S3) frame of one appended batch of records.

A batch is the unit of atomicity: it is written whole or treated as not written.

    header  <4s I Q I I>  magic b"RDB1", payload length, first seq, record count, crc32
    payload               for each record: <I> length, then the record's bytes

The crc32 covers the header's first 20 bytes and the payload, so a flipped bit
anywhere, including in the seq, is caught. A frame that is cut short at the end
of a log (a crash mid-write) is a *torn tail* and reads as "not written"; a bad
frame with more data after it is corruption and raises.
"""

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

MAGIC = b"RDB1"
_HEADER = struct.Struct("<4sIQII")
HEADER_SIZE = _HEADER.size
_LEN = struct.Struct("<I")
MAX_RECORD_SIZE = 0xFFFFFFFF


@dataclass(frozen=True, slots=True)
class Record:
    """One record of a log: its sequence number, its bytes, and the byte offset of its batch."""

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
    parts = []
    for record in records:
        parts.append(_LEN.pack(len(record)))
        parts.append(record)
    payload = b"".join(parts)
    head = _HEADER.pack(MAGIC, len(payload), first_seq, len(records), 0)[:-4]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + struct.pack("<I", crc) + payload


@dataclass(slots=True)
class ScanResult:
    """What a scan of a byte buffer found."""

    records: list[Record]
    valid_end: int  # offset just past the last whole, valid batch
    next_seq: int  # the seq the next appended record would get
    torn: bool  # the buffer ends in an incomplete batch (ignored)
    error: FrameError | None = None  # damage found after ``records`` (scan stops there)


def scan(
    buf: bytes | memoryview,
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
    """
    view = memoryview(buf)
    size = len(view)
    pos = 0
    seq = expected_seq
    records: list[Record] = []

    def stop(torn: bool = False, reason: str | None = None, at: int | None = None) -> ScanResult:
        error = None if reason is None else FrameError(base_offset + (pos if at is None else at), reason)
        return ScanResult(records, base_offset + pos, seq, torn, error)

    while pos < size:
        if size - pos < HEADER_SIZE:
            if at_end_of_log and _is_prefix_of_header(view[pos:]):
                return stop(torn=True)
            return stop(reason="incomplete frame header")
        magic, length, first_seq, count, crc = _HEADER.unpack_from(view, pos)
        end = pos + HEADER_SIZE + length
        if magic != MAGIC:
            if at_end_of_log and not any(view[pos:]):
                # Zero-filled tail: the file grew but the data never reached the disk.
                return stop(torn=True)
            return stop(reason=f"bad frame magic {bytes(magic)!r}")
        if end > size:
            if at_end_of_log:
                return stop(torn=True)
            return stop(reason="frame runs past the end of its object")
        body = view[pos + HEADER_SIZE : end]
        if zlib.crc32(body, zlib.crc32(view[pos : pos + 20])) != crc:
            if at_end_of_log and end == size:
                return stop(torn=True)
            return stop(reason="checksum mismatch")
        if first_seq != seq:
            return stop(reason=f"sequence gap: expected seq {seq}, frame starts at seq {first_seq}")
        batch = _split_records(body, count, seq, keep_from_seq, base_offset + pos)
        if isinstance(batch, str):
            return stop(reason=batch)
        records.extend(batch)
        seq += count
        pos = end
    return stop()


def _split_records(
    body: memoryview, count: int, first_seq: int, keep_from_seq: int, offset: int
) -> list[Record] | str:
    """The records of one checksummed frame body, or the reason it is malformed."""
    out: list[Record] = []
    unpack_len = _LEN.unpack_from
    end = len(body)
    rpos = 0
    for i in range(count):
        if rpos + 4 > end:
            return "record length runs past its frame"
        (rlen,) = unpack_len(body, rpos)
        rpos += 4
        if rpos + rlen > end:
            return "record runs past its frame"
        if first_seq + i >= keep_from_seq:
            out.append(Record(first_seq + i, bytes(body[rpos : rpos + rlen]), offset))
        rpos += rlen
    if rpos != end:
        return "frame has bytes after its last record"
    return out


def _is_prefix_of_header(tail: memoryview) -> bool:
    """A short tail is torn if it could be the start of a header (magic prefix) or is zeros."""
    tail_bytes = bytes(tail)
    n = min(len(tail_bytes), len(MAGIC))
    return tail_bytes[:n] == MAGIC[:n] or not any(tail_bytes)
