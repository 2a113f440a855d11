"""The status index trusts FAILED: proof that list_all uses it, and that it is never stale.

The rule under test: if the index says FAILED, the log ends FAILED. Every
writer that takes a log out of FAILED (resume, cancel) claims the next seq in
the index first. The storage-level tests need no Ray; the engine ones run real
workflows on Ray, on local disk and on S3 over HTTP (moto_server).
"""

import time

import msgspec
import pytest
import ray

import engine as workflow
from engine.store import _index
from engine.api._init import context
from engine.store._index import Entry
from engine.store._sync import run_sync
from replay import (
    PayloadRef,
    TaskFailed,
    TaskScheduled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowStatus,
    WorkflowSubmitted,
    append_events,
    load_state,
)
from storage_backends import open_storage
from tests.engine import tasks

FAILED, SUCCESSFUL, CANCELED = WorkflowStatus.FAILED, WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED


# --- storage level: no Ray -------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
async def storage(request, tmp_path):
    if request.param == "local":
        store = open_storage(str(tmp_path / "store"))
    else:
        store = open_storage(request.getfixturevalue("s3_url"), **request.getfixturevalue("s3_options"))
    yield store
    await store.close()


_DAG = PayloadRef(size=1, digest="00", inline=b"x")


async def write_failed_log(storage, workflow_id: str) -> int:
    """A log that ends FAILED, written straight through storage (no index entry); its last seq."""
    events = [
        WorkflowSubmitted(ts=1.0, workflow_id=workflow_id, dag=_DAG),
        WorkflowRunStarted(ts=2.0, run_id="r1"),
        TaskScheduled(ts=3.0, task_id="t", name="m.t"),
        TaskFailed(ts=4.0, task_id="t", error_type="ValueError", message="bad"),
        WorkflowFailed(ts=5.0, task_id="t", error_type="ValueError", message="bad"),
    ]
    return await append_events(storage, workflow_id, events, 0) - 1


async def test_a_stale_failed_loses_to_a_claim_whichever_lands_first(storage):
    # A FAILED seen at seq 4 (a slow list_all repair) against a resume's claim on seq 5.
    await _index.claim(storage, "a", 5)
    await _index.record(storage, "a", FAILED, 4)
    await _index.record(storage, "b", FAILED, 4)
    await _index.claim(storage, "b", 5)
    entries = await _index.load_entries(storage)
    assert entries["a"] == entries["b"] == Entry(5)
    assert await _index.load(storage) == {}
    # What the claimed event led to (at its seq or later) replaces the claim.
    await _index.record(storage, "a", CANCELED, 5)
    await _index.record(storage, "b", FAILED, 9)
    await _index.claim(storage, "a", 5)  # a claim that lost the race for seq 5: moot
    assert await _index.load(storage) == {"a": CANCELED, "b": FAILED}


async def test_failed_from_the_index_is_not_folded(storage):
    last = await write_failed_log(storage, "w")
    found = await _index.lookup(storage, ["w"])
    assert found.statuses == {"w": FAILED} and found.folded == {"w"}  # not indexed yet: folded...
    assert (await _index.load_entries(storage))["w"] == Entry(last, "FAILED")  # ...and written back
    found = await _index.lookup(storage, ["w"])
    assert found.statuses == {"w": FAILED} and found.folded == set()


async def test_a_claim_without_its_append_is_folded_and_kept(storage):
    """A crash between the claim and the log append: the log is folded, the claim stays."""
    last = await write_failed_log(storage, "w")
    await _index.record(storage, "w", FAILED, last)
    await _index.claim(storage, "w", last + 1)
    for _ in range(2):
        found = await _index.lookup(storage, ["w"])
        assert found.statuses == {"w": FAILED} and found.folded == {"w"}
        # its FAILED repair (seq `last`) must not beat the claim: the resume may still append
        assert (await _index.load_entries(storage))["w"] == Entry(last + 1)
    # The claimed event lands: the log says RUNNING, and so (folded) does the lookup.
    await append_events(storage, "w", [WorkflowRunStarted(ts=6.0, run_id="r2", resumed=True)], last + 1)
    assert (await _index.lookup(storage, ["w"])).statuses == {"w": WorkflowStatus.RUNNING}


async def test_format_1_index_is_trusted_only_for_final_statuses(storage):
    """Format-1 entries had no seqs and their writers resumed without claiming."""
    await write_failed_log(storage, "failed")
    last = await write_failed_log(storage, "resumed")  # FAILED once, resumed by an old engine:
    await append_events(storage, "resumed", [WorkflowRunStarted(ts=6.0, run_id="r2")], last + 1)
    old = msgspec.msgpack.encode({"final": {"resumed": "FAILED", "failed": "FAILED", "done": "SUCCESSFUL"}})
    await storage.append(_index.INDEX_LOG, [old], 0)
    await storage.put_blob(_index.INDEX_LOG, "snapshot", msgspec.msgpack.encode(
        {"upto_seq": 1, "final": {"resumed": "FAILED", "failed": "FAILED"}}))
    assert await _index.load(storage) == {"done": SUCCESSFUL}
    found = await _index.lookup(storage, ["resumed", "failed", "done"])
    assert found.statuses == {"resumed": WorkflowStatus.RUNNING, "failed": FAILED, "done": SUCCESSFUL}
    assert found.folded == {"resumed", "failed"}


async def test_rebuild_keeps_only_claims_ahead_of_their_log(storage):
    last = await write_failed_log(storage, "inflight")
    await _index.claim(storage, "inflight", last + 1)  # its resume has not appended yet
    done = await write_failed_log(storage, "passed")
    await _index.claim(storage, "passed", done)  # stale: the log already has that seq
    await _index.record(storage, "gone", SUCCESSFUL, 3)  # no log at all any more
    stats = await _index.rebuild(storage)
    assert stats == {"workflows": 2, "final": 0, "failed": 1}
    assert await _index.load_entries(storage) == {"inflight": Entry(last + 1), "passed": Entry(done, "FAILED")}


# --- engine: real workflows on Ray -----------------------------------------------------------


def _last_seq(workflow_id):
    return run_sync(load_state(context().storage, workflow_id)).last_seq


def _entry(workflow_id):
    return run_sync(_index.load_entries(context().storage)).get(workflow_id)


def _folded(workflow_id):
    return workflow_id in run_sync(_index.lookup(context().storage, [workflow_id])).folded


def _index_history(workflow_id):
    """Every entry the index log holds for the workflow, in the order they were appended."""
    async def read():
        return [_index._record_decoder.decode(r.data).entries.get(workflow_id)
                async for r in context().storage.read(_index.INDEX_LOG)]
    return [entry for entry in run_sync(read()) if entry is not None]


def test_failed_workflow_is_listed_from_the_index(fresh_backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("x"), workflow_id=wid)
    # The run recorded FAILED at the seq of its workflow.failed event, before run() raised.
    assert _entry(wid) == Entry(_last_seq(wid), "FAILED")
    assert not _folded(wid)
    assert workflow.list_all() == [(wid, workflow.FAILED)]
    # list_all believes the index over the log: append to the log behind the index's back,
    # as an engine that does not claim would, and list_all still says FAILED. (This is why
    # every writer that leaves FAILED must claim first.)
    run_sync(append_events(context().storage, wid, [WorkflowRunStarted(ts=time.time(), run_id="rogue")],
                           _last_seq(wid) + 1))
    assert workflow.get_status(wid) == workflow.RESUMABLE  # the log, folded
    assert workflow.list_all() == [(wid, workflow.FAILED)]  # the index, trusted


def test_resume_of_a_failed_workflow_claims_before_it_appends(fresh_backend, wid, tmp_path, kill_manager):
    marker = str(tmp_path / "marker")
    dag = tasks.gated.bind(tasks.fails_until.bind(marker, 7), str(tmp_path / "gate"))
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    failed_at = _last_seq(wid)
    open(marker, "w").close()
    ref = workflow.resume_async(wid)  # returns once the run_started event is durable
    assert dict(workflow.list_all())[wid] == workflow.RUNNING
    # The manager dies mid-run: the log says RUNNING. Had the resume not claimed first, the
    # index would still say FAILED, and list_all would believe it. (The new manager takes the
    # workflow on by itself: RUNNING again, with no new claim, since the log is not FAILED.)
    kill_manager(fresh_backend)
    assert workflow.list_all() in ([(wid, workflow.RESUMABLE)], [(wid, workflow.RUNNING)])
    assert _index_history(wid) == [Entry(failed_at, "FAILED"), Entry(failed_at + 1)]
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(ref)
    open(tmp_path / "gate", "w").close()
    assert workflow.get_output(wid) == 7
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
    assert _entry(wid) == Entry(_last_seq(wid), "SUCCESSFUL") and not _folded(wid)


def test_a_resume_that_crashed_between_claim_and_append(fresh_backend, wid, tmp_path):
    marker = str(tmp_path / "marker")
    dag = tasks.slow.bind(tasks.fails_until.bind(marker, 7), 3.0)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=wid)
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.resume(wid)  # failed again: a newer FAILED, at the new workflow.failed
    failed_at = _last_seq(wid)
    assert _entry(wid) == Entry(failed_at, "FAILED") and not _folded(wid)

    # The crash: the claim is in the index, the run_started never made it to the log.
    run_sync(_index.claim(context().storage, wid, failed_at + 1))
    assert _folded(wid)
    assert workflow.list_all() == [(wid, workflow.FAILED)]
    assert _entry(wid) == Entry(failed_at + 1)  # list_all's FAILED repair does not beat the claim

    # The real resume: RUNNING while it runs, never the old FAILED, then SUCCESSFUL.
    open(marker, "w").close()
    ref = workflow.resume_async(wid)
    seen = set()
    while not ray.wait([ref], timeout=0.2)[0]:
        seen.add(dict(workflow.list_all()).get(wid))
        assert _entry(wid).status in ("", "SUCCESSFUL")
    assert ray.get(ref) == 7
    assert workflow.RUNNING in seen and seen <= {workflow.RUNNING, workflow.SUCCESSFUL}, seen
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
    assert _entry(wid) == Entry(_last_seq(wid), "SUCCESSFUL") and not _folded(wid)


def test_resume_all_of_failed_workflows(fresh_backend, tmp_path):
    marker = str(tmp_path / "marker")
    ids = [f"ra-{i}" for i in range(6)]
    refs = [workflow.run_async(tasks.fails_until.bind(marker, i), workflow_id=w) for i, w in enumerate(ids)]
    for ref in refs:
        with pytest.raises(workflow.WorkflowExecutionError):
            ray.get(ref)
    assert workflow.list_all() == [(w, workflow.FAILED) for w in ids]
    open(marker, "w").close()
    resumed = dict(workflow.resume_all(include_failed=True))
    assert sorted(resumed) == ids
    assert all(dict(workflow.list_all())[w] != workflow.FAILED for w in ids)
    assert [ray.get(resumed[w]) for w in ids] == list(range(6))
    assert workflow.list_all() == [(w, workflow.SUCCESSFUL) for w in ids]
    assert run_sync(_index.lookup(context().storage, ids)).folded == set()


def test_cancel_of_a_failed_workflow_is_canceled_in_the_index(fresh_backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("x"), workflow_id=wid)
    failed_at = _last_seq(wid)
    workflow.cancel(wid)
    assert _last_seq(wid) == failed_at + 1
    assert _index_history(wid) == [Entry(failed_at, "FAILED"), Entry(failed_at + 1),
                                   Entry(failed_at + 1, "CANCELED")]
    assert not _folded(wid)
    assert workflow.list_all() == [(wid, workflow.CANCELED)]


def test_delete_of_a_failed_workflow_and_reuse_of_its_id(fresh_backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("x"), workflow_id=wid)
    workflow.delete(wid)
    assert _entry(wid) is None and workflow.list_all() == []
    assert workflow.run(tasks.add.bind(1, 2), workflow_id=wid) == 3
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]
