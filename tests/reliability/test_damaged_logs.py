"""Torn and damaged logs: cut at every byte of the last frame, flip every byte of it, zero tails,
flip bytes in the middle, delete or damage a middle S3 object.

Promises: a reader recovers exactly the durable prefix or names the damage (workflow, offset or
key), never raises anything but LogCorruptedError; ``replay verify`` reports every torn tail and
every damage (never "clean"), with the events a torn tail still held; nothing ever proceeds past
damage silently (the engine's side of that is in test_engine_faults.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from replay import WorkflowStatus, load_state
from replay._inspect import read_log
from replay._verify import verify
from storage_backends import LogCorruptedError, open_storage
from storage_backends._framing import scan
from tests.reliability._figures import FULL, count
from tests.replay.logs import SCENARIOS, write_log

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WID = "damaged"


async def _written(tmp_path, scenario: str, batches=None) -> tuple[str, bytes, list[int]]:
    """A real log of ``scenario`` on local disk: (its path, its bytes, each frame's offset)."""
    root = tmp_path / "pristine"
    await write_log(f"file://{root}", {}, WID, SCENARIOS[scenario](WID).events, batches)
    path = str(root / WID / "events.log")
    data = open(path, "rb").read()
    offsets = [batch.offset for batch in scan(data).batches]
    return path, data, offsets


class Damaged:
    """One storage holding one copy of the log at a time, rewritten per case."""

    def __init__(self, tmp_path):
        self.root = tmp_path / "damaged"
        (self.root / WID).mkdir(parents=True)
        self.path = self.root / WID / "events.log"

    def storage(self, data: bytes):
        self.path.write_bytes(data)
        return open_storage(f"file://{self.root}")


async def _expect_prefix(storage, records_before: int) -> None:
    records = await storage.read_all(WID)
    assert [r.seq for r in records] == list(range(records_before))


async def _one_finding(storage, kind: str, offset: int):
    (verdict,) = await verify(storage, [WID])
    kinds = [p.kind for p in verdict.problems]
    assert kinds == [kind], verdict.problems
    assert verdict.problems[0].offset == offset
    return verdict.problems[0]


SWEEP = list(SCENARIOS) if FULL else ["retry_and_continuation"]


@pytest.mark.parametrize("scenario", SWEEP)
async def test_cut_at_every_byte_of_the_last_frame(tmp_path, scenario):
    path, data, offsets = await _written(tmp_path, scenario)
    last = offsets[-1]
    whole = len(await open_storage(f"file://{os.path.dirname(os.path.dirname(path))}").read_all(WID))
    prefix = len([r for b in scan(data).batches[:-1] for r in b.records()])
    damaged = Damaged(tmp_path)
    for cut in range(last, len(data)):
        storage = damaged.storage(data[:cut])
        await _expect_prefix(storage, prefix)
        if cut == last:  # the whole frame gone: a clean, shorter log
            (verdict,) = await verify(storage, [WID])
            assert verdict.problems == []
            continue
        problem = await _one_finding(storage, "torn-tail", last)
        assert problem.seq == prefix and f"{cut - last} bytes after the last whole batch" in problem.message
        state = await load_state(storage, WID)
        assert state.next_seq == prefix
    count("logs damaged: last frame cut at every byte", len(data) - last)
    assert whole > prefix


@pytest.mark.parametrize("scenario", SWEEP)
async def test_flip_every_byte_of_the_last_frame(tmp_path, scenario):
    path, data, offsets = await _written(tmp_path, scenario)
    last = offsets[-1]
    prefix = len([r for b in scan(data).batches[:-1] for r in b.records()])
    damaged = Damaged(tmp_path)
    for at in range(last, len(data)):
        flipped = bytearray(data)
        flipped[at] ^= 0xFF
        storage = damaged.storage(bytes(flipped))
        await _expect_prefix(storage, prefix)
        problem = await _one_finding(storage, "torn-tail", last)
        if at >= last + 24 + 4 * 3:  # past the header and the lengths: the records are still there
            assert "whole event" in problem.message, problem.message
    count("logs damaged: last frame byte flipped", len(data) - last)


async def test_zero_tails(tmp_path):
    path, data, offsets = await _written(tmp_path, "retry_and_continuation")
    prefix = len([r for b in scan(data).batches[:-1] for r in b.records()])
    total = len(scan(data).records)
    damaged = Damaged(tmp_path)
    cases = 0
    for zeros in (1, 23, 24, 25, 4096):  # the file grew, the data never reached the disk
        storage = damaged.storage(data + b"\0" * zeros)
        await _expect_prefix(storage, total)
        problem = await _one_finding(storage, "torn-tail", len(data))
        assert "no whole event" in problem.message
        cases += 1
    for keep in range(offsets[-1], len(data), 7):  # the last frame's end zeroed
        storage = damaged.storage(data[:keep] + b"\0" * (len(data) - keep))
        await _expect_prefix(storage, prefix)
        await _one_finding(storage, "torn-tail", offsets[-1])
        cases += 1
    count("logs damaged: zeroed tails", cases)


async def test_a_flip_in_a_middle_frame_is_damage_named_by_offset(tmp_path):
    path, data, offsets = await _written(tmp_path, "retry_and_continuation")
    damaged = Damaged(tmp_path)
    cases = 0
    for frame in range(1, len(offsets) - 1):
        start, end = offsets[frame], offsets[frame + 1]
        before = len([r for b in scan(data).batches[:frame] for r in b.records()])
        for at in range(start, end, max(1, (end - start) // 12)):
            flipped = bytearray(data)
            flipped[at] ^= 0x01
            storage = damaged.storage(bytes(flipped))
            got = []
            with pytest.raises(LogCorruptedError) as info:
                async for record in storage.read(WID):
                    got.append(record.seq)
            assert got == list(range(before)) and info.value.offset == start and info.value.log_id == WID
            await _one_finding(storage, "corrupted", start)
            with pytest.raises(LogCorruptedError):
                await load_state(storage, WID)
            cases += 1
    count("logs damaged: middle frame byte flipped", cases)


def test_verify_exits_1_and_prints_the_torn_tail(tmp_path):
    """Fault 4 at the command line: `replay verify` on a finished workflow with a torn last frame."""
    import asyncio

    path, data, offsets = asyncio.run(_written(tmp_path, "retry_and_continuation"))
    with open(path, "r+b") as f:
        f.truncate(len(data) - 3)
    proc = subprocess.run([sys.executable, "-m", "replay", "--storage", f"file://{tmp_path}/pristine",
                           "verify", WID], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "0 clean, 1 with problems" in proc.stdout
    assert f"byte offset {offsets[-1]}" in proc.stdout and "torn-tail" in proc.stdout
    assert "workflow.succeeded" in proc.stdout or "task." in proc.stdout  # the events it held


# --- S3: objects are whole or absent, so damage is a missing, foreign or damaged object ---------

@pytest.fixture
async def s3_log(s3_url, s3_options):
    events = SCENARIOS["retry_and_continuation"](WID).events
    await write_log(s3_url, s3_options, WID, events)
    storage = open_storage(s3_url, **s3_options)
    try:
        yield storage, s3_url, len(events)
    finally:
        await storage.close()


def _keys(s3_admin, url: str) -> list[str]:
    bucket, _, prefix = url[len("s3://"):].partition("/")
    listing = s3_admin.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/logs/{WID}/")
    return [item["Key"] for item in listing.get("Contents", ())]


@pytest.mark.parametrize("damage", ["delete", "truncate", "flip", "empty"])
@pytest.mark.parametrize("which", ["middle", "last"])
async def test_s3_damaged_or_missing_object_is_named(s3_log, s3_admin, damage, which):
    storage, url, total = s3_log
    bucket = url[len("s3://"):].partition("/")[0]
    keys = _keys(s3_admin, url)
    index = len(keys) // 2 if which == "middle" else len(keys) - 1
    key = keys[index]
    body = s3_admin.get_object(Bucket=bucket, Key=key)["Body"].read()
    if damage == "delete":
        s3_admin.delete_object(Bucket=bucket, Key=key)
    else:
        new = {"truncate": body[:-5], "flip": body[:30] + bytes([body[30] ^ 0xFF]) + body[31:], "empty": b""}[damage]
        s3_admin.put_object(Bucket=bucket, Key=key, Body=new)
    before = 3 * index  # write_log appends 3 events per batch
    log = await read_log(storage, WID)
    assert [e.seq for e in log.entries] == list(range(before))
    if damage == "delete" and which == "last":  # a shorter, intact chain: nothing to see
        assert log.damage is None and await storage.next_seq(WID) == before
        return
    assert log.damage is not None and log.damage.kind == "corrupted"
    (verdict,) = await verify(storage, [WID])
    assert [p.kind for p in verdict.problems] == ["corrupted"]
    named = keys[index + 1] if damage == "delete" else key
    assert named in verdict.problems[0].location
    with pytest.raises(LogCorruptedError):
        await load_state(storage, WID)
    count("logs damaged: S3 objects deleted or damaged")
    assert total > before


async def test_status_of_a_torn_log_is_the_prefixs(tmp_path):
    """A torn last frame of a finished workflow: the state is the prefix's (RUNNING, so the
    engine says RESUMABLE), never SUCCESSFUL with a half-read batch."""
    path, data, offsets = await _written(tmp_path, "retry_and_continuation")
    damaged = Damaged(tmp_path)
    storage = damaged.storage(data[:-1])
    state = await load_state(storage, WID)
    assert state.status is WorkflowStatus.RUNNING
    shutil.rmtree(damaged.root)
