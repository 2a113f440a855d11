"""A store written by an earlier ray-durable still works after an upgrade.

``golden/store_v0_1`` was written by ray-durable 0.1 (see ``golden/make_store_v0_1.py``),
whose stored graphs name their classes by the module paths of that version
(``engine._graph``, ``engine._options``). A FAILED workflow from it must resume (unpickling
the old graph, reusing its checkpoints) and a finished one must answer from its log.

0.1 also kept the status index in the log ``_status_index``, an id workflows may use now
(ray.workflow accepted ids with a leading '_'). The first ``workflow.init`` on such a store
moves the index to ``system:status_index`` (claims and all) and deletes the old log, so
``list_all`` never shows it as a workflow, and the moved index is trusted as before. On S3
the old store is rebuilt from the golden one: 0.1's S3 layout put ``_status_index`` at
``<prefix>/logs/_status_index/``, which is where the storage API puts that id today.
"""

import asyncio
import shutil
from pathlib import Path

import msgspec
import pytest

import engine as workflow
from engine.api._init import context
from engine.store import _index
from engine.store._index import Entry
from engine.store._sync import run_sync
from replay import WorkflowSubmitted, append_events, load_state
from replay._events import PayloadRef
from storage_backends import open_storage

GOLDEN = Path(__file__).parent / "golden" / "store_v0_1"
GOLDEN_INDEX = {"upgrade-failed": Entry(11, "FAILED"), "upgrade-done": Entry(11, "SUCCESSFUL")}


async def _copy_store(source, target) -> None:
    for log_id in await source.list_logs():
        records = [r.data for r in await source.read_all(log_id)]
        await target.append(log_id, records, 0)


@pytest.fixture(params=["local", "s3"])
def old_store(request, tmp_path):
    """A store as ray-durable 0.1 left it: (url, storage options)."""
    if request.param == "local":
        store = tmp_path / "store"
        shutil.copytree(GOLDEN, store)
        return f"file://{store}", {}
    url, options = request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options")

    async def copy():
        source, target = open_storage(str(GOLDEN)), open_storage(url, **options)
        await _copy_store(source, target)
        await source.close()
        await target.close()

    asyncio.run(copy())
    return url, options


def test_a_workflow_stored_by_0_1_resumes_and_reads(ray_runtime, old_store):
    url, options = old_store
    assert run_sync(open_storage(url, **options).list_logs()) == ["_status_index", "upgrade-done",
                                                                  "upgrade-failed"]
    workflow.init(url, storage_options=options)
    storage = context().storage
    # The index moved: the old log is gone, its entries are in the new index, and used.
    assert run_sync(storage.list_logs()) == ["upgrade-done", "upgrade-failed"]
    assert run_sync(_index.load_entries(storage)) == GOLDEN_INDEX
    assert dict(workflow.list_all()) == {"upgrade-done": workflow.SUCCESSFUL,
                                         "upgrade-failed": workflow.FAILED}
    assert run_sync(_index.lookup(storage, ["upgrade-done", "upgrade-failed"])).folded == set()
    assert workflow.get_status("upgrade-done") == workflow.SUCCESSFUL
    assert workflow.get_output("upgrade-done") == 9
    assert workflow.get_status("upgrade-failed") == workflow.FAILED
    assert workflow.get_metadata("upgrade-failed", "first")["user_metadata"] == {"k": 1}
    # The resume loads the 0.1 graph; "first" and "add" are checkpointed and not run again.
    assert workflow.resume("upgrade-failed") == 9
    assert workflow.get_metadata("upgrade-failed", "first")["attempts"] == 1
    assert dict(workflow.list_all()) == {"upgrade-done": workflow.SUCCESSFUL,
                                         "upgrade-failed": workflow.SUCCESSFUL}
    # The old index's id is an ordinary workflow id now.
    from tests.engine import tasks
    assert workflow.run(tasks.add.bind(1, 2), workflow_id="_status_index") == 3
    assert dict(workflow.list_all())["_status_index"] == workflow.SUCCESSFUL


@pytest.fixture(params=["local", "s3"])
def storages(request, tmp_path):
    """Two storage objects on one place, as two processes would have."""
    if request.param == "local":
        return [open_storage(str(tmp_path / "store")) for _ in range(2)]
    url, options = request.getfixturevalue("s3_url"), request.getfixturevalue("s3_options")
    return [open_storage(url, **options) for _ in range(2)]


async def test_two_processes_moving_the_index_at_once(storages):
    first, second = storages
    await _copy_store(open_storage(str(GOLDEN)), first)
    # A 0.1 resume's claim in the old index, its append not made yet: it must move too.
    claim = msgspec.msgpack.encode(_index._Record(entries={"upgrade-failed": Entry(12)}))
    await first.append(_index.LEGACY_INDEX_LOG, [claim], 2)
    await asyncio.gather(_index.ensure_current(first), _index.ensure_current(second))
    records = await first.read_all(_index.INDEX_LOG)
    assert len(records) == 1  # exactly one of them moved it
    expected = {**GOLDEN_INDEX, "upgrade-failed": Entry(12)}
    assert await _index.load_entries(first) == await _index.load_entries(second) == expected
    assert await first.list_logs() == await second.list_logs() == ["upgrade-done", "upgrade-failed"]
    for storage in storages:
        await storage.close()


async def test_a_reader_that_finds_the_old_index_deleted_under_it_sees_it_moved(s3_url, s3_options):
    """The interleaving CI once hit: one process lists the old index's objects, another moves
    the index and deletes the old log, then the first one's GET finds its object gone. That
    is the move having happened, not an error (the first one read it from the new index)."""
    slow, fast = open_storage(s3_url, **s3_options), open_storage(s3_url, **s3_options)
    await _copy_store(open_storage(str(GOLDEN)), fast)
    list_batches = slow._list_batches
    raced = []

    async def list_then_let_the_other_move_it(s3, log_id, from_seq=0):
        listing = await list_batches(s3, log_id, from_seq)
        if log_id == _index.LEGACY_INDEX_LOG and not raced:
            raced.append(log_id)
            await _index.ensure_current(fast)  # moves it and deletes the old log
        return listing

    slow._list_batches = list_then_let_the_other_move_it  # a real S3 storage, one interleaving forced
    await _index.ensure_current(slow)
    assert raced, "the slow process never listed the old index: the race was not exercised"
    assert await _index.load_entries(slow) == await _index.load_entries(fast) == GOLDEN_INDEX
    assert await slow.list_logs() == ["upgrade-done", "upgrade-failed"]
    for storage in (slow, fast):
        await storage.close()


async def test_a_workflow_named_status_index_is_not_taken_for_an_old_index(storages):
    storage = storages[0]
    submitted = WorkflowSubmitted(ts=1.0, workflow_id="_status_index", dag=PayloadRef(size=1, digest="00", inline=b"x"))
    await append_events(storage, "_status_index", [submitted], 0)
    await _index.ensure_current(storage)
    await _index.record(storage, "other", workflow.SUCCESSFUL, 3)
    assert await _index.list_workflow_ids(storage) == ["_status_index"]
    assert (await load_state(storage, "_status_index")).workflow_id == "_status_index"
    assert await _index.load_entries(storage) == {"other": Entry(3, "SUCCESSFUL")}
    for storage in storages:
        await storage.close()
