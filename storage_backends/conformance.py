"""The storage conformance suite: one set of tests for every backend.

Ships inside the package so a third-party backend can run it against itself::

    from storage_backends.conformance import StorageConformance

    class TestMyBackend(StorageConformance):
        @pytest.fixture
        def storage_url(self, tmp_path):
            return "mine://..."          # a fresh, empty place for each test

        storage_options = {}             # extra open_storage() keyword arguments
        backend_modules = ("my_pkg",)    # imported by child processes to register the scheme

Needs pytest and pytest-asyncio (``asyncio_mode = "auto"``).
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import os
import uuid

import pytest

from . import (
    AppendConflictError,
    BlobNotFoundError,
    InvalidIdError,
    Storage,
    open_storage,
    system_id,
)

INVALID_IDS = [
    "",
    ".",
    "..",
    "../escape",
    "a/../../b",
    "a/b",
    "a\\b",
    "/abs",
    ".hidden",
    "-dash-first",
    "has space",
    "nul\x00byte",
    "new\nline",
    "x" * 129,
    "caf\u00e9",
]

MB = 1024 * 1024


def _race_in_process(url: str, options: dict, modules: tuple[str, ...], log_id: str,
                     total: int, name: str) -> list[int]:
    """Child process: keep trying to take the log's next seq until ``total`` are taken."""
    for module in modules:
        importlib.import_module(module)

    async def run() -> list[int]:
        storage = open_storage(url, **options)
        won = []
        try:
            while (seq := await storage.next_seq(log_id)) < total:
                try:
                    await storage.append(log_id, [f"{name}:{seq}".encode()], seq)
                    won.append(seq)
                except AppendConflictError:
                    pass
        finally:
            await storage.close()
        return won

    return asyncio.run(run())


class StorageConformance:
    """Behaviour every :class:`storage_backends.Storage` must have. Subclass it to run it."""

    storage_options: dict = {}
    backend_modules: tuple[str, ...] = ()

    @pytest.fixture
    def storage_url(self):  # pragma: no cover - subclasses override
        raise NotImplementedError("a conformance subclass must provide a storage_url fixture")

    @pytest.fixture
    async def storage(self, storage_url):
        storage = open_storage(storage_url, **self.storage_options)
        try:
            yield storage
        finally:
            await storage.close()

    @staticmethod
    def new_id() -> str:
        return "wf-" + uuid.uuid4().hex[:12]

    # --- append / read ----------------------------------------------------------

    async def test_unknown_log_is_empty(self, storage: Storage):
        log = self.new_id()
        assert await storage.next_seq(log) == 0
        assert await storage.read_all(log) == []
        assert not await storage.exists(log)

    async def test_append_and_read_in_order(self, storage: Storage):
        log = self.new_id()
        assert await storage.append(log, [b"a", b"b"], 0) == 2
        assert await storage.append(log, [b""], 2) == 3
        assert await storage.append(log, [b"c" * 5000, b"d", b"e"], 3) == 6
        records = await storage.read_all(log)
        assert [r.seq for r in records] == list(range(6))
        assert [r.data for r in records] == [b"a", b"b", b"", b"c" * 5000, b"d", b"e"]
        assert [r.data for r in await storage.read_all(log, from_seq=4)] == [b"d", b"e"]
        assert await storage.read_all(log, from_seq=6) == []
        assert await storage.next_seq(log) == 6
        assert await storage.exists(log)

    async def test_read_batches_holds_the_records_of_read(self, storage: Storage):
        log = self.new_id()
        assert [b async for b in storage.read_batches(log)] == []
        await storage.append(log, [b"a", b"bb"], 0)
        await storage.append(log, [b""], 2)
        await storage.append(log, [b"c" * 5000, b"d", b"e"], 3)
        for from_seq in (0, 1, 3, 4, 5, 6):
            batches = [b async for b in storage.read_batches(log, from_seq)]
            split = [record for batch in batches for record in batch.records()]
            assert split == await storage.read_all(log, from_seq)
            for batch in batches:  # each batch's bytes are its records' bytes back to back
                assert len(batch.data) == sum(batch.lengths)

    async def test_append_needs_records(self, storage: Storage):
        with pytest.raises(ValueError):
            await storage.append(self.new_id(), [], 0)

    async def test_conflict_writes_nothing(self, storage: Storage):
        log = self.new_id()
        await storage.append(log, [b"first"], 0)
        for stale in (0, 2, 7):
            with pytest.raises(AppendConflictError) as info:
                await storage.append(log, [b"stale"], stale)
            assert info.value.log_id == log
            assert info.value.expected_next_seq == stale
            assert log in str(info.value)
        assert [r.data for r in await storage.read_all(log)] == [b"first"]
        with pytest.raises(AppendConflictError):
            await storage.append(self.new_id(), [b"not at zero"], 1)

    async def test_a_stale_instance_conflicts_after_another_began_the_log_again(self, storage: Storage,
                                                                                 storage_url):
        """Another instance deletes a log and begins it again, shorter: an append at the end this
        instance last saw must conflict, never land inside the new log."""
        log = self.new_id()
        other = open_storage(storage_url, **self.storage_options)
        try:
            assert await storage.append(log, [b"old"], 0) == 1
            assert await other.delete(log)
            assert await other.append(log, [b"n0", b"n1", b"n2"], 0) == 3
            with pytest.raises(AppendConflictError):
                await storage.append(log, [b"stale"], 1)
            assert [r.data for r in await other.read_all(log)] == [b"n0", b"n1", b"n2"]
        finally:
            await other.close()

    async def test_an_intact_log_has_no_torn_tail_and_the_storage_checks_out(self, storage: Storage):
        await storage.check()
        log = self.new_id()
        assert await storage.torn_tail(log) is None
        await storage.append(log, [b"a", b"b"], 0)
        assert await storage.torn_tail(log) is None

    async def test_concurrent_tasks_one_winner_per_seq(self, storage: Storage):
        log = self.new_id()
        writers = 6
        rounds = 15
        for seq in range(rounds):
            results = await asyncio.gather(
                *(storage.append(log, [f"w{w}:{seq}".encode()], seq) for w in range(writers)),
                return_exceptions=True,
            )
            winners = [r for r in results if not isinstance(r, BaseException)]
            losers = [r for r in results if isinstance(r, BaseException)]
            assert winners == [seq + 1], results
            assert all(isinstance(r, AppendConflictError) for r in losers), losers
        records = await storage.read_all(log)
        assert [r.seq for r in records] == list(range(rounds))
        assert [r.data.decode().split(":")[1] for r in records] == [str(s) for s in range(rounds)]

    def test_concurrent_processes_one_winner_per_seq(self, storage_url):
        log = self.new_id()
        total = 40
        processes = 4
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(processes) as pool:
            wins = pool.starmap(
                _race_in_process,
                [(storage_url, self.storage_options, self.backend_modules, log, total, f"p{i}")
                 for i in range(processes)],
            )
        all_wins = sorted(seq for won in wins for seq in won)
        assert all_wins == list(range(total)), "every seq won exactly once"

        async def read_back():
            storage = open_storage(storage_url, **self.storage_options)
            try:
                return await storage.read_all(log)
            finally:
                await storage.close()

        records = asyncio.run(read_back())
        assert [r.seq for r in records] == list(range(total))
        for i, won in enumerate(wins):
            for seq in won:
                assert records[seq].data == f"p{i}:{seq}".encode()

    async def test_read_past_a_thousand_batches(self, storage: Storage):
        log = self.new_id()
        count = 1010
        for seq in range(count):
            await storage.append(log, [seq.to_bytes(4, "big")], seq)
        records = await storage.read_all(log)
        assert [int.from_bytes(r.data, "big") for r in records] == list(range(count))
        tail = await storage.read_all(log, from_seq=1005)
        assert [r.seq for r in tail] == list(range(1005, count))

    async def test_list_logs_past_a_thousand(self, storage: Storage):
        ids = sorted(f"list-{i:05d}" for i in range(1005))
        sem = asyncio.Semaphore(32)

        async def make(log_id):
            async with sem:
                await storage.append(log_id, [b"x"], 0)

        await asyncio.gather(*(make(i) for i in ids))
        assert await storage.list_logs() == ids

    async def test_list_and_delete(self, storage: Storage):
        a, b = sorted([self.new_id(), self.new_id()])
        await storage.append(a, [b"1"], 0)
        await storage.append(b, [b"2"], 0)
        await storage.put_blob(a, "out", b"payload")
        assert await storage.list_logs() == [a, b]
        assert await storage.delete(a) is True
        assert await storage.list_logs() == [b]
        assert await storage.read_all(a) == []
        assert await storage.next_seq(a) == 0
        assert not await storage.blob_exists(a, "out")
        assert await storage.delete(a) is False
        # a deleted log can be started afresh
        await storage.append(a, [b"again"], 0)
        assert [r.data for r in await storage.read_all(a)] == [b"again"]

    # --- blobs ------------------------------------------------------------------

    @pytest.mark.parametrize("size", [0, 1, 4096, 5 * MB, 50 * MB])
    async def test_blob_round_trip(self, storage: Storage, size: int):
        log = self.new_id()
        data = os.urandom(min(size, MB)) * (size // MB) + os.urandom(size % MB) if size else b""
        await storage.put_blob(log, "blob-1", data)
        assert await storage.blob_exists(log, "blob-1")
        got = await storage.get_blob(log, "blob-1")
        assert len(got) == size and got == data

    async def test_blob_overwrite_missing_and_delete(self, storage: Storage):
        log = self.new_id()
        assert not await storage.blob_exists(log, "x")
        with pytest.raises(BlobNotFoundError) as info:
            await storage.get_blob(log, "x")
        assert "x" in str(info.value) and log in str(info.value)
        await storage.put_blob(log, "x", b"one")
        await storage.put_blob(log, "x", b"two")
        assert await storage.get_blob(log, "x") == b"two"
        assert await storage.delete_blob(log, "x") is True
        assert await storage.delete_blob(log, "x") is False
        assert not await storage.blob_exists(log, "x")

    async def test_list_blobs(self, storage: Storage):
        log, other = self.new_id(), self.new_id()
        listed = await storage.list_blobs(log)
        if listed is None:
            pytest.skip(f"{type(storage).__name__} cannot list blobs")
        assert listed == {}
        await storage.put_blob(log, "b", b"12345")
        await storage.put_blob(log, "a", b"")
        await storage.put_blob(other, "c", b"x")
        await storage.append(log, [b"r"], 0)
        assert await storage.list_blobs(log) == {"a": 0, "b": 5}
        await storage.delete_blob(log, "b")
        assert await storage.list_blobs(log) == {"a": 0}
        await storage.delete(log)
        assert await storage.list_blobs(log) == {}
        assert await storage.list_blobs(other) == {"c": 1}

    async def test_blobs_do_not_make_a_log(self, storage: Storage):
        log = self.new_id()
        await storage.put_blob(log, "dag", b"d")
        assert log not in await storage.list_logs()

    # --- bad input --------------------------------------------------------------

    @pytest.mark.parametrize("bad", INVALID_IDS + [None, 42])
    async def test_invalid_log_ids_are_refused(self, storage: Storage, bad):
        calls = [
            lambda: storage.append(bad, [b"x"], 0),
            lambda: storage.read_all(bad),
            lambda: _drain(storage.read_batches(bad)),
            lambda: storage.next_seq(bad),
            lambda: storage.delete(bad),
            lambda: storage.put_blob(bad, "b", b"x"),
            lambda: storage.get_blob(bad, "b"),
        ]
        for call in calls:
            with pytest.raises(InvalidIdError) as info:
                await call()
            assert "workflow id" in str(info.value)

    @pytest.mark.parametrize("bad", ["../up", "a/b", "", "..", ".tmp"])
    async def test_invalid_blob_names_are_refused(self, storage: Storage, bad):
        with pytest.raises(InvalidIdError) as info:
            await storage.put_blob(self.new_id(), bad, b"x")
        assert "blob name" in str(info.value)

    # --- system logs --------------------------------------------------------------

    async def test_system_logs_work_but_are_never_listed(self, storage: Storage):
        user = self.new_id()
        system = system_id("system_index")
        await storage.append(user, [b"u"], 0)
        await storage.append(system, [b"s0", b"s1"], 0)
        assert await storage.append(system, [b"s2"], 2) == 3
        with pytest.raises(AppendConflictError):
            await storage.append(system, [b"stale"], 2)
        await storage.put_blob(system, "snapshot", b"snap")
        await storage.put_blob(system_id("blobs_only"), "b", b"x")
        assert [r.data for r in await storage.read_all(system)] == [b"s0", b"s1", b"s2"]
        assert [r.data for r in await storage.read_all(system, from_seq=2)] == [b"s2"]
        assert await storage.next_seq(system) == 3 and await storage.exists(system)
        assert await storage.get_blob(system, "snapshot") == b"snap"
        assert await storage.blob_exists(system, "snapshot")
        assert await storage.list_logs() == [user]
        assert await storage.delete(system) is True
        assert await storage.read_all(system) == [] and await storage.next_seq(system) == 0
        assert not await storage.blob_exists(system, "snapshot")
        assert await storage.delete(system) is False
        assert await storage.list_logs() == [user]

    async def test_system_and_user_ids_do_not_collide(self, storage: Storage):
        """No user id, however it is spelled, reaches a system log (and the reverse)."""
        users = ["index", "_index", "__index", "system", "_system", "system.index", "system-index"]
        for user in users:
            await storage.append(user, [user.encode()], 0)
            await storage.put_blob(user, "snapshot", user.encode())
        await storage.append(system_id("index"), [b"system"], 0)
        await storage.put_blob(system_id("index"), "snapshot", b"system")
        for user in users:
            assert [r.data for r in await storage.read_all(user)] == [user.encode()]
            assert await storage.get_blob(user, "snapshot") == user.encode()
        assert [r.data for r in await storage.read_all(system_id("index"))] == [b"system"]
        assert await storage.list_logs() == sorted(users)
        assert await storage.delete(system_id("index")) is True
        assert await storage.list_logs() == sorted(users)
        for user in users:
            assert [r.data for r in await storage.read_all(user)] == [user.encode()]

    async def test_leading_underscore_user_ids_are_listed(self, storage: Storage):
        ids = ["_", "__function_chain_test", "_a", "_status_index"]
        for log_id in ids:
            await storage.append(log_id, [b"x"], 0)
        assert await storage.list_logs() == sorted(ids)

    @pytest.mark.parametrize("bad", ["system:", "system:_x", "system:.x", "system:-x", "system:a/b",
                                     "system:a b", "system:a..b", "system:x:y", "System:x",
                                     "system:" + "x" * 128])
    async def test_malformed_system_ids_are_refused(self, storage: Storage, bad):
        for call in (lambda: storage.append(bad, [b"x"], 0), lambda: storage.read_all(bad),
                     lambda: storage.put_blob(bad, "b", b"x"), lambda: storage.delete(bad)):
            with pytest.raises(InvalidIdError):
                await call()


async def _drain(iterator) -> list:
    return [item async for item in iterator]
