"""Managing many workflows: statuses, list_all and its index, resume_all, cancel, delete, queueing."""

import logging
import time

import pytest
import ray

import engine as workflow
from engine.store import _index
from engine.api._init import context
from engine.store._sync import run_sync
from replay import TaskStarted, WorkflowStatus, read_events
from tests.engine import tasks


def _ids(pairs, prefix):
    return sorted(w for w, _ in pairs if w.startswith(prefix))


def test_management_doc_scenario(fresh_backend, tmp_path):
    """ray.workflow's management documentation, end to end, with 100 workflows."""
    refs = {}
    for i in range(100):
        wid = f"doc-{i:03d}"
        if i % 2:
            dag = tasks.fails_until.bind(str(tmp_path / f"marker-{i}"), i)
        else:
            dag = tasks.identity.bind(i)
        refs[wid] = workflow.run_async(dag, workflow_id=wid, metadata={"i": i})
    for wid, ref in refs.items():
        try:
            ray.get(ref)
        except Exception:
            pass
    failed = _ids(workflow.list_all("FAILED"), "doc-")
    ok = _ids(workflow.list_all(WorkflowStatus.SUCCESSFUL), "doc-")
    assert len(failed) == 50 and len(ok) == 50
    both = workflow.list_all({"FAILED", "SUCCESSFUL"})
    assert len(_ids(both, "doc-")) == 100
    assert all(isinstance(s, WorkflowStatus) for _, s in both)

    for i in range(1, 100, 2):
        (tmp_path / f"marker-{i}").touch()
    assert workflow.resume(failed[0]) == int(failed[0][4:])
    workflow.cancel(failed[1])
    assert workflow.get_status(failed[1]) == workflow.CANCELED
    assert workflow.resume_all() == []  # nothing RESUMABLE; FAILED ones need include_failed
    resumed = dict(workflow.resume_all(include_failed=True))
    assert sorted(resumed) == failed[2:]
    for wid, ref in resumed.items():
        assert ray.get(ref) == int(wid[4:])
    assert len(_ids(workflow.list_all("SUCCESSFUL"), "doc-")) == 99
    assert _ids(workflow.list_all("CANCELED"), "doc-") == [failed[1]]

    # The index is derived: rebuilt from the logs alone, it equals the live one.
    storage = context().storage
    live = run_sync(_index.load(storage))
    live_entries = run_sync(_index.load_entries(storage))
    stats = workflow.reindex()
    assert stats == {"workflows": 100, "final": 100, "failed": 0}
    assert run_sync(_index.load(storage)) == live
    assert run_sync(_index.load_entries(storage)) == live_entries  # the same seqs too, and no claims
    assert live[failed[1]] == WorkflowStatus.CANCELED and len(live) == 100


def test_stale_index_is_repaired_never_trusted(fresh_backend, wid):
    storage = context().storage
    assert workflow.run(tasks.add.bind(1, 2), workflow_id=wid) == 3
    assert run_sync(_index.load(storage))[wid] == WorkflowStatus.SUCCESSFUL
    # A crash between a log append and the index update leaves the index behind the log:
    run_sync(_index.append(storage, deleted=[wid]))
    assert wid not in run_sync(_index.load(storage))
    assert workflow.list_all() == [(wid, workflow.SUCCESSFUL)]  # folded from the log...
    assert run_sync(_index.load(storage))[wid] == WorkflowStatus.SUCCESSFUL  # ...and repaired


def test_cancel_running_workflow(backend, wid, tmp_path):
    gate = str(tmp_path / "never-opened")  # the task would block until its own bound (10 min)
    ref = workflow.run_async(tasks.gated.bind(1, gate), workflow_id=wid)
    assert workflow.get_status(wid) == workflow.RUNNING  # the manager holds it once run_async returned
    started = time.monotonic()
    workflow.cancel(wid)
    assert time.monotonic() - started < tasks.GATE_BOUND_S / 2  # it did not wait for the task
    assert workflow.get_status(wid) == workflow.CANCELED
    with pytest.raises(workflow.WorkflowCancellationError):
        ray.get(ref)
    with pytest.raises(workflow.WorkflowCancellationError):
        workflow.get_output(wid)
    with pytest.raises(workflow.WorkflowNotResumableError, match="canceled"):
        workflow.resume(wid)
    with pytest.raises(workflow.WorkflowNotResumableError, match="canceled"):
        workflow.run(tasks.gated.bind(1, gate), workflow_id=wid)


def test_cancel_finished_workflow_is_a_no_op(backend, wid, caplog):
    assert workflow.run(tasks.add.bind(1, 1), workflow_id=wid) == 2
    with caplog.at_level(logging.WARNING, logger="engine.management._operations"):
        workflow.cancel(wid)
    assert "already SUCCESSFUL" in caplog.text
    assert workflow.get_status(wid) == workflow.SUCCESSFUL
    assert workflow.get_output(wid) == 2


def test_cancel_a_failed_workflow(backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("x"), workflow_id=wid)
    workflow.cancel(wid)
    assert workflow.get_status(wid) == workflow.CANCELED


def test_delete(backend, wid, tmp_path):
    gate = str(tmp_path / "gate")
    ref = workflow.run_async(tasks.gated.bind(b"y" * 50_000, gate), workflow_id=wid)
    with pytest.raises(workflow.WorkflowStillActiveError, match="delete of workflow .* refused: it is RUNNING"):
        workflow.delete(wid)
    open(gate, "w").close()
    ray.get(ref)
    workflow.delete(wid)
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid)
    assert wid not in [w for w, _ in workflow.list_all()]
    storage = context().storage
    assert not run_sync(storage.exists(wid))
    with pytest.raises(workflow.WorkflowNotFoundError):
        workflow.delete(wid)
    # the id can be used again, from scratch
    assert workflow.run(tasks.add.bind(2, 2), workflow_id=wid) == 4


def test_reserved_ids_are_refused(backend):
    with pytest.raises(ValueError, match="reserved"):
        workflow.run(tasks.add.bind(1, 1), workflow_id="system:status_index")


def test_queueing_limits(ray_runtime, tmp_path, wid):
    workflow.init(f"file://{tmp_path}/queued", max_running_workflows=1, max_pending_workflows=2)
    gate = str(tmp_path / "gate")  # "-a" holds the one running slot until the test has looked
    first = workflow.run_async(tasks.gated.bind("a", gate), workflow_id=wid + "-a")
    second = workflow.run_async(tasks.identity.bind("b"), workflow_id=wid + "-b")
    third = workflow.run_async(tasks.identity.bind("c"), workflow_id=wid + "-c")
    assert workflow.get_status(wid + "-a") == workflow.RUNNING
    assert workflow.get_status(wid + "-b") == workflow.PENDING
    assert workflow.get_status(wid + "-c") == workflow.PENDING
    assert sorted(workflow.list_all("PENDING")) == [(wid + "-b", "PENDING"), (wid + "-c", "PENDING")]
    with pytest.raises(workflow.WorkflowQueueFullError, match="2 workflows are already pending"):
        workflow.run(tasks.identity.bind("d"), workflow_id=wid + "-d")
    with pytest.raises(ValueError, match="does not exist"):
        workflow.get_status(wid + "-d")  # refused submissions leave nothing behind
    open(gate, "w").close()
    assert ray.get([first, second, third]) == ["a", "b", "c"]
    starts = {k: workflow.get_metadata(wid + k)["stats"]["start_time"] for k in ("-a", "-b", "-c")}
    runs = {k: _run_started_at(wid + k) for k in ("-a", "-b", "-c")}
    assert runs["-a"] < runs["-b"] < runs["-c"], (starts, runs)
    with pytest.raises(ValueError, match="max_running_workflows"):
        workflow.init(f"file://{tmp_path}/queued", max_running_workflows=-2)
    # 2.47: a re-init may not change the running manager's limits; None keeps them
    with pytest.raises(ValueError, match="runs with max_running_workflows=1"):
        workflow.init(f"file://{tmp_path}/queued", max_running_workflows=-1)
    workflow.init(f"file://{tmp_path}/queued", max_running_workflows=1)
    workflow.init(f"file://{tmp_path}/queued")


def _run_started_at(workflow_id):
    async def first_start():
        async for _seq, event in read_events(context().storage, workflow_id):
            if isinstance(event, TaskStarted):
                return event.ts
    return run_sync(first_start())
