"""Handing a log's tail from one storage instance to another, and holding a log (issue 14).

A driver begins a workflow's log and the manager, another process, appends next: with the
driver's :meth:`Storage.tail_token` the manager's S3 append needs no LIST and GET to find the
tail first. A log the caller holds (:meth:`Storage.hold`, under a lease) is appended to without
the HEAD that proves a cached tail. Neither may ever fork a log: a stale token (the log was
deleted and begun again) is still caught. Requests are seen by a real proxy in front of moto.
"""

from __future__ import annotations

import uuid

import pytest

from storage_backends import AppendConflictError, open_storage
from tests.reliability.fault_proxy import FaultProxy


@pytest.fixture
def seen(moto_server):
    """A pass-through proxy in front of moto, and the (method, query-or-path) of what it saw."""
    requests: list[tuple[str, str]] = []

    def record(method, path, headers) -> bool:
        requests.append((method, "LIST" if "list-type" in path else path.rsplit("/", 1)[-1]))
        return False  # never a fault: only watching

    with FaultProxy(moto_server, only=record) as proxy:
        yield proxy, requests


def _methods(requests) -> list[str]:
    return ["LIST" if name == "LIST" else method for method, name in requests]


async def test_a_handed_over_tail_needs_no_lookup(seen, s3_url, s3_options):
    proxy, requests = seen
    log = "handover-" + uuid.uuid4().hex[:8]
    driver = open_storage(s3_url, **s3_options)
    manager = open_storage(s3_url, endpoint_url=proxy.url)
    try:
        assert await driver.append(log, [b"submitted"], 0) == 1
        token = driver.tail_token(log)
        assert token is not None
        await manager.exists("warm-up")  # (the client's first request checks the bucket)
        manager.learn_tail(log, token)
        requests.clear()
        assert await manager.append(log, [b"claimed"], 1) == 2
        # the put, and beside it the HEAD proving the driver's batch is still the log's start
        assert sorted(_methods(requests)) == ["HEAD", "PUT"]
        assert [r.data for r in await driver.read_all(log)] == [b"submitted", b"claimed"]
    finally:
        await driver.close()
        await manager.close()


async def test_without_a_token_the_tail_is_looked_up(seen, s3_url, s3_options):
    """The baseline the token saves: a LIST and a GET before the put."""
    proxy, requests = seen
    log = "lookup-" + uuid.uuid4().hex[:8]
    driver = open_storage(s3_url, **s3_options)
    manager = open_storage(s3_url, endpoint_url=proxy.url)
    try:
        await driver.append(log, [b"submitted"], 0)
        await manager.exists("warm-up")
        manager.learn_tail(log, b"not a token of ours")  # ignored, not an error
        requests.clear()
        assert await manager.append(log, [b"claimed"], 1) == 2
        assert "LIST" in _methods(requests) and "GET" in _methods(requests)
    finally:
        await driver.close()
        await manager.close()


async def test_a_stale_token_never_forks_the_log(s3_url, s3_options):
    """The log was deleted and begun again (three records in one batch) after the token was
    taken: the append at seq 1 must not land inside the new log's first batch."""
    log = "stale-" + uuid.uuid4().hex[:8]
    first, second, manager = (open_storage(s3_url, **s3_options) for _ in range(3))
    try:
        await first.append(log, [b"old"], 0)
        token = first.tail_token(log)
        assert await first.delete(log)
        await second.append(log, [b"new-0", b"new-1", b"new-2"], 0)
        manager.learn_tail(log, token)
        with pytest.raises(AppendConflictError):
            await manager.append(log, [b"late"], 1)
        assert [r.data for r in await second.read_all(log)] == [b"new-0", b"new-1", b"new-2"]
    finally:
        for storage in (first, second, manager):
            await storage.close()


async def test_a_held_log_is_appended_to_without_proof(seen, s3_url):
    proxy, requests = seen
    log = "held-" + uuid.uuid4().hex[:8]
    storage = open_storage(s3_url, endpoint_url=proxy.url)
    other = open_storage(s3_url, endpoint_url=proxy.url)
    try:
        await storage.append(log, [b"a"], 0)
        storage.hold(log)
        requests.clear()
        assert await storage.append(log, [b"b"], 1) == 2
        assert _methods(requests) == ["PUT"]
        # another writer's append is still a conflict, held or not
        await other.append(log, [b"theirs"], 2)
        with pytest.raises(AppendConflictError):
            await storage.append(log, [b"c"], 2)
        storage.release(log)
        requests.clear()
        assert await storage.append(log, [b"c"], 3) == 4  # released: it looks the tail up again
        assert "LIST" in _methods(requests)
        assert [r.data for r in await storage.read_all(log)] == [b"a", b"b", b"theirs", b"c"]
    finally:
        await storage.close()
        await other.close()


async def test_local_storage_takes_the_calls_and_stays_correct(tmp_path):
    """Local appends check the tail under a file lock anyway: no token, hold is a promise only."""
    driver = open_storage(f"file://{tmp_path}")
    manager = open_storage(f"file://{tmp_path}")
    try:
        await driver.append("w", [b"submitted"], 0)
        assert driver.tail_token("w") is None
        manager.learn_tail("w", None)
        manager.hold("w")
        assert await manager.append("w", [b"claimed"], 1) == 2
        manager.release("w")
        with pytest.raises(AppendConflictError):
            await manager.append("w", [b"stale"], 1)
        assert [r.data for r in await driver.read_all("w")] == [b"submitted", b"claimed"]
    finally:
        await driver.close()
        await manager.close()
