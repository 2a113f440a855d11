"""Retention and gc (engine/store/_retention.py): workflow.gc, ray-durable gc, init(retention=...),
run(..., keep="output"), on local disk and on S3 (moto over HTTP), with real Ray workflows.

What must hold: every status is handled (SUCCESSFUL, CANCELED, FAILED go; RUNNING, PENDING and
RESUMABLE are never touched), everything deleted is reported, a dry run deletes nothing, and the
status index equals one rebuilt from the logs afterwards. The crash tests are in test_gc_crash.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine.store import _index
from engine.store._offline import OUTPUTS_DROPPED
from engine.store._sync import run_sync
from replay import PayloadRef, WorkflowRunStarted, WorkflowSubmitted, append_events, mailbox_log_id
from tests.engine import tasks

BIG = 20_000  # bytes: past the 16 KiB inline limit, so each output is a blob


@ray.remote
def big(tag):
    return tag.encode() * (BIG // len(tag))


@ray.remote
def size_of(a, b):
    return len(a) + len(b)


def wait_for(condition, what, bound=120.0):
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.1)


def storage():
    return context().storage


def index_matches_rebuilt():
    """The live status index, entries and seqs, equals one rebuilt from the logs alone."""
    live = run_sync(_index.load_entries(storage()))
    workflow.reindex()
    rebuilt = run_sync(_index.load_entries(storage()))
    assert rebuilt == live
    assert run_sync(_index.deletion_marks(storage())) == {}


def blobs(workflow_id):
    return run_sync(storage().list_blobs(workflow_id))


def write_resumable(workflow_id):
    """A log that says RUNNING under an owner with no lease: RESUMABLE (its cluster died)."""
    dag = PayloadRef(size=1, digest="00", inline=b"x")
    run_sync(append_events(storage(), workflow_id, [
        WorkflowSubmitted(ts=time.time() - 3600, workflow_id=workflow_id, dag=dag),
        WorkflowRunStarted(ts=time.time() - 3600, run_id="r", owner="m-gone", cluster="gone:1")], 0))


def write_pending(workflow_id):
    """A log with only its submission: PENDING in the log; nobody holds it, so RESUMABLE."""
    dag = PayloadRef(size=1, digest="00", inline=b"x")
    run_sync(append_events(storage(), workflow_id, [
        WorkflowSubmitted(ts=time.time() - 3600, workflow_id=workflow_id, dag=dag)], 0))


@pytest.fixture
def mixed(fresh_backend, tmp_path):
    """One workflow of every status, on a storage of its own."""
    ids = {s: f"{s.lower()}-{uuid.uuid4().hex[:6]}" for s in
           ("SUCCESSFUL", "FAILED", "CANCELED", "RUNNING", "RESUMABLE", "PENDING")}
    assert workflow.run(size_of.bind(big.bind("a"), big.bind("b")), workflow_id=ids["SUCCESSFUL"]) == 2 * BIG
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("no"), workflow_id=ids["FAILED"])
    gate = str(tmp_path / "gate")
    canceled = workflow.run_async(tasks.gated.bind(1, str(tmp_path / "never")), workflow_id=ids["CANCELED"])
    workflow.cancel(ids["CANCELED"])
    with pytest.raises(workflow.WorkflowCancellationError):
        ray.get(canceled)
    running = workflow.run_async(tasks.gated.bind(7, gate), workflow_id=ids["RUNNING"])
    write_resumable(ids["RESUMABLE"])
    write_pending(ids["PENDING"])
    # run_async returns once the submission is durable; the manager's claim follows
    wait_for(lambda: workflow.get_status(ids["RUNNING"]) == workflow.RUNNING, "the gated workflow to run")
    statuses = dict(workflow.list_all())
    assert {statuses[i] for i in ids.values()} == {
        workflow.SUCCESSFUL, workflow.FAILED, workflow.CANCELED, workflow.RUNNING, workflow.RESUMABLE}
    assert statuses[ids["PENDING"]] == workflow.RESUMABLE
    yield ids
    open(gate, "w").close()
    assert ray.get(running) == 7


def test_gc_deletes_every_ended_status_and_touches_nothing_open(mixed):
    ids = mixed
    assert blobs(ids["SUCCESSFUL"])  # the outputs are blobs
    report = workflow.gc()
    ended = sorted(ids[s] for s in ("SUCCESSFUL", "FAILED", "CANCELED"))
    assert report.deleted == ended and not report.dry_run
    assert {i.workflow_id: i.status for i in report.items} == {ids[s]: s for s in ("SUCCESSFUL", "FAILED", "CANCELED")}
    assert all(i.action == "deleted" and i.end_time is not None for i in report.items)
    reported = next(i for i in report.items if i.workflow_id == ids["SUCCESSFUL"])
    assert len(reported.blobs) == 2 and reported.bytes > 2 * BIG  # the two outputs (the rest is inline)
    left = dict(workflow.list_all())
    assert sorted(left) == sorted(ids[s] for s in ("RUNNING", "RESUMABLE", "PENDING"))
    for workflow_id in ended:
        assert blobs(workflow_id) == {}
        assert not run_sync(storage().exists(workflow_id))
        assert not run_sync(storage().exists(mailbox_log_id(workflow_id)))
        with pytest.raises(workflow.WorkflowNotFoundError):
            workflow.get_status(workflow_id)
    assert workflow.gc().items == []  # nothing more to do
    index_matches_rebuilt()


def test_gc_by_status(mixed):
    ids = mixed
    report = workflow.gc(statuses="FAILED")
    assert report.deleted == [ids["FAILED"]]
    report = workflow.gc(statuses={workflow.CANCELED, "successful"})
    assert report.deleted == sorted([ids["CANCELED"], ids["SUCCESSFUL"]])
    index_matches_rebuilt()


def test_dry_run_deletes_nothing(mixed):
    ids = mixed
    before = dict(workflow.list_all())
    stored = {w: blobs(w) for w in ids.values()}
    report = workflow.gc(dry_run=True)
    assert report.dry_run and report.deleted == sorted(ids[s] for s in ("SUCCESSFUL", "FAILED", "CANCELED"))
    assert dict(workflow.list_all()) == before
    assert {w: blobs(w) for w in ids.values()} == stored
    assert workflow.get_output(ids["SUCCESSFUL"]) == 2 * BIG
    kept = workflow.gc(keep_output=True, dry_run=True)
    assert kept.trimmed == [ids["SUCCESSFUL"]] and blobs(ids["SUCCESSFUL"]) == stored[ids["SUCCESSFUL"]]
    index_matches_rebuilt()


def test_older_than(fresh_backend):
    old = f"old-{uuid.uuid4().hex[:6]}"
    assert workflow.run(tasks.add.bind(1, 2), workflow_id=old) == 3
    ended = workflow.get_metadata(old)["stats"]["end_time"]
    wait_for(lambda: time.time() - ended > 3, "the first workflow to be 3s old")
    new = f"new-{uuid.uuid4().hex[:6]}"
    assert workflow.run(tasks.add.bind(3, 4), workflow_id=new) == 7
    assert workflow.gc(older_than="1d").items == []
    assert workflow.gc(older_than=3600).items == []
    new_ended = workflow.get_metadata(new)["stats"]["end_time"]
    now = time.time()  # between the two ages, whatever this machine's pace (at least 1.5 s from each)
    report = workflow.gc(older_than=((now - ended) + (now - new_ended)) / 2)
    assert report.deleted == [old]
    assert [w for w, _ in workflow.list_all()] == [new]
    index_matches_rebuilt()


def test_keep_output(mixed):
    ids = mixed
    ok = ids["SUCCESSFUL"]
    result_blob = workflow.get_metadata(ok)  # (the result is kept; read it the ordinary way below)
    assert result_blob["status"] == "SUCCESSFUL"
    report = workflow.gc(keep_output=True)
    assert report.trimmed == [ok]
    assert report.deleted == sorted([ids["FAILED"], ids["CANCELED"]])  # no result to keep: deleted whole
    assert workflow.get_status(ok) == workflow.SUCCESSFUL
    assert workflow.get_output(ok) == 2 * BIG
    assert workflow.run(size_of.bind(big.bind("a"), big.bind("b")), workflow_id=ok) == 2 * BIG  # finished: no run
    left = blobs(ok)
    assert OUTPUTS_DROPPED in left and len(left) == 1  # (the result, an int, is inline in the log)
    with pytest.raises(ValueError, match="was dropped"):
        workflow.get_output(ok, task_id="tests.engine.test_gc.big")
    assert workflow.get_metadata(ok, task_id="tests.engine.test_gc.big")["task_id"] == "tests.engine.test_gc.big"
    assert workflow.gc(keep_output=True).items == []  # trimmed already: nothing to report
    index_matches_rebuilt()


def test_run_keep_output(fresh_backend):
    a, b = f"keep-{uuid.uuid4().hex[:6]}", f"keep-async-{uuid.uuid4().hex[:6]}"
    assert workflow.run(big.bind("r" * 10), workflow_id=a, keep="output") == b"r" * BIG
    assert set(blobs(a)) == {_result_blob(a)}  # one task: its output is the result, nothing to drop
    assert workflow.get_output(a) == b"r" * BIG
    ref = workflow.run_async(size_of.bind(big.bind("x"), big.bind("y")), workflow_id=b, keep="output")
    assert ray.get(ref) == 2 * BIG
    assert set(blobs(b)) == {OUTPUTS_DROPPED}
    with pytest.raises(ValueError, match="was dropped"):
        workflow.get_output(b, task_id="tests.engine.test_gc.big")
    plain = f"plain-{uuid.uuid4().hex[:6]}"
    assert workflow.run(size_of.bind(big.bind("x"), big.bind("y")), workflow_id=plain) == 2 * BIG
    assert len(blobs(plain)) == 2 and OUTPUTS_DROPPED not in blobs(plain)


def _result_blob(workflow_id):
    from replay import load_state

    return run_sync(load_state(storage(), workflow_id)).output.blob


def test_run_keep_refuses_anything_else_and_writes_nothing(fresh_backend):
    for bad in ("outputs", "all", True, 1):
        workflow_id = f"bad-keep-{uuid.uuid4().hex[:6]}"
        with pytest.raises(ValueError, match="keep must be None .* or 'output'"):
            workflow.run(tasks.add.bind(1, 2), workflow_id=workflow_id, keep=bad)
        assert not run_sync(storage().exists(workflow_id))


def test_gc_refuses_open_statuses_and_bad_ages(fresh_backend):
    for statuses in ("RUNNING", ["PENDING"], "RESUMABLE", "NOPE", []):
        with pytest.raises(ValueError):
            workflow.gc(statuses=statuses)
    for age, error in (("30x", ValueError), (-1, ValueError), (float("nan"), ValueError), ([1], TypeError)):
        with pytest.raises(error, match="older_than"):
            workflow.gc(older_than=age)


def test_retention_applied_by_the_running_manager(own_storage, tmp_path):
    url, options = own_storage
    workflow.init(url, storage_options=options,
                  retention=workflow.Retention(older_than=1, statuses={"SUCCESSFUL", "FAILED"}, every=0.3))
    ok, failed = f"ok-{uuid.uuid4().hex[:6]}", f"failed-{uuid.uuid4().hex[:6]}"
    gate = str(tmp_path / "gate")
    running_id = f"running-{uuid.uuid4().hex[:6]}"
    running = workflow.run_async(tasks.gated.bind(5, gate), workflow_id=running_id)
    wait_for(lambda: workflow.get_status(running_id) == workflow.RUNNING, "the gated workflow to run")
    canceled = f"canceled-{uuid.uuid4().hex[:6]}"
    ref = workflow.run_async(tasks.gated.bind(1, str(tmp_path / "never")), workflow_id=canceled)
    workflow.cancel(canceled)
    with pytest.raises(workflow.WorkflowCancellationError):
        ray.get(ref)
    assert workflow.run(size_of.bind(big.bind("a"), big.bind("b")), workflow_id=ok) == 2 * BIG
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(tasks.boom.bind("no"), workflow_id=failed)
    wait_for(lambda: ok not in dict(workflow.list_all()) and failed not in dict(workflow.list_all()),
             "the manager's retention to delete the ended workflows")
    left = dict(workflow.list_all())
    assert left[canceled] == workflow.CANCELED  # not one of its statuses
    assert left[running_id] == workflow.RUNNING
    def deleted() -> set[str]:  # (a pass hides what it deletes first, and reports once it is done)
        return {w for r in ray.get(context().manager.retention_reports.remote()) for w in r["deleted"]}

    wait_for(lambda: deleted() == {ok, failed}, "the retention pass to report its deletes")
    assert blobs(ok) == {}
    open(gate, "w").close()
    assert ray.get(running) == 5
    index_matches_rebuilt()


def test_retention_shapes_are_checked_at_init(own_storage):
    url, options = own_storage
    for bad, error in (("30x", ValueError), ({"older_than": "1d", "colour": 1}, ValueError), ({}, ValueError),
                       ([1], TypeError), ({"older_than": 1, "statuses": "RUNNING"}, ValueError),
                       ({"older_than": 1, "every": 0}, ValueError), ({"older_than": 1, "keep_output": "y"}, TypeError)):
        with pytest.raises(error):
            workflow.init(url, storage_options=options, retention=bad)
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="snapshot_every"):
            workflow.init(url, storage_options=options, snapshot_every=bad)
    assert workflow.Retention("12h").older_than == 43_200
    import datetime

    assert workflow.Retention(datetime.timedelta(days=2), every="5m").every == 300


def test_cli_gc(mixed, fresh_backend):
    ids = mixed
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    base = [sys.executable, "-m", "engine", "gc", "--storage", fresh_backend["url"]]
    if fresh_backend["options"]:
        base += ["--endpoint-url", fresh_backend["options"]["endpoint_url"]]

    def cli(*args):
        return subprocess.run(base + list(args), capture_output=True, text=True, env=env, timeout=120)

    dry = cli("--dry-run", "--status", "FAILED,CANCELED")
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and ids["FAILED"] in dry.stdout and ids["SUCCESSFUL"] not in dry.stdout
    assert "dry run: nothing was deleted" in dry.stdout
    assert dict(workflow.list_all())[ids["FAILED"]] == workflow.FAILED
    bad = cli("--status", "RUNNING")
    assert bad.returncode == 2 and "never touches RUNNING" in bad.stderr
    bad = cli("--older-than", "soon")
    assert bad.returncode == 2 and "not a duration" in bad.stderr
    kept = cli("--keep-output", "--json")
    assert kept.returncode == 0, kept.stderr
    doc = json.loads(kept.stdout)
    assert doc["trimmed"] == [ids["SUCCESSFUL"]]
    assert doc["deleted"] == sorted([ids["FAILED"], ids["CANCELED"]])
    assert all(item["blobs"] is not None for item in doc["items"])
    done = cli()
    assert done.returncode == 0 and ids["SUCCESSFUL"] in done.stdout and "deleted 1 workflow(s)" in done.stdout
    assert sorted(dict(workflow.list_all())) == sorted(ids[s] for s in ("RUNNING", "RESUMABLE", "PENDING"))
    index_matches_rebuilt()
