"""Property tests of the frame format itself (storage_backends._framing), on byte buffers.

The same properties are checked through LocalStorage on real files in
test_local_framing.py; here they are cheap enough to cover every byte.
"""

from __future__ import annotations

import struct
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_backends import Record
from storage_backends._framing import HEADER_SIZE, MAGIC, encode_batch, scan

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

records = st.binary(max_size=64)
batches = st.lists(st.lists(records, min_size=1, max_size=6), min_size=1, max_size=6)


def build(batch_list: list[list[bytes]]) -> tuple[bytes, list[int], list[Record]]:
    """The framed log, each frame's start offset, and the records it holds."""
    parts, offsets, expected, seq, pos = [], [], [], 0, 0
    for batch in batch_list:
        frame = encode_batch(seq, batch)
        offsets.append(pos)
        expected.extend(Record(seq + i, data, pos) for i, data in enumerate(batch))
        parts.append(frame)
        pos += len(frame)
        seq += len(batch)
    return b"".join(parts), offsets, expected


def test_the_header_layout_is_fixed():
    frame = encode_batch(7, [b"ab", b"", b"c"])
    magic, length, first_seq, count, crc = struct.unpack_from("<4sIQII", frame)
    assert (magic, length, first_seq, count) == (b"RDB2", 3 * 4 + 3, 7, 3) and HEADER_SIZE == 24
    assert frame[HEADER_SIZE:] == b"\x02\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00abc"
    assert crc == zlib.crc32(frame[HEADER_SIZE:], zlib.crc32(frame[:20]))
    # one record: the same payload as the RDB1 layout
    assert encode_batch(0, [b"xy"])[HEADER_SIZE:] == b"\x02\x00\x00\x00xy"


def encode_batch_v1(first_seq: int, records: list[bytes]) -> bytes:
    """A frame as ray-durable wrote them before RDB2: length, bytes, length, bytes ..."""
    payload = b"".join(struct.pack("<I", len(r)) + r for r in records)
    head = struct.pack("<4sIQI", b"RDB1", len(payload), first_seq, len(records))
    return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload


@SETTINGS
@given(batch_list=batches, old=st.lists(st.booleans(), min_size=6, max_size=6), from_seq=st.integers(0, 40))
def test_rdb1_frames_still_read_alone_and_mixed_with_rdb2(batch_list, old, from_seq):
    """A log written before RDB2 (and appended to since) reads the same records."""
    parts, expected, seq, pos = [], [], 0, 0
    for batch, is_old in zip(batch_list, old):
        frame = (encode_batch_v1 if is_old else encode_batch)(seq, batch)
        expected.extend(Record(seq + i, data, pos) for i, data in enumerate(batch))
        parts.append(frame)
        pos += len(frame)
        seq += len(batch)
    result = scan(b"".join(parts), keep_from_seq=from_seq)
    assert result.error is None and not result.torn and result.next_seq == seq
    assert result.records == [r for r in expected if r.seq >= from_seq]
    for batch in result.batches:
        assert batch.data == b"".join(r.data for r in batch.records())


def test_a_torn_rdb1_tail_is_not_written():
    log = encode_batch_v1(0, [b"a", b"b"])
    torn = encode_batch_v1(2, [b"c", b"d"])[:-3]
    result = scan(log + torn)
    assert result.torn and result.error is None and [r.data for r in result.records] == [b"a", b"b"]
    result = scan(log + torn + encode_batch(4, [b"e"]))  # a valid frame after it: damage
    assert result.error is not None and result.error.offset == len(log)


@SETTINGS
@given(batch_list=batches, from_seq=st.integers(0, 40))
def test_round_trip(batch_list, from_seq):
    buf, offsets, expected = build(batch_list)
    result = scan(buf, keep_from_seq=from_seq)
    assert result.error is None and not result.torn
    assert result.records == [r for r in expected if r.seq >= from_seq]
    assert (result.valid_end, result.next_seq, result.last_frame) == (len(buf), len(expected), offsets[-1])
    # a buffer that starts mid-log, as the local backend scans only what was added
    if len(offsets) > 1:
        tail = scan(buf[offsets[1]:], base_offset=offsets[1], expected_seq=len(batch_list[0]))
        assert tail.records == expected[len(batch_list[0]):] and tail.error is None


@SETTINGS
@given(batch_list=batches)
def test_truncation_at_every_byte_of_the_last_frame_is_a_torn_tail(batch_list):
    buf, offsets, expected = build(batch_list)
    before = [r for r in expected if r.offset < offsets[-1]]
    for cut in range(offsets[-1], len(buf)):
        result = scan(buf[:cut])
        assert result.error is None, cut
        assert result.records == before
        assert result.valid_end == offsets[-1] and result.next_seq == len(before)
        assert result.torn == (cut > offsets[-1])


@SETTINGS
@given(batch_list=batches, zeros=st.integers(1, 5000), cut=st.integers(0, 10_000))
def test_a_zero_filled_tail_is_torn_not_corrupt(batch_list, zeros, cut):
    buf, offsets, expected = build(batch_list)
    # the whole log followed by zeros (the file grew, the data never reached the disk) ...
    result = scan(buf + bytes(zeros))
    assert result.error is None and result.torn and result.records == expected
    # ... or the last frame cut anywhere and padded with zeros
    cut = offsets[-1] + cut % (len(buf) - offsets[-1])
    padded = buf[:cut] + bytes(zeros)
    result = scan(padded)
    assert result.error is None
    if padded[:len(buf)] == buf:  # the bytes cut off happened to be zeros: the frame is whole again
        assert result.records == expected
    else:
        assert result.torn and result.records == [r for r in expected if r.offset < offsets[-1]]


@settings(max_examples=40, deadline=None)
@given(batch_list=st.lists(st.lists(records, min_size=1, max_size=4), min_size=2, max_size=5), data=st.data())
def test_any_flipped_byte_is_caught_at_its_frame(batch_list, data):
    """One damaged byte: never a changed record; in any frame but the last, an error at its exact offset."""
    buf, offsets, expected = build(batch_list)
    at = data.draw(st.integers(0, len(buf) - 1))
    damaged = bytearray(buf)
    damaged[at] ^= data.draw(st.integers(1, 255))
    frame = max(i for i, start in enumerate(offsets) if start <= at)
    result = scan(bytes(damaged))
    assert result.records == [r for r in expected if r.offset < offsets[frame]]
    if frame < len(offsets) - 1:
        assert result.error is not None, "damage before the tail must never read as a torn tail"
        assert result.error.offset == offsets[frame]
    else:
        assert result.torn or result.error is not None
        if result.error is not None:
            assert result.error.offset == offsets[frame]


@settings(max_examples=300, deadline=None)
@given(buf=st.binary(max_size=300), at_end=st.booleans(), expected_seq=st.integers(0, 3))
def test_arbitrary_bytes_never_raise(buf, at_end, expected_seq):
    result = scan(buf, at_end_of_log=at_end, expected_seq=expected_seq)
    assert result.valid_end <= len(buf)


@settings(max_examples=200, deadline=None)
@given(batch_list=batches, garbage=st.binary(min_size=1, max_size=100), data=st.data())
def test_garbage_spliced_into_a_log_never_raises(batch_list, garbage, data):
    buf, _offsets, expected = build(batch_list)
    at = data.draw(st.integers(0, len(buf)))
    result = scan(buf[:at] + garbage + buf[at:])
    assert all(r in expected for r in result.records)  # nothing invented


def test_a_damaged_length_in_the_middle_is_damage_not_a_torn_tail():
    first, second, third = encode_batch(0, [b"a" * 10]), encode_batch(1, [b"b" * 10]), encode_batch(2, [b"c"])
    damaged = bytearray(first + second + third)
    struct.pack_into("<I", damaged, len(first) + 4, 10_000)  # the second frame now "runs past the end"
    result = scan(bytes(damaged))
    assert [r.data for r in result.records] == [b"a" * 10]
    assert result.error is not None and result.error.offset == len(first)
    assert "length" in result.error.reason and not result.torn
    # while the same header at the real end of the log is a torn tail
    result = scan(bytes(damaged[: len(first) + len(second)]))
    assert result.torn and result.error is None


@pytest.mark.parametrize("buf,reason", [
    (encode_batch(0, [b"x"]) + b"XXXX" + bytes(40) + encode_batch(1, [b"z"]), "bad frame magic"),
    (encode_batch(0, [b"x"]) + encode_batch(5, [b"y"]), "sequence gap"),
    (MAGIC + struct.pack("<IQII", 3, 0, 1, 0) + b"abc" + encode_batch(1, [b"z"]), "checksum mismatch"),
])
def test_damage_reasons(buf, reason):
    result = scan(buf)
    assert result.error is not None and reason in result.error.reason


@pytest.mark.parametrize("tail", [b"R", b"RD\0\0", b"XXXX" + bytes(40), bytes(3) + b"RDB1", b"\xff" * 30,
                                  encode_batch(1, [b"next"])[:-1] + bytes(100)])
def test_garbage_with_no_valid_frame_after_it_is_a_torn_tail(tail):
    """What a crash can leave at the end: part of a header, zeros, stale bytes."""
    log = encode_batch(0, [b"x"])
    result = scan(log + tail)
    assert result.error is None and result.torn and [r.data for r in result.records] == [b"x"]
    assert result.valid_end == len(log) and result.next_seq == 1
    result = scan(log + tail + encode_batch(1, [b"y"]))  # but with a valid frame after it: damage
    assert result.error is not None and result.error.offset == len(log) and not result.torn


@pytest.mark.parametrize("magic", [MAGIC, b"RDB1"])
def test_malformed_frames_with_a_valid_checksum_are_damage(magic):
    def frame(count: int, payload: bytes) -> bytes:
        head = struct.pack("<4sIQI", magic, len(payload), 0, count)
        return head + struct.pack("<I", zlib.crc32(payload, zlib.crc32(head))) + payload

    for count, payload, reason in [
        (2, struct.pack("<I", 1) + b"a", "record length runs past its frame"),
        (1, struct.pack("<I", 5) + b"a", "record runs past its frame"),
        (1, struct.pack("<I", 1) + b"ab", "frame has bytes after its last record"),
        (0, b"zz", "frame has bytes after its last record"),
    ]:
        result = scan(frame(count, payload) + encode_batch(count, [b"next"]))
        assert result.error is not None and result.error.reason == reason and result.error.offset == 0
    assert scan(frame(0, b"")).records == []  # an empty batch is well-formed


def test_object_mode_does_not_forgive_a_short_frame():
    frame = encode_batch(0, [b"hello"])
    assert scan(frame[:-1], at_end_of_log=False).error is not None
    assert scan(frame[:10], at_end_of_log=False).error is not None
    assert scan(frame + bytes(8), at_end_of_log=False).error.reason == "incomplete frame header"


def test_a_memoryview_scans_like_bytes():
    buf, _offsets, expected = build([[b"a", b"b"], [b"c"]])
    assert scan(memoryview(buf)).records == expected
    assert scan(bytearray(buf)).records == expected
