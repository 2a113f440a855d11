"""S3 through a real fault proxy (tests/reliability/fault_proxy.py) in front of moto_server.

Promises: a write that landed is never reported as a conflict or lost (its answer may be);
with 10% of requests faulted every append ends as written or as a clear StorageError, never a
false conflict, and the log has no duplicate or missing seq; a persistent outage is one clear
error, and the same storage works again once it ends.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest

from storage_backends import AppendConflictError, StorageError, open_storage
from tests.reliability._figures import count, seeds
from tests.reliability.fault_proxy import KINDS, FaultProxy


def _conditional_put(method, path, headers) -> bool:
    return method == "PUT" and headers.get("If-None-Match") is not None


@pytest.fixture
def proxy(moto_server):
    with FaultProxy(moto_server) as proxy:
        yield proxy
    count("s3: faults injected (storage level)", proxy.total_injected)


@pytest.mark.parametrize("max_attempts", [1, 6])
@pytest.mark.parametrize("kind", ["reset-after", "500-after"])
async def test_a_lost_answer_to_a_put_that_landed_is_our_own_write(proxy, s3_url, kind, max_attempts):
    """Fault 1: the PUT of a batch reaches S3 and its answer is lost. Whether botocore retries
    (412 on the re-sent put) or gives up (max_attempts=1), the append succeeds once."""
    proxy.only = _conditional_put
    proxy.script(kind)
    storage = open_storage(s3_url, endpoint_url=proxy.url, max_attempts=max_attempts)
    log = "lost-" + uuid.uuid4().hex[:8]
    try:
        assert await storage.append(log, [b"first"], 0) == 1
        assert proxy.injected[kind] == 1
        assert [r.data for r in await storage.read_all(log)] == [b"first"]
        assert await storage.append(log, [b"second"], 1) == 2
        assert [(r.seq, r.data) for r in await storage.read_all(log)] == [(0, b"first"), (1, b"second")]
    finally:
        await storage.close()


async def test_a_put_that_never_landed_is_an_error_that_says_so_not_a_success(proxy, s3_url):
    """(Every put is reset: the HTTP client re-sends a request whose reused connection was reset,
    so one scripted reset would not be seen.)"""
    proxy.only = _conditional_put
    storage = open_storage(s3_url, endpoint_url=proxy.url, max_attempts=2)
    log = "never-" + uuid.uuid4().hex[:8]
    try:
        with proxy.outage("reset-before"), \
                pytest.raises(StorageError, match=rf"append for log '{log}' failed .*may or may not"):
            await storage.append(log, [b"x"], 0)
        assert await storage.read_all(log) == []
        assert await storage.append(log, [b"x"], 0) == 1
    finally:
        await storage.close()


async def test_another_writers_batch_found_after_a_failed_put_is_a_conflict(proxy, s3_url, s3_options):
    """Our put fails without an answer, and the key holds someone else's batch: a conflict."""
    storage = open_storage(s3_url, endpoint_url=proxy.url, max_attempts=1)
    rival = open_storage(s3_url, **s3_options)
    log = "rival-" + uuid.uuid4().hex[:8]
    try:
        await rival.append(log, [b"theirs"], 0)
        proxy.only = _conditional_put
        proxy.script("reset-before")
        with pytest.raises(AppendConflictError):
            await storage.append(log, [b"ours"], 0)
        assert [r.data for r in await storage.read_all(log)] == [b"theirs"]
    finally:
        await storage.close()
        await rival.close()


@pytest.mark.parametrize("seed", seeds(reduced=2, full=20))
async def test_ten_percent_faults_no_false_conflict_no_duplicate_or_missing_seq(proxy, s3_url, seed):
    """Eight logs, one writer each, 25 appends of 1-3 records, every request at a 10% chance of
    any fault. A writer that gets a StorageError re-reads the log to learn whether its batch is
    in (the caller's protocol after an unsure append) and goes on. No append may ever conflict."""
    proxy.rate, proxy.kinds = 0.10, KINDS
    proxy._random.seed(seed)
    storage = open_storage(s3_url, endpoint_url=proxy.url)
    rng = random.Random(seed)
    errors = 0

    async def writer(log: str) -> list[bytes]:
        nonlocal errors
        written: list[bytes] = []
        seq = 0
        for n in range(25):
            batch = [f"{log}/{n}/{i}".encode() for i in range(rng.randint(1, 3))]
            while True:
                try:
                    seq = await storage.append(log, batch, seq)
                    written.extend(batch)
                    break
                except AppendConflictError as exc:
                    pytest.fail(f"false conflict with a single writer: {exc}")
                except StorageError:
                    errors += 1
                    records = await _read_through_faults(storage, log)
                    if records[-len(batch):] == batch and len(records) == len(written) + len(batch):
                        seq, written = len(records), written + batch  # it had landed
                        break
                    assert records == written  # nothing half-written, nothing lost
        return written

    try:
        logs = [f"storm-{seed}-{i}" for i in range(8)]
        expected = await asyncio.gather(*(writer(log) for log in logs))
        proxy.rate = 0
        for log, written in zip(logs, expected):
            records = await storage.read_all(log)
            assert [r.seq for r in records] == list(range(len(written)))  # no gap, no duplicate
            assert [r.data for r in records] == written
    finally:
        await storage.close()
    assert proxy.total_injected > 0
    count("s3: appends under 10% faults", 8 * 25)
    count("s3: appends that surfaced a StorageError (then re-read, none lost)", errors)


async def _read_through_faults(storage, log: str) -> list[bytes]:
    for _ in range(20):
        try:
            return [r.data for r in await storage.read_all(log)]
        except StorageError:
            await asyncio.sleep(0.05)
    raise AssertionError("20 reads in a row failed at a 10% fault rate")


async def test_a_persistent_outage_is_one_clear_error_and_the_storage_works_after(proxy, s3_url):
    storage = open_storage(s3_url, endpoint_url=proxy.url, max_attempts=2)
    log = "outage-" + uuid.uuid4().hex[:8]
    try:
        assert await storage.append(log, [b"before"], 0) == 1
        with proxy.outage("503"):
            with pytest.raises(StorageError) as info:
                await storage.append(log, [b"during"], 1)
        message = str(info.value)
        assert log in message and "SlowDown" in message and "HTTP 503" in message
        assert [r.data for r in await storage.read_all(log)] == [b"before"]
        assert await storage.append(log, [b"after"], 1) == 2
    finally:
        await storage.close()
