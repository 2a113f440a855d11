"""Durable timers and events (issue 12): sleep, wait_for_event, listeners, send_event, mailboxes.

On local storage and S3 (moto), with a real Ray runtime; crashes are real (a killed manager
actor here, a kill -9'd driver in ``test_events_crash.py``). What ray.workflow 2.47 did is said
where it matters ("tried on 2.47.1": run against ray 2.47.1 in a throwaway virtualenv here).
"""

import math
import os
import subprocess
import sys
import time

import pytest
import ray

import engine as workflow
from engine.api._init import context
from engine.event_listener import EventListener, TimerListener
from engine.http_event_provider import HTTPListener
from engine.store._sync import run_sync
from replay import (
    EventAwaited,
    EventReceived,
    TaskCompleted,
    TimerSet,
    mailbox_log_id,
    read_mailbox,
)
from tests.engine import event_tasks as et
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_wait_for, _of = et.wait_for, et.log_of


def _log(workflow_id):
    return et.log_of(workflow_id)


def _mailbox(workflow_id):
    return run_sync(read_mailbox(context().storage, workflow_id))


SLEEP, WAIT = "engine.sleep", "engine.wait_for_event"


# --- timers ---------------------------------------------------------------------------------------

def test_sleep_and_a_timer_listener_resolve_to_none_and_log_their_deadlines(backend, wid):
    """2.47 (tried on 2.47.1): ``gather.bind(workflow.sleep(1), wait_for_event(TimerListener,
    t))`` gave ``(None, None)``, with three tasks per sleep and two per wait; here each is one task."""
    at = time.time() + 0.5
    dag = tasks.collect.bind(workflow.sleep(0.3), workflow.wait_for_event(TimerListener, at), "x")
    assert workflow.run(dag, workflow_id=wid) == {"args": [None, None, "x"], "kwargs": {}}
    timers = {e.task_id: e for e in _of(wid, TimerSet)}
    assert set(timers) == {SLEEP, WAIT}
    assert timers[WAIT].deadline == at
    assert timers[SLEEP].deadline == pytest.approx(timers[SLEEP].ts + 0.3)
    for done in _of(wid, TaskCompleted):
        if done.task_id in timers:  # a timer never fires before its deadline
            assert done.ts >= timers[done.task_id].deadline
    assert workflow.get_metadata(wid, SLEEP)["status"] == "SUCCESSFUL"


def test_a_timestamp_from_another_task(backend, wid):
    at = time.time() + 0.2
    dag = workflow.wait_for_event(TimerListener, tasks.identity.bind(at))
    assert workflow.run(dag, workflow_id=wid) is None
    assert [e.deadline for e in _of(wid, TimerSet)] == [at]
    bad = f"{wid}-bad"
    with pytest.raises(workflow.WorkflowExecutionError, match="timestamp must be Unix seconds") as info:
        workflow.run(workflow.wait_for_event(TimerListener, tasks.identity.bind("soon")), workflow_id=bad)
    assert isinstance(info.value.cause, TypeError) and info.value.task_id == WAIT


def test_a_new_manager_keeps_the_deadline(fresh_backend, kill_manager, wid):
    """The manager dies mid-sleep, its run with it; the new one takes the workflow on by itself
    (leases) and sets the timer again with the first deadline: it sleeps only for what is left.
    (A resume after the deadline, on another cluster: ``test_events_crash.py``.)"""
    workflow.run_async(et.stamp.bind(workflow.sleep(4)), workflow_id=wid)
    first = _wait_for(lambda: _of(wid, TimerSet), "the timer to be set")[0]
    kill_manager(fresh_backend)
    assert workflow.get_output(wid)["value"] is None
    timers = _of(wid, TimerSet)
    assert [t.attempt for t in timers] == [1, 2]
    assert timers[1].deadline == first.deadline  # kept, never restarted
    fired = _of(wid, TaskCompleted, SLEEP)[0]
    assert fired.ts >= first.deadline and fired.attempt == 2


def test_cancel_a_sleeping_workflow(backend, wid):
    ref = workflow.run_async(et.stamp.bind(workflow.sleep(600)), workflow_id=wid)
    _wait_for(lambda: _of(wid, TimerSet), "the timer to be set")
    workflow.cancel(wid)
    assert workflow.get_status(wid) == workflow.CANCELED
    with pytest.raises(workflow.WorkflowCancellationError):
        workflow.get_output(wid)
    with pytest.raises(Exception):
        ray.get(ref)
    assert not _of(wid, TaskCompleted)


# --- holding nothing ------------------------------------------------------------------------------

def test_waits_hold_no_worker_and_no_cpu(backend, serve_url, tmp_path):
    """2.47 ran each wait in a Ray task of its own (a worker and a CPU for the whole wait; its
    tests asked for extra CPUs for that). Six waits of every kind here, on a 2-CPU cluster,
    hold no CPU: the cluster's CPUs are all free while they wait."""
    ids = [f"hold-{i}-{time.monotonic_ns()}" for i in range(6)]
    dags = [workflow.sleep(600), workflow.sleep(600), workflow.wait_for_event(et.FileListener, str(tmp_path / "x")),
            workflow.wait_for_event(et.FileListener, str(tmp_path / "y")),
            workflow.wait_for_event(HTTPListener, event_key="a"), workflow.wait_for_event(HTTPListener)]
    for workflow_id, dag in zip(ids, dags):
        workflow.run_async(et.stamp.bind(dag), workflow_id=workflow_id)
    for workflow_id in ids:
        _wait_for(lambda: _of(workflow_id, TimerSet) or _of(workflow_id, EventAwaited), f"{workflow_id} to wait")
    total = ray.cluster_resources()["CPU"]
    assert total == 2
    # (tasks of earlier tests may still be ending: all CPUs come free while the six still wait)
    _wait_for(lambda: ray.available_resources().get("CPU", 0) == total, "every CPU to be free", timeout=60)
    assert all(workflow.get_status(w) == workflow.RUNNING for w in ids)
    for workflow_id in ids:
        workflow.cancel(workflow_id)
        assert workflow.get_status(workflow_id) == workflow.CANCELED


# --- custom listeners --------------------------------------------------------------------------------

def test_a_custom_listener_waiting_on_a_file(backend, wid, tmp_path):
    path = str(tmp_path / "event")
    dag = et.stamp.bind(workflow.wait_for_event(et.FileListener, tasks.identity.bind(path)))
    ref = workflow.run_async(dag, workflow_id=wid)
    awaited = _wait_for(lambda: _of(wid, EventAwaited), "the wait to begin")[0]
    assert awaited.listener == "tests.engine.event_tasks.FileListener" and awaited.event_key is None
    _wait_for(lambda: et.polls(path) == 1, "the listener to poll")
    assert workflow.get_status(wid) == workflow.RUNNING
    with open(path, "w") as f:
        f.write("hello")
    assert ray.get(ref)["value"] == {"path": path, "content": "hello"}
    log = _log(wid)
    received = [i for i, e in enumerate(log) if isinstance(e, EventReceived)]
    completed = [i for i, e in enumerate(log) if isinstance(e, TaskCompleted) and e.task_id == WAIT]
    assert len(received) == 1 and received[0] < completed[0]  # durable before the commit ran
    assert et.polls(path) == 1 and et.commits(path) == 1
    assert workflow.get_output(wid, task_id=WAIT) == {"path": path, "content": "hello"}


def test_a_crash_between_checkpoint_and_commit_does_not_deliver_the_event_twice(fresh_backend, kill_manager,
                                                                                  wid, tmp_path):
    """The event is durable (event.received) before event_checkpointed runs; the manager dies
    during the commit. The new manager takes the workflow on: it does not poll again (the event
    is the one received) and calls event_checkpointed again: at least once, as a task in flight
    at a crash."""
    path = str(tmp_path / "event")
    with open(path, "w") as f:
        f.write("once")
    open(path + ".hold", "w").close()
    workflow.run_async(et.stamp.bind(workflow.wait_for_event(et.FileListener, path)), workflow_id=wid)
    _wait_for(lambda: et.commits(path) == 1, "the commit to begin")
    assert len(_of(wid, EventReceived)) == 1
    kill_manager(fresh_backend)
    _wait_for(lambda: len(_of(wid, EventAwaited)) == 2, "the new manager to take the wait on")
    os.remove(path + ".hold")
    assert workflow.get_output(wid)["value"] == {"path": path, "content": "once"}
    assert et.polls(path) == 1 and et.commits(path) == 2
    assert len(_of(wid, EventReceived)) == 1
    assert [e.attempt for e in _of(wid, EventAwaited)] == [1, 2]


def test_a_failed_commit_fails_the_task_and_a_resume_commits_again(backend, wid, tmp_path):
    path = str(tmp_path / "event")
    with open(path, "w") as f:
        f.write("v")
    open(path + ".refuse", "w").close()
    with pytest.raises(workflow.WorkflowExecutionError, match="refused the commit") as info:
        workflow.run(workflow.wait_for_event(et.FileListener, path), workflow_id=wid)
    assert info.value.task_id == WAIT and isinstance(info.value.cause, RuntimeError)
    os.remove(path + ".refuse")
    assert workflow.resume(wid) == {"path": path, "content": "v"}
    assert et.polls(path) == 1 and et.commits(path) == 2


def test_a_listener_whose_poll_raises_fails_its_task_like_any_task(backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError, match="no event source: down") as info:
        workflow.run(et.stamp.bind(workflow.wait_for_event(et.BrokenListener, "down")), workflow_id=wid)
    assert info.value.task_id == WAIT and isinstance(info.value.cause, ValueError)
    assert workflow.get_status(wid) == workflow.FAILED
    assert workflow.get_metadata(wid, WAIT)["attempts"] == 1  # application errors are not retried by default
    # ...and caught like any task's: by a catch_exceptions task that continued into the wait
    caught = workflow.options(catch_exceptions=True)(et.guarded).bind(et.BrokenListener, "gone")
    value, error = workflow.run(caught, workflow_id=f"{wid}-caught")
    assert value is None and isinstance(error, ValueError) and "gone" in str(error)


def test_an_event_that_cannot_be_pickled_fails_its_task(backend, wid):
    with pytest.raises(workflow.WorkflowExecutionError, match="not serializable"):
        workflow.run(workflow.wait_for_event(et.UnpicklableEventListener), workflow_id=wid)


# --- sending events -----------------------------------------------------------------------------------

def test_an_event_sent_before_the_wait_starts_is_taken_when_it_does(backend, serve_url, wid, tmp_path):
    """2.47 answered 404 to an HTTP event sent before its wait registered, and senders had to
    retry; here the mailbox keeps it."""
    marker = str(tmp_path / "go")
    key = et.key_when_marked.bind("approval", marker)
    ref = workflow.run_async(et.stamp.bind(workflow.wait_for_event(HTTPListener, event_key=key)), workflow_id=wid)
    workflow.send_event(wid, "approval", {"by": "ops"})
    sent_seq, sent = _mailbox(wid).events["approval"]
    assert not _of(wid, EventAwaited)  # nobody waits yet
    open(marker, "w").close()
    assert ray.get(ref)["value"] == ("approval", {"by": "ops"})
    awaited, received = _of(wid, EventAwaited)[0], _of(wid, EventReceived)[0]
    assert awaited.ts > sent.ts and received.mailbox_seq == sent_seq and received.payload == sent.payload


def test_the_same_event_sent_twice(backend, serve_url, wid, tmp_path):
    """The first is delivered; the second is refused (DuplicateEventError; HTTP 409), before
    the wait takes the first, after, and once the workflow has ended."""
    marker = str(tmp_path / "go")
    key = et.key_when_marked.bind("k", marker)
    ref = workflow.run_async(et.stamp.bind(workflow.wait_for_event(HTTPListener, event_key=key)), workflow_id=wid)
    workflow.send_event(wid, "k", 1)
    with pytest.raises(workflow.DuplicateEventError, match="already sent"):
        workflow.send_event(wid, "k", 2)
    open(marker, "w").close()
    assert ray.get(ref)["value"] == ("k", 1)
    with pytest.raises(workflow.DuplicateEventError, match="already received the event with this key"):
        workflow.send_event(wid, "k", 3)
    with pytest.raises(workflow.WorkflowEventError, match="SUCCESSFUL"):
        workflow.send_event(wid, "k2", 3)
    assert list(_mailbox(wid).events) == ["k"] and _mailbox(wid).next_seq == 1


def test_a_waiting_workflow_gets_the_event_at_once_and_the_default_key_is_the_task_id(backend, serve_url, wid):
    """2.47's HTTPListener key defaulted to the waiting task's id (there its get_message
    task: ``ray.workflow.api.wait_for_event.locals.get_message``); here ``engine.wait_for_event``."""
    ref = workflow.run_async(et.stamp.bind(workflow.wait_for_event(HTTPListener)), workflow_id=wid)
    assert _wait_for(lambda: _of(wid, EventAwaited), "the wait")[0].event_key == WAIT
    workflow.send_event(wid, WAIT, [1, 2])
    assert ray.get(ref)["value"] == (WAIT, [1, 2])


def test_two_waits_on_one_key(backend, serve_url, wid):
    """A key is delivered once: a second wait on a key another task received fails clearly."""
    dag = tasks.collect.bind(workflow.wait_for_event(HTTPListener, event_key="k"),
                             tasks.identity.bind(workflow.wait_for_event(HTTPListener, event_key="k")))
    ref = workflow.run_async(dag, workflow_id=wid)
    _wait_for(lambda: len(_of(wid, EventAwaited)) == 2, "both waits")
    workflow.send_event(wid, "k", "v")
    with pytest.raises(workflow.WorkflowExecutionError, match="already received the event with this key"):
        ray.get(ref)
    assert len(_of(wid, EventReceived)) == 1


def test_a_listener_that_commits_on_a_mailbox_wait(backend, serve_url, wid, tmp_path):
    commits = str(tmp_path / "commits")
    ref = workflow.run_async(workflow.wait_for_event(et.KeyedHTTPListener, event_key="c"), workflow_id=wid)
    _wait_for(lambda: _of(wid, EventAwaited), "the wait")
    workflow.send_event(wid, "c", {"commits": commits})
    assert ray.get(ref) == ("c", {"commits": commits})
    assert tasks.count(commits) == 1


def test_send_event_bad_input_loses_nothing(backend, serve_url, wid):
    ref = workflow.run_async(workflow.wait_for_event(HTTPListener, event_key="k"), workflow_id=wid)
    _wait_for(lambda: _of(wid, EventAwaited), "the wait")
    with pytest.raises(workflow.WorkflowNotFoundError):
        workflow.send_event(f"{wid}-nobody", "k", 1)
    with pytest.raises(TypeError, match="the payload of event 'k' is not serializable"):
        workflow.send_event(wid, "k", _lock())
    with pytest.raises(workflow.WorkflowEventError, match="must be a str"):
        workflow.send_event(wid, 7, 1)
    with pytest.raises(ValueError, match="workflow id"):
        workflow.send_event("../escape", "k", 1)
    assert _mailbox(wid).next_seq == 0  # nothing was recorded
    workflow.send_event(wid, "k", "fine")
    assert ray.get(ref) == ("k", "fine")
    canceled = f"{wid}-canceled"
    workflow.run_async(workflow.sleep(600), workflow_id=canceled)
    workflow.cancel(canceled)
    with pytest.raises(workflow.WorkflowEventError, match="CANCELED"):
        workflow.send_event(canceled, "k", 1)


def _lock():
    import threading

    return threading.Lock()


def test_delete_removes_the_mailbox(local, serve_url, wid):
    workflow.run_async(workflow.wait_for_event(HTTPListener, event_key="never"), workflow_id=wid)
    workflow.send_event(wid, "other", 1)
    workflow.cancel(wid)
    assert run_sync(context().storage.next_seq(mailbox_log_id(wid))) == 1
    workflow.delete(wid)
    assert run_sync(context().storage.next_seq(mailbox_log_id(wid))) == 0


# --- bad input, plain Ray ---------------------------------------------------------------------------------

@pytest.mark.parametrize("duration,error,text", [
    (-1, ValueError, ">= 0"), (float("nan"), ValueError, "finite"), (math.inf, ValueError, "finite"),
    ("5", TypeError, "number of seconds"), (True, TypeError, "number of seconds"), (None, TypeError, "number"),
])
def test_sleep_bad_durations(ray_runtime, duration, error, text):
    """2.47 accepted any of these and failed (or fired at once) only when the workflow ran
    (tried on 2.47.1: sleep("x") failed inside its end_time task with a TypeError)."""
    with pytest.raises(error, match=text):
        workflow.sleep(duration)


def test_wait_for_event_bad_listeners_and_arguments(ray_runtime):
    class NotAListener:
        async def poll_for_event(self):
            return 1

    with pytest.raises(TypeError, match="not a subclass of workflow.EventListener"):  # 2.47's words
        workflow.wait_for_event(NotAListener)
    with pytest.raises(TypeError, match="pass the class"):
        workflow.wait_for_event(TimerListener())
    with pytest.raises(TypeError, match="not a subclass"):
        workflow.wait_for_event(int)
    with pytest.raises(TypeError, match="do not fit poll_for_event"):
        workflow.wait_for_event(TimerListener)
    with pytest.raises(TypeError, match="do not fit poll_for_event"):
        workflow.wait_for_event(et.FileListener, "a", "b")
    with pytest.raises(TypeError, match="timestamp must be Unix seconds"):
        workflow.wait_for_event(TimerListener, "soon")
    with pytest.raises(TypeError, match="event_key must be a str"):
        workflow.wait_for_event(HTTPListener, event_key=5)
    assert issubclass(workflow.EventListener, object) and workflow.EventListener is EventListener


def test_waits_outside_a_workflow_run_as_plain_ray(ray_runtime, tmp_path):
    """As in 2.47, a wait node executed outside a workflow waits in a worker."""
    assert workflow.continuation(workflow.sleep(0.05)) is None
    path = str(tmp_path / "plain")
    with open(path, "w") as f:
        f.write("p")
    assert workflow.continuation(workflow.wait_for_event(et.FileListener, path)) == {"path": path, "content": "p"}
    assert et.commits(path) == 1


# --- the CLI ------------------------------------------------------------------------------------------------

def _cli(*args):
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)


def test_cli_send_event(local, serve_url, wid):
    address = ray.get_runtime_context().gcs_address
    ref = workflow.run_async(workflow.wait_for_event(HTTPListener, event_key="go"), workflow_id=wid)
    _wait_for(lambda: _of(wid, EventAwaited), "the wait")
    storage = ["--storage", local["url"], "--address", address]
    bad = _cli("send-event", wid, "go", "--json", "{nope", *storage)
    assert bad.returncode == 2 and "not JSON" in bad.stderr
    done = _cli("send-event", wid, "go", "--json", '{"ok": true}', *storage)
    assert done.returncode == 0, done.stderr
    assert "mailbox seq 0" in done.stdout and "its driver was told" in done.stdout
    assert ray.get(ref) == ("go", {"ok": True})
    again = _cli("send-event", wid, "go", "--json", "1", *storage)
    assert again.returncode == 1 and "was not accepted" in again.stderr
    unknown = _cli("send-event", f"{wid}-nobody", "go", *storage)
    assert unknown.returncode == 1 and "does not exist" in unknown.stderr
