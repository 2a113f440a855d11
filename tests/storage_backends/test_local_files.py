"""The local backend's files: permissions, crash consistency under a real kill -9, lifecycle."""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import stat
import subprocess
import sys
import threading
import time

import pytest

from storage_backends import AppendConflictError, LocalStorage, Record, open_storage
from storage_backends._framing import scan
from storage_backends._local_io import IoThreads as _IoThreads

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(params=[0o022, 0o000], ids=["umask022", "umask000"])
def umask(request):
    """The modes must come from the backend, not from a friendly umask."""
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


async def test_logs_and_blobs_are_private(tmp_path, umask):
    root = tmp_path / "store"
    storage = LocalStorage(str(root))
    await storage.append("wf", [b"secret"], 0)
    await storage.put_blob("wf", "output", b"secret payload")
    await storage.put_blob("blobs-first", "dag", b"dag")  # a blob before any log record
    assert _mode(root) == 0o700
    for log_id in ("wf", "blobs-first"):
        assert _mode(root / log_id) == 0o700
        assert _mode(root / log_id / "blobs") == 0o700
    assert _mode(root / "wf" / "events.log") == 0o600
    assert _mode(root / "wf" / "blobs" / "output") == 0o600
    assert _mode(root / "blobs-first" / "blobs" / "dag") == 0o600
    # blobs are written atomically (temp file + rename): nothing else is left behind
    assert sorted(os.listdir(root / "wf" / "blobs")) == ["output"]
    await storage.put_blob("wf", "output", b"replaced")
    assert sorted(os.listdir(root / "wf" / "blobs")) == ["output"]
    assert _mode(root / "wf" / "blobs" / "output") == 0o600
    await storage.close()


async def test_a_missing_log_directory_is_recreated_privately(tmp_path, umask):
    storage = LocalStorage(str(tmp_path / "store"))
    await storage.append("wf", [b"a"], 0)
    await storage.delete("wf")
    await storage.append("wf", [b"b"], 0)  # the directory is known to be gone from the cache's point of view
    assert _mode(tmp_path / "store" / "wf") == 0o700
    assert _mode(tmp_path / "store" / "wf" / "events.log") == 0o600
    await storage.close()


# --- kill -9 ------------------------------------------------------------------------------------

_WRITER = r"""
import asyncio, os, random, sys
from storage_backends import open_storage

async def main(root, log_id, seed):
    rng = random.Random(seed)
    storage = open_storage(root)
    seq = await storage.next_seq(log_id)
    print("ready", seq, flush=True)
    while True:
        # big and small batches, so the kill lands inside a write now and then
        sizes = rng.choices([10, 100, 1000, 256_000], weights=[40, 30, 27, 3], k=rng.randint(1, 5))
        batch = [seq_record(seq + i, size) for i, size in enumerate(sizes)]
        seq = await storage.append(log_id, batch, seq)

def seq_record(seq, size):
    head = seq.to_bytes(8, "big")
    return head + bytes([seq % 251]) * size

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


def _check_record(record) -> None:
    assert record.data[:8] == record.seq.to_bytes(8, "big")
    assert record.data[8:] == bytes([record.seq % 251]) * (len(record.data) - 8)


def test_kill_9_mid_append_leaves_a_clean_contiguous_log(tmp_path):
    root, log_id = str(tmp_path / "store"), "crashy"
    path = os.path.join(root, log_id, "events.log")
    torn_seen = 0
    total = 0
    for round_ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, root, log_id, str(round_)], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            line = proc.stdout.readline()
            assert line.startswith("ready"), proc.stderr.read()
            assert int(line.split()[1]) == total  # the new writer continues where the log ends
            # let it run for a while, then kill it without warning, at a random moment
            deadline = time.monotonic() + 0.2 + 0.1 * round_
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read()
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        assert proc.returncode == -signal.SIGKILL

        with open(path, "rb") as f:
            raw = f.read()
        result = scan(raw)
        assert result.error is None
        torn_seen += result.torn

        async def read_back():
            storage = LocalStorage(root)
            records = await storage.read_all(log_id)
            next_seq = await storage.next_seq(log_id)
            await storage.close()
            return records, next_seq

        records, next_seq = asyncio.run(read_back())  # no exception, torn tail or not
        assert [r.seq for r in records] == list(range(len(records)))  # contiguous
        assert len(records) >= total and next_seq == len(records)  # nothing durable was lost
        for record in records[total:]:
            _check_record(record)
        total = len(records)
    assert total > 0

    async def continue_and_read():
        storage = LocalStorage(root)
        with pytest.raises(AppendConflictError):
            await storage.append(log_id, [b"stale"], total - 1)
        assert await storage.append(log_id, [b"after the crashes"], total) == total + 1
        records = await storage.read_all(log_id)
        await storage.close()
        return records

    records = asyncio.run(continue_and_read())
    assert [r.seq for r in records] == list(range(total + 1))
    assert records[-1].data == b"after the crashes"
    assert scan(open(path, "rb").read()).torn is False  # any torn tail was cut off by the append
    print(f"{total} records over 4 kills; {torn_seen} kill(s) left a torn tail")


# --- lifecycle ------------------------------------------------------------------------------------

async def test_pickled_storage_opens_the_same_root_with_fresh_state(tmp_path):
    storage = open_storage(str(tmp_path))
    await storage.append("wf", [b"a"], 0)
    copy = pickle.loads(pickle.dumps(storage))
    assert isinstance(copy, LocalStorage) and copy.url == storage.url and copy.root == storage.root
    assert await copy.append("wf", [b"b"], 1) == 2
    with pytest.raises(AppendConflictError):
        await storage.append("wf", [b"stale"], 1)
    assert [r.data for r in await storage.read_all("wf")] == [b"a", b"b"]
    await copy.close()
    await storage.close()


async def test_many_concurrent_appends_to_different_logs(tmp_path):
    storage = LocalStorage(str(tmp_path))
    ids = [f"wf-{i}" for i in range(50)]

    async def writer(log_id):
        seq = 0
        for i in range(5):
            seq = await storage.append(log_id, [f"{log_id}:{i}".encode()], seq)

    await asyncio.gather(*(writer(i) for i in ids))
    assert await storage.list_logs() == sorted(ids)
    for log_id in ids:
        assert [r.data for r in await storage.read_all(log_id)] == [f"{log_id}:{i}".encode() for i in range(5)]
    await storage.close()


async def test_a_cancelled_append_is_either_whole_or_absent(tmp_path):
    storage = LocalStorage(str(tmp_path))
    big = b"x" * 2_000_000
    task = asyncio.ensure_future(storage.append("wf", [big], 0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # The append was handed to an I/O thread before the cancel, so it still happens, whole:
    # any read sees all of it or none of it.
    deadline = time.monotonic() + 60
    while True:
        records = await storage.read_all("wf")
        assert records in ([], [Record(0, big, 0)])
        if records or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.005)
    assert records == [Record(0, big, 0)]
    assert await storage.append("wf", [b"y"], 1) == 2
    await storage.close()


async def test_closed_storage_can_still_be_reopened_by_url(tmp_path):
    storage = open_storage(f"file://{tmp_path}")
    await storage.append("wf", [b"a"], 0)
    await storage.close()
    again = open_storage(str(tmp_path))
    assert [r.data for r in await again.read_all("wf")] == [b"a"]
    await again.close()


async def test_io_threads_take_work_after_a_shutdown():
    """At interpreter exit a storage's finalizer shuts its I/O threads down, and then the
    driver's atexit close runs one more call on them. The old threads must not disturb the
    new generation's counters: they did, no thread was started, and every driver's exit
    waited 5 s for a close that never ran (then printed "Task was destroyed ...")."""
    io = _IoThreads()
    before = set(threading.enumerate())
    assert await io.run(lambda: 1) == 1
    (old,) = set(threading.enumerate()) - before
    io.shutdown()
    old.join(timeout=5)
    assert not old.is_alive()
    assert await asyncio.wait_for(io.run(lambda: 2), timeout=5) == 2
    io.shutdown()


def test_a_driver_closes_its_local_storage_at_exit(tmp_path):
    """The atexit close of the driver's storages completes (no pending task is left behind)."""
    code = ("import sys; from engine.store._sync import run_sync, storage_for; "
            "run_sync(storage_for(sys.argv[1]).append('w', [b'x'], 0)); print('appended')")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and "appended" in done.stdout, done.stderr
    assert "Task was destroyed" not in done.stderr, done.stderr


@pytest.mark.parametrize("recreated", [False, True], ids=["deleted", "deleted-and-recreated"])
async def test_an_append_racing_a_delete_never_lands_in_the_deleted_log(tmp_path, monkeypatch, recreated):
    """A delete (and maybe a new log of the same id) between an append's open() and its flock(): the
    append must notice, never write into the renamed-away file and report success."""
    import fcntl

    import storage_backends._local as local
    from storage_backends._framing import encode_batch

    root = str(tmp_path / "store")
    storage, other = LocalStorage(root), LocalStorage(root)
    await storage.append("wf", [b"a"], 0)
    real_flock = fcntl.flock
    interleaved = []

    def flock_after_a_delete(fd, operation):
        if not interleaved and operation == fcntl.LOCK_EX:
            interleaved.append(True)
            assert other._delete_sync("wf")  # "another process" deletes the log right now ...
            if recreated:  # ... and starts a new one under the same id
                other._append_locked("wf", other._log_path("wf"), encode_batch(0, [b"x"]), 0, 1)
        return real_flock(fd, operation)

    monkeypatch.setattr(local.fcntl, "flock", flock_after_a_delete)
    if recreated:  # the new log's next seq happens to be 1 too: the append goes there, not to the old file
        assert await storage.append("wf", [b"b"], 1) == 2
        expected = [b"x", b"b"]
    else:
        with pytest.raises(AppendConflictError) as info:
            await storage.append("wf", [b"b"], 1)
        assert info.value.actual_next_seq == 0
        expected = []
    assert interleaved
    monkeypatch.undo()
    assert [r.data for r in await LocalStorage(root).read_all("wf")] == expected
    await storage.close()


def _open_log_fds(root: str) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(root) and target.endswith("events.log"):
            count += 1
    return count


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")
async def test_open_log_files_are_bounded_and_closed(tmp_path):
    import storage_backends._local as local

    root = str(tmp_path / "store")
    storage = LocalStorage(root)
    ids = [f"wf-{i:03d}" for i in range(local.MAX_OPEN_LOGS + 36)]
    for round_ in range(2):
        await asyncio.gather(*(storage.append(log_id, [f"{round_}".encode()], round_) for log_id in ids))
        assert 0 < _open_log_fds(root) <= local.MAX_OPEN_LOGS
    for log_id in ids:
        assert [r.data for r in await storage.read_all(log_id)] == [b"0", b"1"]
    await storage.close()
    assert _open_log_fds(root) == 0


async def test_two_storages_in_one_process_exclude_each_other(tmp_path):
    a, b = LocalStorage(str(tmp_path)), LocalStorage(str(tmp_path))
    for seq in range(20):
        results = await asyncio.gather(*(s.append("wf", [f"{i}:{seq}".encode()], seq)
                                         for i, s in enumerate([a, b, a, b])), return_exceptions=True)
        assert sorted(type(r).__name__ for r in results) == ["AppendConflictError"] * 3 + ["int"], results
    assert [r.seq for r in await a.read_all("wf")] == list(range(20))
    await a.close()
    await b.close()


_FORKER = r"""
import asyncio, json, os, sys
from storage_backends import AppendConflictError, LocalStorage
storage = LocalStorage(sys.argv[1])
asyncio.run(storage.append("wf", [b"p:0"], 0))  # the parent now holds an open fd for "wf"
TOTAL = 300

async def race(name):
    won = []
    while (seq := await storage.next_seq("wf")) < TOTAL:
        try:
            await storage.append("wf", [f"{name}:{seq}".encode()], seq)
            won.append(seq)
        except AppendConflictError:
            pass
    return won

pid = os.fork()  # parent and child now race for every seq, each through "its" fd
if pid == 0:
    try:
        with open(sys.argv[1] + "/child.json", "w") as f:
            json.dump(asyncio.run(race("c")), f)
        os._exit(0)
    except BaseException:
        os._exit(2)
mine = asyncio.run(race("p"))
_, status = os.waitpid(pid, 0)
assert os.WEXITSTATUS(status) == 0, status
theirs = json.load(open(sys.argv[1] + "/child.json"))
assert sorted(mine + theirs + [0]) == list(range(TOTAL)), "a seq was won twice or not at all"
records = asyncio.run(storage.read_all("wf"))
assert [r.seq for r in records] == list(range(TOTAL))
for seq in mine:
    assert records[seq].data == f"p:{seq}".encode()
for seq in theirs:
    assert records[seq].data == f"c:{seq}".encode()
print("ok", len(mine), len(theirs))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_appends_through_its_own_fds(tmp_path):
    # in a fresh process: forking this one (which may run Ray's threads) would not be safe
    proc = subprocess.run([sys.executable, "-c", _FORKER, str(tmp_path)], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.startswith("ok"), proc.stderr


# A delete killed between its rename and its removal, in a process of its own: ``shutil.rmtree``
# is where the kill lands, every time.
_CUT_SHORT_DELETE = """
import asyncio, os, shutil, signal, sys
from storage_backends import LocalStorage
shutil.rmtree = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(LocalStorage(sys.argv[1]).delete(sys.argv[2]))
"""


@pytest.mark.parametrize("log_id", ["wf", "system:forks-0123"])
async def test_a_delete_of_a_log_written_again_after_a_cut_short_delete_clears_both(tmp_path, log_id):
    """``kill -9`` of a delete after its rename, the same log written again (a rerun of a delete
    re-creates a forks log before it removes it), then deleted: nothing of either is left."""
    root = str(tmp_path / "store")
    storage = LocalStorage(root)
    await storage.append(log_id, [b"first"], 0)
    await storage.put_blob(log_id, "out", b"first blob")
    killed = subprocess.run([sys.executable, "-c", _CUT_SHORT_DELETE, root, log_id], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert not await storage.exists(log_id)
    assert [n for n in os.listdir(root) if n.startswith(".deleted-")]  # the kill left the tomb
    await storage.append(log_id, [b"second"], 0)
    await storage.put_blob(log_id, "out", b"second blob")
    assert await storage.delete(log_id) is True
    assert not [n for n in os.listdir(root) if n.startswith(".deleted-")]
    assert not await storage.exists(log_id)
    assert await storage.delete(log_id) is False  # nothing left to find


async def test_a_rerun_delete_clears_a_tomb_with_a_random_name(tmp_path):
    """Stores written before tomb names were fixed per log have tombs ending in a random uuid; a
    delete of the log, gone meanwhile, still removes them (and says it found something)."""
    root = tmp_path / "store"
    storage = LocalStorage(str(root))
    await storage.append("other", [b"x"], 0)
    os.makedirs(root / f".deleted-wf-{'ab' * 16}" / "blobs")
    (root / f".deleted-wf-{'ab' * 16}" / "blobs" / "out").write_bytes(b"left")
    assert await storage.delete("wf") is True
    assert await storage.delete("wf") is False
    assert not [n for n in os.listdir(root) if n.startswith(".deleted-")]
