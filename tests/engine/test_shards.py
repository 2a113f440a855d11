"""Manager shards (issue 14): ``workflow.init(shards=N)`` runs N manager actors per storage; a
workflow belongs to one by its id, and listing, status, cancel, output and self-healing find it
there. Real Ray, real storage (local and S3 on moto), real kills."""

from __future__ import annotations

import os
import signal
import time
import uuid

import pytest
import ray

import engine as workflow
from engine._names import shard_of
from engine.api._init import context
from engine.store._sync import run_sync
from replay import load_state
from tests.engine import tasks
from tests.engine.conftest import own_storage_of

SHARDS = 3


def _wait_for(condition, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _claimed(wid: str) -> bool:
    """The workflow's log says RUNNING: its shard's claim is durable (run_async does not wait
    for it; a manager killed before it leaves the workflow RESUMABLE, see the README)."""
    return run_sync(load_state(context().storage, wid)).status is workflow.WorkflowStatus.RUNNING


def _id_in_shard(shard: int, prefix: str) -> str:
    """A fresh workflow id that shard ``shard`` drives."""
    while True:
        wid = f"{prefix}-{uuid.uuid4().hex[:8]}"
        if shard_of(wid, SHARDS) == shard:
            return wid


@pytest.fixture(params=["local", "s3"])
def sharded(request, ray_runtime, tmp_path, moto_server):
    """A storage of its own, driven by SHARDS managers."""
    url, options = own_storage_of(request, tmp_path, moto_server, "shards")
    workflow.init(url, storage_options=options, shards=SHARDS)
    yield {"url": url, "options": options}
    for manager in context().managers:  # this storage's managers end with the test
        ray.kill(manager, no_restart=True)


def test_each_workflow_is_driven_by_its_shard_and_every_call_finds_it(sharded):
    ctx = context()
    owners = [ray.get(m.describe.remote()) for m in ctx.managers]
    assert [o["shard"] for o in owners] == list(range(SHARDS))
    assert len({o["owner"] for o in owners}) == SHARDS  # a lease of its own each

    ids = [f"spread-{i}-{uuid.uuid4().hex[:6]}" for i in range(24)]
    refs = [workflow.run_async(tasks.add.bind(i, 1), workflow_id=wid) for i, wid in enumerate(ids)]
    assert ray.get(refs) == [i + 1 for i in range(24)]
    for wid in ids:  # the run_started event names the owner of the workflow's shard
        state = run_sync(load_state(ctx.storage, wid))
        assert state.owner == owners[shard_of(wid, SHARDS)]["owner"], wid
    assert {shard_of(wid, SHARDS) for wid in ids} == set(range(SHARDS))

    listed = dict(workflow.list_all())
    assert all(listed[wid] == workflow.WorkflowStatus.SUCCESSFUL for wid in ids)

    # a running workflow in a shard other than 0: status, listing and cancel reach it
    gate = f"/tmp/shard-gate-{uuid.uuid4().hex}"
    running = _id_in_shard(2, "held")
    ref = workflow.run_async(tasks.gated.bind(1, gate), workflow_id=running)
    _wait_for(lambda: workflow.get_status(running) == workflow.WorkflowStatus.RUNNING, "RUNNING")
    assert dict(workflow.list_all(workflow.WorkflowStatus.RUNNING)) == {running: workflow.WorkflowStatus.RUNNING}
    workflow.cancel(running)
    assert workflow.get_status(running) == workflow.WorkflowStatus.CANCELED
    with pytest.raises(workflow.WorkflowCancellationError):
        ray.get(ref)


def test_a_second_init_learns_the_shards_and_may_not_change_them(sharded):
    workflow.init(sharded["url"], storage_options=sharded["options"])  # None: the cluster's
    assert len(context().managers) == SHARDS
    with pytest.raises(ValueError, match=r"shards=2.*run with shards=3"):
        workflow.init(sharded["url"], storage_options=sharded["options"], shards=2)
    assert len(context().managers) == SHARDS  # nothing changed


@pytest.mark.parametrize("bad", [0, 65, -1, "2", 1.5, True])
def test_bad_shards_are_refused_before_anything_starts(ray_runtime, tmp_path, bad):
    with pytest.raises(ValueError, match=r"shards must be an int from 1 to 64"):
        workflow.init(f"file://{tmp_path}/never", shards=bad)
    assert not os.path.exists(tmp_path / "never")


def test_a_shard_killed_mid_run_heals_and_the_driver_gets_the_output(sharded, tmp_path):
    """kill -9 of one shard's process: Ray restarts it with the same lease owner, it takes on its
    workflow again, and the waiting driver gets the output; the other shards never notice."""
    gate = str(tmp_path / "gate")
    victim_shard = 1
    wid = _id_in_shard(victim_shard, "healed")
    other = _id_in_shard(0, "untouched")
    ref = workflow.run_async(tasks.gated.bind("healed", gate), workflow_id=wid)
    other_ref = workflow.run_async(tasks.gated.bind("untouched", gate), workflow_id=other)
    _wait_for(lambda: _claimed(wid), "the claim")
    victim = context().managers[victim_shard]
    os.kill(ray.get(victim.describe.remote())["pid"], signal.SIGKILL)
    open(gate, "w").close()
    assert ray.get(ref, timeout=300) == "healed"
    assert ray.get(other_ref, timeout=300) == "untouched"
    assert workflow.get_status(wid) == workflow.WorkflowStatus.SUCCESSFUL


def test_a_shard_gone_for_good_is_replaced_and_takes_its_workflows_on(sharded, tmp_path):
    """``ray.kill(no_restart=True)`` of one shard: the driver's next call for a workflow of that
    shard makes a new manager in its seat, which takes the orphaned workflow on."""
    gate = str(tmp_path / "gate")
    wid = _id_in_shard(2, "replaced")
    workflow.run_async(tasks.gated.bind("replaced", gate), workflow_id=wid)
    _wait_for(lambda: _claimed(wid), "the claim")
    ray.kill(context().managers[2], no_restart=True)
    open(gate, "w").close()
    assert workflow.get_output(wid) == "replaced"
    assert ray.get(context().managers[2].describe.remote())["shard"] == 2
