"""Leases: one cluster drives a workflow, and another takes over only once the lease is gone.

The rules are tested as pure functions; then with real clusters: a second cluster (its own
local Ray, in a subprocess) drives a workflow while this test's cluster watches, is refused,
freezes (SIGSTOP of every one of its processes, so it can neither renew nor answer), and this
cluster takes the workflow over when the lease expires; thawed, the first cluster finds its
lease lapsed and stops driving instead of running on beside the new owner.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import psutil
import pytest

import engine as workflow
from engine.api._init import context
from engine.runtime._recovery import HANDOVER_GRACE_S, Identity, held_elsewhere, orphaned, orphaned_at
from engine.store._leases import Lease, cluster_gone, in_force, read_lease
from engine.store._status import status_of
from engine.store._sync import run_sync
from replay import PayloadRef, WorkflowState, WorkflowStatus, WorkflowSubmitted, load_state

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUNNING, RESUMABLE = WorkflowStatus.RUNNING, WorkflowStatus.RESUMABLE
REMOTE = "203.0.113.7:6379"  # TEST-NET-3: never an address of this machine


def _lease(owner="m-a", cluster=REMOTE, seat="s-a", expires_in=10.0, app="default"):
    now = time.time()
    return Lease(owner, cluster, app, now, now + expires_in, 10.0, seat)


def _running(owner="m-a", app="default"):
    return WorkflowState(workflow_id="w", status=RUNNING, owner=owner, owner_application=app)


ME = Identity("m-me", "127.0.0.1:1", "s-me", "default")


def test_the_status_rule():
    live, expired = _lease(), _lease(expires_in=-1)
    assert status_of(RUNNING, None, live) is RUNNING  # another cluster drives it
    assert status_of(RUNNING, None, expired) is RESUMABLE
    assert status_of(RUNNING, None, None) is RESUMABLE
    assert status_of(RUNNING, "RUNNING", None) is RUNNING  # this cluster's manager drives it
    assert status_of(WorkflowStatus.PENDING, None, None) is RESUMABLE
    assert status_of(WorkflowStatus.SUCCESSFUL, None, live) is WorkflowStatus.SUCCESSFUL
    assert status_of(WorkflowStatus.FAILED, None, live) is WorkflowStatus.FAILED
    # the manager of the lease's own seat said it does not drive it: the lease is no evidence
    assert status_of(RUNNING, None, live, asked_seat="s-a") is RESUMABLE


def test_who_may_claim():
    assert held_elsewhere(_running(), _lease(), ME)
    assert not held_elsewhere(_running(), _lease(expires_in=-1), ME)
    assert not held_elsewhere(_running(owner="m-me"), _lease(owner="m-me"), ME)  # mine (restarted)
    assert not held_elsewhere(_running(), _lease(seat="s-me"), ME)  # my seat's dead predecessor
    assert orphaned(_running(owner="m-me"), None, ME, adopt_expired=False)
    assert orphaned(_running(), _lease(seat="s-me"), ME, adopt_expired=False)
    assert not orphaned(_running(), _lease(expires_in=-1), ME, adopt_expired=False)
    assert orphaned(_running(), _lease(expires_in=-1), ME, adopt_expired=True)
    assert not orphaned(_running(app="other"), _lease(expires_in=-1), ME, adopt_expired=True)
    assert not orphaned(_running(), _lease(), ME, adopt_expired=True)  # still held


def _pending(owner="m-a", seat="s-a", app="default", ts=0.0):
    """A log with its submission only: handed to ``owner`` (in ``seat``), never claimed."""
    submission = WorkflowSubmitted(ts=ts, workflow_id="w", dag=PayloadRef(size=0, digest=""),
                                   owner=owner, seat=seat, application=app)
    return WorkflowState(workflow_id="w", status=WorkflowStatus.PENDING, submission=submission)


def test_who_takes_on_a_submission_never_claimed():
    """The manager it was handed to (restarted), its seat's next occupant, or once its lease
    expired a manager of its application; nobody while the lease holds, and nobody for a
    submission that names no manager (written before submissions named one)."""
    assert orphaned(_pending(owner="m-me"), None, ME, adopt_expired=False)
    assert orphaned(_pending(seat="s-me"), None, ME, adopt_expired=False)  # no lease written yet
    assert orphaned(_pending(), _lease(seat="s-me"), ME, adopt_expired=False)
    assert not orphaned(_pending(), _lease(), ME, adopt_expired=True)  # its manager is alive
    assert not orphaned(_pending(), _lease(expires_in=-1), ME, adopt_expired=False)
    assert orphaned(_pending(), _lease(expires_in=-1), ME, adopt_expired=True)
    # its manager never wrote a lease: taken on only if its cluster is certainly gone (a cluster
    # of this machine whose address answers no more), since an idle manager writes none
    assert not orphaned(_pending(seat=f"{REMOTE}/m"), None, ME, adopt_expired=True)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{unused.getsockname()[1]}"
    assert orphaned(_pending(seat=f"{closed}/m"), None, ME, adopt_expired=True)
    assert not orphaned(_pending(app="other"), _lease(expires_in=-1), ME, adopt_expired=True)
    assert not orphaned(_pending(owner="", seat="", app=""), None, ME, adopt_expired=True)
    unsubmitted = WorkflowState(workflow_id="w", status=WorkflowStatus.PENDING)
    assert not orphaned(unsubmitted, None, ME, adopt_expired=True)
    # handed to this manager (or seat) just now: its hand-over may still come, so not yet
    now = time.time()
    young = _pending(owner="m-me", ts=now - 1)
    assert not orphaned(young, None, ME, adopt_expired=True, now=now)
    assert orphaned_at(young, None, ME, adopt_expired=True, now=now) == now - 1 + HANDOVER_GRACE_S
    assert orphaned(young, None, ME, adopt_expired=True, now=now - 1 + HANDOVER_GRACE_S)
    # handed to this seat's previous manager, which is gone with any hand-over sent to it
    assert orphaned(_pending(seat="s-me", ts=now), None, ME, adopt_expired=False, now=now)
    # a seat is an address and a name: a cluster of another application started on the same
    # port sits in it too, and must not run this application's workflows
    assert not orphaned(_pending(seat="s-me", app="other"), None, ME, adopt_expired=True)
    assert not orphaned(_running(app="other"), _lease(seat="s-me", app="other"), ME, adopt_expired=True)
    # another cluster's, gone: no hand-over can reach it any more, so no waiting
    assert orphaned(_pending(ts=now), _lease(expires_in=-1), ME, adopt_expired=True, now=now)


def test_a_cluster_on_this_machine_that_answers_no_more_is_gone():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        assert not cluster_gone(_lease(cluster=f"127.0.0.1:{port}"))  # answers: alive
    assert cluster_gone(_lease(cluster=f"127.0.0.1:{port}"))  # closed now
    assert in_force(_lease(cluster=f"127.0.0.1:{port}")) is None
    started = time.monotonic()
    assert not cluster_gone(_lease(cluster=REMOTE))  # another machine is never judged from here
    assert time.monotonic() - started < 5
    assert in_force(_lease(cluster=REMOTE)) is not None


def _descendants(pid):
    proc = psutil.Process(pid)
    return [proc] + proc.children(recursive=True)


def _signal_all(procs, sig):
    for proc in procs:
        try:
            proc.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


def _wait_for(condition, what, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.slow
def test_another_cluster_is_refused_then_takes_over_once_the_lease_expires(ray_runtime, tmp_path):
    storage, counter, wid = f"file://{tmp_path}/store", str(tmp_path / "counter"), "leased"
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    other = subprocess.Popen([sys.executable, "-m", "tests.engine.lease_driver", storage, wid, counter, "12"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True)
    frozen = []
    try:
        _wait_for(lambda: os.path.exists(counter) and len(open(counter).read().split()) >= 2,
                  "the other cluster to run two steps")
        workflow.init(storage)
        assert workflow.get_status(wid) == workflow.RUNNING  # from here, by the other's lease
        owner = run_sync(load_state(context().storage, wid)).owner
        with pytest.raises(workflow.WorkflowRunningError, match=f"another cluster drives it: owner {owner}"):
            workflow.resume(wid)
        assert dict(workflow.list_all())[wid] == workflow.RUNNING

        frozen = _descendants(other.pid)  # the driver, its GCS, raylet, workers and manager
        _signal_all(frozen, signal.SIGSTOP)
        # No resume by hand: this cluster's manager takes it on once the frozen lease expired.
        assert workflow.get_output(wid) == 12
        assert run_sync(load_state(context().storage, wid)).owner != owner
    finally:
        _signal_all(frozen, signal.SIGCONT)
    out, err = other.communicate(timeout=120)
    # Thawed, the first cluster found its lease lapsed and stopped: its driver was told so.
    assert "RESULT" not in out, out
    assert "ERROR" in out, (out, err[-2000:])
    runs = open(counter).read().split()
    for index in range(12):
        # Side effects are at-least-once for what was in flight: the step the freeze caught,
        # and one the thawed cluster's Ray had queued behind it before its run stopped.
        assert 1 <= runs.count(str(index)) <= 2, runs
    assert sum(runs.count(str(i)) - 1 for i in range(12)) <= 2, runs
    lease = run_sync(read_lease(context().storage, owner))
    assert lease is not None and not lease.live()
    verify = subprocess.run([sys.executable, "-m", "replay", "verify", wid, "--storage", storage],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr  # no append of the old owner landed
