"""The on-disk (and on-S3) frame of one appended batch of records.

A batch is the unit of atomicity: it is written whole or treated as not written.

    header  <4s I Q I I>  magic, payload length, first seq, record count, crc32
    payload               RDB2 (written now): each record's <I> length, then the
                          records' bytes back to back
                          RDB1 (still read): for each record, <I> length, then its bytes

The crc32 covers the header's first 20 bytes and the payload, so a flipped bit
anywhere, including in the seq, is caught. RDB2 keeps a batch's records
contiguous so a reader can hand them on as one buffer (:class:`Batch`) and
decode them in one call; for one record the two layouts are the same bytes.

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
import sys
import zlib
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

MAGIC = b"RDB2"
MAGIC_V1 = b"RDB1"
_MAGIC_STEM = b"RDB"
_HEADER = struct.Struct("<4sIQII")
HEADER_SIZE = _HEADER.size
_LEN = struct.Struct("<I")
_CRC = struct.Struct("<I")
MAX_RECORD_SIZE = 0xFFFFFFFF
_U32 = "I" if array("I").itemsize == 4 else "L"  # an array typecode 4 bytes wide
_SWAP = sys.byteorder != "little"  # the lengths are little-endian on disk


class Record(msgspec.Struct, frozen=True, gc=False):
    """One record of a log: its sequence number, its bytes, and the byte offset of its batch.

    Immutable, compared and hashed by value. (A msgspec Struct rather than a
    dataclass only because reading creates millions of them: it is ~10x cheaper
    to construct.)
    """

    seq: int
    data: bytes
    offset: int = 0


class Batch(msgspec.Struct, frozen=True, gc=False):
    """Consecutive records read together: their bytes back to back, and each one's length.

    What a bulk reader (replay) wants: one buffer per appended batch, no
    per-record objects. ``records()`` splits it when per-record access is needed.
    """

    first_seq: int
    data: bytes  # the records' bytes, concatenated
    lengths: Sequence[int]
    offset: int = 0  # byte offset of the frame the records came from

    def records(self) -> list[Record]:
        """The batch as Records, in seq order."""
        out, data, pos, seq, offset = [], self.data, 0, self.first_seq, self.offset
        for length in self.lengths:
            out.append(Record(seq, data[pos:pos + length], offset))
            pos += length
            seq += 1
        return out


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
        lengths = array(_U32, map(len, records))
        if _SWAP:
            lengths.byteswap()
        payload = b"".join((lengths.tobytes(), *records))
    head = _HEADER.pack(MAGIC, len(payload), first_seq, len(records), 0)[:-4]
    return b"".join((head, _CRC.pack(zlib.crc32(payload, zlib.crc32(head))), payload))


@dataclass(slots=True)
class ScanResult:
    """What a scan of a byte buffer found."""

    batches: list[Batch]  # the kept records, batch by batch
    valid_end: int  # offset just past the last whole, valid batch
    next_seq: int  # the seq the next appended record would get
    torn: bool  # the buffer ends in an incomplete batch (ignored)
    error: FrameError | None = None  # damage found after the kept records (scan stops there)
    last_frame: int = -1  # offset of the last whole, valid batch (-1: none)

    @property
    def records(self) -> list[Record]:
        """The kept records one by one (built on each access)."""
        return [record for batch in self.batches for record in batch.records()]


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
    batches: list[Batch] = []
    append = batches.append
    unpack_header = _HEADER.unpack_from
    unpack_len = _LEN.unpack_from
    crc32 = zlib.crc32

    def stop(torn: bool = False, reason: str | None = None) -> ScanResult:
        error = None if reason is None else FrameError(base_offset + pos, reason)
        return ScanResult(batches, base_offset + pos, seq, torn, error,
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
        if magic != MAGIC and magic != MAGIC_V1:
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
            if seq >= keep_from_seq:  # one record: the same bytes in both layouts
                append(Batch(seq, data[body + 4:end], (length - 4,), base_offset + pos))
        else:
            split = (_split_v2 if magic == MAGIC else _split_v1)(data, body, end, count)
            if isinstance(split, str):
                return stop(reason=split)
            if count and seq + count > keep_from_seq:
                append(_kept(seq, split[0], split[1], base_offset + pos, keep_from_seq))
        seq += count
        last = pos
        pos = end
    return stop()


def _split_v2(data: bytes, body: int, end: int, count: int) -> tuple[bytes, Sequence[int]] | str:
    """An RDB2 payload as (records' bytes, lengths), or what is wrong with it."""
    records_at = body + 4 * count
    if records_at > end:
        return "record length runs past its frame"
    lengths = array(_U32)
    lengths.frombytes(data[body:records_at])
    if _SWAP:
        lengths.byteswap()
    total = sum(lengths)
    if total > end - records_at:
        return "record runs past its frame"
    if total < end - records_at:
        return "frame has bytes after its last record"
    return data[records_at:end], lengths


def _split_v1(data: bytes, body: int, end: int, count: int) -> tuple[bytes, Sequence[int]] | str:
    """An RDB1 payload (length, bytes, length, bytes ...) as (records' bytes, lengths)."""
    unpack_len = _LEN.unpack_from
    parts, lengths, rpos = [], [], body
    for _ in range(count):
        if rpos + 4 > end:
            return "record length runs past its frame"
        start = rpos + 4
        length = unpack_len(data, rpos)[0]
        rpos = start + length
        if rpos > end:
            return "record runs past its frame"
        parts.append(data[start:rpos])
        lengths.append(length)
    if rpos != end:
        return "frame has bytes after its last record"
    return b"".join(parts), lengths


def _kept(seq: int, data: bytes, lengths: Sequence[int], offset: int, keep_from_seq: int) -> Batch:
    """The batch of records from ``seq`` on, without those below ``keep_from_seq``."""
    skip = keep_from_seq - seq
    if skip > 0:
        data = data[sum(lengths[:skip]):]
        lengths = lengths[skip:]
        seq = keep_from_seq
    return Batch(seq, data, lengths, offset)


def _valid_frame_after(data: bytes, start: int, min_seq: int) -> bool:
    """Whether a whole, checksummed frame at seq >= ``min_seq`` begins anywhere from ``start``."""
    find = data.find
    size = len(data)
    at = find(_MAGIC_STEM, start)
    while at >= 0 and size - at >= HEADER_SIZE:
        magic, length, first_seq, _count, crc = _HEADER.unpack_from(data, at)
        end = at + HEADER_SIZE + length
        if (magic == MAGIC or magic == MAGIC_V1) and first_seq >= min_seq and end <= size:
            view = memoryview(data)
            if zlib.crc32(view[at + HEADER_SIZE:end], zlib.crc32(view[at:at + 20])) == crc:
                return True
        at = find(_MAGIC_STEM, at + 1)
    return False


@dataclass(slots=True)
class TornTail:
    """The bytes after a log's last whole frame, which read as "not written".

    Attributes:
        offset: where they start (the end of the last whole frame).
        size: how many bytes there are.
        reason: why they are not a frame (cut short, zeros, a bad checksum...).
        first_seq: the seq the torn frame would have started at (the log's next seq).
        records: the records the torn frame still holds whole, unverified (its checksum
            does not hold, or it was cut short); empty if none can be made out.
    """

    offset: int
    size: int
    reason: str
    first_seq: int
    records: list[bytes]


def describe_tail(data: bytes, valid_end: int, next_seq: int) -> TornTail | None:
    """What lies after ``valid_end`` (the end of a scan's last whole frame), or None if nothing."""
    tail = data[valid_end:]
    if not tail:
        return None
    records: list[bytes] = []
    if len(tail) < HEADER_SIZE:
        reason = f"{len(tail)} bytes, shorter than a frame header"
    elif not tail.strip(b"\0"):
        reason = "all zeros (the file grew, but the data never reached the disk)"
    else:
        magic, length, _first, count, crc = _HEADER.unpack_from(tail)
        payload = tail[HEADER_SIZE:HEADER_SIZE + length]
        if magic not in (MAGIC, MAGIC_V1):
            reason = f"bad frame magic {magic!r}"
        elif len(payload) < length:
            reason = f"a frame of {length} payload bytes cut short after {len(payload)}"
        elif zlib.crc32(payload, zlib.crc32(tail[:20])) != crc:
            reason = "a whole frame whose checksum does not hold"
        else:
            reason = "a frame that does not continue the log"
        if magic in (MAGIC, MAGIC_V1) and 0 < count <= len(payload):
            records = _salvage(payload, count, magic == MAGIC)
    return TornTail(valid_end, len(tail), reason, next_seq, records)


def _salvage(payload: bytes, count: int, v2: bool) -> list[bytes]:
    """The records that a (possibly cut short) payload still holds whole, in order."""
    out = []
    if v2:
        if 4 * count > len(payload):
            return out
        lengths = struct.unpack_from(f"<{count}I", payload)
        pos = 4 * count
        for length in lengths:
            if pos + length > len(payload):
                break
            out.append(payload[pos:pos + length])
            pos += length
        return out
    pos = 0
    for _ in range(count):
        if pos + 4 > len(payload):
            break
        length = _LEN.unpack_from(payload, pos)[0]
        if pos + 4 + length > len(payload):
            break
        out.append(payload[pos + 4:pos + 4 + length])
        pos += 4 + length
    return out
