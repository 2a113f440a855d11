"""Torn tails and damage in real local log files, through LocalStorage.

Everything here writes a real file with LocalStorage.append, damages it the
way a crash or a bad disk would (truncation, a zero-filled tail, a flipped
byte), and reads it back through LocalStorage: torn tails read as "not
written" and are replaced by the next append; damage before the tail raises
LogCorruptedError naming the workflow and the exact byte offset, after every
record before it, and no append ever goes past it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import struct
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from storage_backends import AppendConflictError, LocalStorage, LogCorruptedError
from storage_backends._framing import HEADER_SIZE, encode_batch

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

record = st.binary(max_size=40)
batches = st.lists(st.lists(record, min_size=1, max_size=5), min_size=1, max_size=4)
last_batches = st.lists(st.binary(max_size=120), min_size=1, max_size=3)  # every byte of it gets cut


async def _write(storage: LocalStorage, log_id: str, batch_list: list[list[bytes]]) -> list[int]:
    """Append the batches; return each batch's start offset in the file."""
    offsets, seq, pos = [], 0, 0
    for batch in batch_list:
        offsets.append(pos)
        seq = await storage.append(log_id, batch, seq)
        pos += len(encode_batch(0, batch))
    return offsets


async def _read_data(storage: LocalStorage, log_id: str) -> list[bytes]:
    return [r.data async for r in storage.read(log_id)]


# --- torn tails ------------------------------------------------------------------------------

@SETTINGS
@given(head=batches, last=last_batches, data=st.data())
def test_truncating_the_last_frame_at_every_byte_reads_the_records_before_it(head, last, data):
    asyncio.run(_truncate_everywhere(head, last, data))


async def _truncate_everywhere(head, last, data):
    root = tempfile.mkdtemp(prefix="torn-")
    try:
        writer = LocalStorage(root)
        offsets = await _write(writer, "wf", head + [last])
        path = os.path.join(root, "wf", "events.log")
        full_size = os.path.getsize(path)
        before = [r for batch in head for r in batch]
        reader = LocalStorage(root)  # a fresh process, as after a crash
        for cut in range(full_size - 1, offsets[-1] - 1, -1):  # every byte offset of the last frame
            os.truncate(path, cut)
            assert await _read_data(reader, "wf") == before, cut
            assert [r.seq for r in await reader.read_all("wf")] == list(range(len(before)))
        assert await reader.next_seq("wf") == len(before)

        # a torn tail at a random offset, then a new writer continues at the right seq
        cut = data.draw(st.integers(offsets[-1], full_size - 1), label="cut")
        shutil.copyfile(path, path + ".bak")
        await writer.append("wf", last, len(before))  # put the frame back
        os.truncate(path, cut)
        for storage in (LocalStorage(root), writer):  # a new writer, and the old one (stale tail cache)
            shutil.copyfile(path, path + ".torn")
            with pytest.raises(AppendConflictError) as info:
                await storage.append("wf", [b"never"], len(before) + len(last))
            assert info.value.actual_next_seq == len(before)
            new = [b"new-" + bytes([i]) for i in range(data.draw(st.integers(1, 3), label="new"))]
            assert await storage.append("wf", new, len(before)) == len(before) + len(new)
            assert await _read_data(LocalStorage(root), "wf") == before + new
            # the torn bytes were replaced, not appended after
            assert os.path.getsize(path) == offsets[-1] + len(encode_batch(0, new))
            os.replace(path + ".torn", path)
        await writer.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.parametrize("zeros", [1, 7, HEADER_SIZE, 4096, 100_000])
async def test_a_zero_filled_tail_is_torn_not_corrupt(tmp_path, zeros):
    storage = LocalStorage(str(tmp_path))
    await _write(storage, "wf", [[b"a", b"b"], [b"c" * 300]])
    path = tmp_path / "wf" / "events.log"
    size = path.stat().st_size
    os.truncate(path, size + zeros)  # the file grew, the data never reached the disk
    fresh = LocalStorage(str(tmp_path))
    assert await _read_data(fresh, "wf") == [b"a", b"b", b"c" * 300]
    assert await fresh.next_seq("wf") == 3
    assert await fresh.append("wf", [b"d"], 3) == 4
    assert path.stat().st_size == size + len(encode_batch(3, [b"d"]))
    assert await _read_data(storage, "wf") == [b"a", b"b", b"c" * 300, b"d"]


async def test_a_partly_written_last_frame_padded_with_zeros_is_torn(tmp_path):
    storage = LocalStorage(str(tmp_path))
    offsets = await _write(storage, "wf", [[b"a"], [b"b" * 5000]])
    path = tmp_path / "wf" / "events.log"
    size = path.stat().st_size
    os.truncate(path, offsets[1] + 100)  # only the first 100 bytes of the last frame made it
    os.truncate(path, size)  # ... but the file has its full length
    fresh = LocalStorage(str(tmp_path))
    assert await _read_data(fresh, "wf") == [b"a"]
    assert await fresh.append("wf", [b"c"], 1) == 2
    assert await _read_data(fresh, "wf") == [b"a", b"c"]


# --- damage before the tail --------------------------------------------------------------------

@pytest.mark.parametrize("where", ["payload", "seq", "magic", "crc", "count"])
async def test_a_corrupted_middle_record_names_the_workflow_and_offset(tmp_path, where):
    storage = LocalStorage(str(tmp_path))
    batch_list = [[b"one", b"two"], [b"three" * 20, b"four"], [b"five"], [b"six"]]
    offsets = await _write(storage, "wf-damaged", batch_list)
    path = tmp_path / "wf-damaged" / "events.log"
    at = offsets[1] + {"payload": HEADER_SIZE + 10, "seq": 8, "magic": 1, "crc": 21, "count": 16}[where]
    data = bytearray(path.read_bytes())
    data[at] ^= 0x40
    path.write_bytes(bytes(data))

    fresh = LocalStorage(str(tmp_path))
    seen = []
    with pytest.raises(LogCorruptedError) as info:
        async for r in fresh.read("wf-damaged"):
            seen.append(r.data)
    assert seen == [b"one", b"two"]  # every record before the damage was yielded first
    error = info.value
    assert error.log_id == "wf-damaged" and error.offset == offsets[1]
    assert f"byte offset {offsets[1]}" in str(error) and "'wf-damaged'" in str(error)
    assert error.location == str(path)
    with pytest.raises(LogCorruptedError) as info:
        await fresh.read_all("wf-damaged", from_seq=1)
    assert info.value.offset == offsets[1]
    with pytest.raises(LogCorruptedError):
        await fresh.next_seq("wf-damaged")

    # never append past damage, whatever seq the writer believes in
    for writer in (fresh, LocalStorage(str(tmp_path))):
        for seq in (2, 5, 6):
            with pytest.raises(LogCorruptedError) as info:
                await writer.append("wf-damaged", [b"seven"], seq)
            assert info.value.offset == offsets[1]
    assert path.read_bytes() == bytes(data)  # nothing written, nothing truncated


async def test_a_damaged_length_field_is_not_mistaken_for_a_torn_tail(tmp_path):
    """A middle frame whose length claims to run past the end: appending must not cut the log there."""
    storage = LocalStorage(str(tmp_path))
    offsets = await _write(storage, "wf", [[b"a"], [b"b"], [b"c"], [b"d"]])
    path = tmp_path / "wf" / "events.log"
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, offsets[1] + 4, 1 << 20)
    path.write_bytes(bytes(data))
    fresh = LocalStorage(str(tmp_path))
    with pytest.raises(LogCorruptedError) as info:
        await fresh.read_all("wf")
    assert info.value.offset == offsets[1] and "length" in info.value.reason
    with pytest.raises(LogCorruptedError):
        await fresh.append("wf", [b"e"], 1)
    assert path.read_bytes() == bytes(data)


async def test_a_gap_in_seqs_is_damage(tmp_path):
    storage = LocalStorage(str(tmp_path))
    await storage.append("wf", [b"a"], 0)
    path = tmp_path / "wf" / "events.log"
    with open(path, "ab") as f:  # a foreign writer skipped seq 1
        f.write(encode_batch(2, [b"c"]))
    with pytest.raises(LogCorruptedError) as info:
        await LocalStorage(str(tmp_path)).read_all("wf")
    assert "sequence gap" in info.value.reason and info.value.offset == len(encode_batch(0, [b"a"]))


# --- the tail cache never outlives the file it describes ----------------------------------------

async def test_a_log_deleted_and_recreated_elsewhere_is_not_confused_with_the_cached_one(tmp_path):
    mine, other = LocalStorage(str(tmp_path)), LocalStorage(str(tmp_path))
    await mine.append("wf", [b"a", b"b", b"c"], 0)
    assert await other.delete("wf")
    await other.append("wf", [b"x"], 0)  # same size as before, maybe the same inode
    with pytest.raises(AppendConflictError) as info:
        await mine.append("wf", [b"d"], 3)
    assert info.value.actual_next_seq == 1
    assert await mine.next_seq("wf") == 1
    assert await mine.append("wf", [b"y"], 1) == 2
    assert await _read_data(other, "wf") == [b"x", b"y"]


async def test_a_log_rewritten_in_place_with_other_frames_is_rescanned(tmp_path):
    mine = LocalStorage(str(tmp_path))
    await mine.append("wf", [b"a"], 0)
    await mine.append("wf", [b"b"], 1)
    path = tmp_path / "wf" / "events.log"
    # same inode, same length, different frames: the cached last-frame header no longer matches
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.write(encode_batch(0, [b"z"]).ljust(size, b"\0"))  # one record, then a zero-filled tail
    with pytest.raises(AppendConflictError) as info:
        await mine.append("wf", [b"c"], 2)
    assert info.value.actual_next_seq == 1
    assert await mine.append("wf", [b"c"], 1) == 2
    assert await _read_data(LocalStorage(str(tmp_path)), "wf") == [b"z", b"c"]


async def test_appends_by_another_writer_are_seen(tmp_path):
    mine, other = LocalStorage(str(tmp_path)), LocalStorage(str(tmp_path))
    await mine.append("wf", [b"a"], 0)
    await other.append("wf", [b"b", b"c"], 1)
    with pytest.raises(AppendConflictError) as info:
        await mine.append("wf", [b"stale"], 1)
    assert info.value.actual_next_seq == 3
    assert await mine.append("wf", [b"d"], 3) == 4
    assert await _read_data(other, "wf") == [b"a", b"b", b"c", b"d"]
