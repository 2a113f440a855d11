"""Timers and event waits in the log: the fold's rules, the words the tool uses, the mailbox.

Hand-written logs (no Ray); the tool runs as a subprocess on logs written through the real
backends (local disk, S3 on moto), with a real mailbox log beside the workflow's.
"""

from __future__ import annotations

import asyncio

import pytest

from replay import (
    EventAwaited,
    EventReceived,
    EventSent,
    IllegalTransitionError,
    Mailbox,
    TaskStatus,
    TimerSet,
    WorkflowStatus,
    append_events,
    describe_wait,
    fold,
    mailbox_log_id,
    read_mailbox,
)
from replay._waits import render_mailbox
from storage_backends import is_system_id, open_storage, validate_log_id
from tests.replay.logs import T0, LogBuilder, payload
from tests.replay.test_cli import backend, ok, tool  # noqa: F401  (the backend fixture)


def _timer(b: LogBuilder, task_id: str, deadline: float, attempt: int = 1, dt: float = 0.01) -> LogBuilder:
    return b._add(TimerSet, dt, task_id=task_id, deadline=deadline, attempt=attempt)


def _awaited(b: LogBuilder, task_id: str, key: str | None = "k", attempt: int = 1, dt: float = 0.01,
             listener: str = "engine.http_event_provider.HTTPListener") -> LogBuilder:
    return b._add(EventAwaited, dt, task_id=task_id, event_key=key, attempt=attempt, listener=listener)


def _received(b: LogBuilder, task_id: str, key: str | None = "k", value="yes", attempt: int = 1,
              dt: float = 0.5) -> LogBuilder:
    return b._add(EventReceived, dt, task_id=task_id, payload=payload(value), event_key=key, attempt=attempt,
                  mailbox_seq=0 if key is not None else None)


def _started_workflow(workflow_id: str = "w") -> LogBuilder:
    return LogBuilder(workflow_id).submit().run("r1")


def _illegal(events, reason: str) -> IllegalTransitionError:
    with pytest.raises(IllegalTransitionError, match=reason) as info:
        fold(events)
    assert info.value.seq == len(events) - 1  # the last event is the illegal one
    return info.value


# --- the fold ----------------------------------------------------------------------------------------

def test_a_timer_is_a_running_task_until_it_fires_and_a_resume_keeps_its_deadline():
    b = _started_workflow().schedule("sleep")
    _timer(b, "sleep", deadline=T0 + 10)
    state = fold(b.events)
    task = state.tasks["sleep"]
    assert task.status is TaskStatus.RUNNING and task.wait.kind == "timer"
    assert task.wait.deadline == T0 + 10 and task.wait.since == task.started_at
    # the driver died; a resume schedules a new attempt, which keeps the first deadline
    b.run("r2", resumed=True, dt=20).schedule("sleep", attempt=2)
    _timer(b, "sleep", deadline=T0 + 10, attempt=2)
    b.complete("sleep", None, attempt=2, dt=0.001)
    state = fold(b.events)
    task = state.tasks["sleep"]
    assert task.status is TaskStatus.SUCCESSFUL and task.wait.since < task.started_at
    assert [s[0] for s in task.spans] == [1, 2]
    assert "fired" in describe_wait(state, task) and "timer until 2023-11-14 22:13:30.000 UTC" in \
        describe_wait(state, task)


def test_an_event_wait_receives_then_completes():
    b = _started_workflow().schedule("wait")
    _awaited(b, "wait", key="approval")
    state = fold(b.events)
    assert state.tasks["wait"].wait.kind == "event" and state.tasks["wait"].wait.received is None
    assert describe_wait(state, state.tasks["wait"]).startswith("event 'approval': waiting since")
    _received(b, "wait", key="approval")
    state = fold(b.events)
    wait = state.tasks["wait"].wait
    assert wait.received == payload("yes") and wait.mailbox_seq == 0
    assert state.event_keys == {"approval": "wait"}
    assert describe_wait(state, state.tasks["wait"]).endswith("not committed yet")
    b.complete("wait", ("approval", "yes"))
    state = fold(b.events)
    assert state.tasks["wait"].status is TaskStatus.SUCCESSFUL
    assert "received" in describe_wait(state, state.tasks["wait"])


def test_a_received_event_survives_a_resume_and_is_not_received_again():
    b = _started_workflow().schedule("wait")
    _received(_awaited(b, "wait"), "wait")
    b.run("r2", resumed=True, dt=3).schedule("wait", attempt=2)
    _awaited(b, "wait", attempt=2)
    state = fold(b.events)
    assert state.tasks["wait"].wait.received == payload("yes")  # kept from attempt 1
    b.complete("wait", "v", attempt=2)
    assert fold(b.events).tasks["wait"].status is TaskStatus.SUCCESSFUL
    # ...and a second event.received for it is refused, in the new attempt as in the old one
    c = _started_workflow().schedule("wait")
    _received(_awaited(c, "wait"), "wait")
    c.run("r2", resumed=True, dt=3).schedule("wait", attempt=2)
    _received(_awaited(c, "wait", attempt=2), "wait", attempt=2)
    _illegal(c.events, "already received its event")


@pytest.mark.parametrize("case,reason", [
    ("completed before received", "completed before receiving"),
    ("received twice", "already received"),
    ("key to two tasks", "already delivered to task 'first'"),
    ("received by a timer", "does not wait for an event"),
    ("received by a plain task", "does not wait for an event"),
    ("received with another key", "waits for event key 'k', not 'other'"),
    ("timer on a started task", "began waiting while RUNNING"),
    ("timer on a plain task that ran", "ran as a plain task"),
    ("event wait on a timer", "is a timer wait, not a event wait"),
    ("another key on resume", "waited for event key 'k', now 'z'"),
    ("mailbox record in a workflow log", "belongs in a mailbox log"),
    ("timer before the run", "task events need a RUNNING workflow"),
])
def test_illegal_wait_events_are_refused_at_their_seq(case, reason):
    b = _started_workflow()
    if case == "completed before received":
        _awaited(b.schedule("wait"), "wait").complete("wait", 1)
    elif case == "received twice":
        _received(_received(_awaited(b.schedule("wait"), "wait"), "wait"), "wait")
    elif case == "key to two tasks":
        _received(_awaited(b.schedule("first"), "first"), "first")
        _received(_awaited(b.schedule("second"), "second"), "second")
    elif case == "received by a timer":
        _received(_timer(b.schedule("t"), "t", T0), "t")
    elif case == "received by a plain task":
        _received(b.schedule("p").start("p"), "p")
    elif case == "received with another key":
        _received(_awaited(b.schedule("wait"), "wait"), "wait", key="other")
    elif case == "timer on a started task":
        _timer(b.schedule("t").start("t"), "t", T0)
    elif case == "timer on a plain task that ran":
        b.schedule("p").start("p").fail("p").retry("p", 2)
        _timer(b, "p", T0, attempt=2)
    elif case == "event wait on a timer":
        _timer(b.schedule("t"), "t", T0).fail("t").retry("t", 2)
        _awaited(b, "t", attempt=2)
    elif case == "another key on resume":
        _awaited(b.schedule("wait"), "wait").run("r2", resumed=True).schedule("wait", attempt=2)
        _awaited(b, "wait", key="z", attempt=2)
    elif case == "mailbox record in a workflow log":
        b._add(EventSent, 0.1, workflow_id="w", event_key="k", payload=payload(1))
    elif case == "timer before the run":
        b = LogBuilder("w").submit()
        _timer(b, "t", T0)
    _illegal(b.events, reason)


def test_describe_wait_of_a_listener_and_an_interrupted_run():
    b = _started_workflow().schedule("poll")
    _awaited(b, "poll", key=None, listener="tests.FileListener")
    b.workflow_failed("other")
    state = fold(b.events)
    assert state.status is WorkflowStatus.FAILED
    assert describe_wait(state, state.tasks["poll"]) == "event from tests.FileListener: not received"
    c = _started_workflow().schedule("sleep")
    _timer(c, "sleep", deadline=T0 + 1e6)
    state = fold(c.events)
    assert "to go at the last event" in describe_wait(state, state.tasks["sleep"])


# --- the mailbox, and the tool showing waits -------------------------------------------------------------

def test_the_mailbox_log_id_is_a_valid_system_log_id_for_any_workflow_id():
    for workflow_id in ("w", "x" * 128, "a.b-c_d", "_mailbox-x"):
        log_id = mailbox_log_id(workflow_id)
        assert validate_log_id(log_id) == log_id and is_system_id(log_id)
        assert log_id != workflow_id
    assert mailbox_log_id("a") != mailbox_log_id("b")


def test_render_mailbox_says_who_took_what():
    mailbox = Mailbox("w")
    mailbox.add(0, EventSent(ts=T0, workflow_id="w", event_key="taken", payload=payload(1), sender="cli"))
    mailbox.add(1, EventSent(ts=T0 + 1, workflow_id="w", event_key="early", payload=payload(2)))
    mailbox.add(2, EventSent(ts=T0 + 2, workflow_id="w", event_key="taken", payload=payload(3)))  # ignored
    assert mailbox.events["taken"][0] == 0 and mailbox.next_seq == 3
    b = _started_workflow().schedule("wait")
    _received(_awaited(b, "wait", key="taken"), "wait", key="taken")
    text = render_mailbox(mailbox, fold(b.events))
    assert "mailbox (2 events sent)" in text
    lines = text.splitlines()
    assert any("'taken'" in line and line.rstrip().endswith("wait") and "cli" in line for line in lines)
    assert any("'early'" in line and "nobody yet" in line for line in lines)
    assert render_mailbox(Mailbox("w"), fold(b.events)) == ""


async def _write_with_mailbox(backend, workflow_id: str, events, sent) -> None:
    await backend.write(workflow_id, events)
    storage = open_storage(backend.url, **backend.options)
    try:
        await append_events(storage, mailbox_log_id(workflow_id), sent, 0)
        mailbox = await read_mailbox(storage, workflow_id)
        assert list(mailbox.events) == [e.event_key for e in sent]
    finally:
        await storage.close()


def test_replay_show_events_timeline_and_html_show_waits(backend, tmp_path):  # noqa: F811
    b = _started_workflow("waits-1").schedule("engine.sleep").schedule("engine.wait_for_event")
    _timer(b, "engine.sleep", deadline=T0 + 3.5)
    _awaited(b, "engine.wait_for_event", key="approval")
    _received(b, "engine.wait_for_event", key="approval", value="approved")
    b.complete("engine.wait_for_event", ("approval", "approved"), dt=0.01)
    b.complete("engine.sleep", None, dt=3.0)
    sent = [EventSent(ts=T0 + 0.2, workflow_id="waits-1", event_key="approval", payload=payload("approved"),
                      sender="http 127.0.0.1"),
            EventSent(ts=T0 + 0.3, workflow_id="waits-1", event_key="later", payload=payload(7))]
    asyncio.run(_write_with_mailbox(backend, "waits-1", b.events, sent))

    shown = ok(tool("show", "waits-1", *backend.args()))
    assert "timer until 2023-11-14 22:13:23.500 UTC, fired 150ms after it" in shown
    assert "event 'approval': received 2023-11-14 22:13:20.640 UTC (builtins.str" in shown
    assert "mailbox (2 events sent)" in shown and "http 127.0.0.1" in shown
    assert "'later'" in shown and "nobody yet" in shown
    at = ok(tool("at", "waits-1", "5", *backend.args()))  # seq 5: the timer set, nothing received yet
    assert "timer until 2023-11-14 22:13:23.500 UTC" in at and "to go at the last event" in at
    events = ok(tool("events", "waits-1", *backend.args()))
    assert "timer.set" in events and "deadline=1700000003.5" in events
    assert "event.awaited" in events and 'event_key="approval"' in events and "event.received" in events
    timeline = ok(tool("timeline", "waits-1", *backend.args()))
    assert "timer until" in timeline and "event 'approval': received" in timeline
    out = tmp_path / "t.html"
    ok(tool("timeline", "waits-1", "--html", str(out), *backend.args()))
    page = out.read_text()
    assert "timer until 2023-11-14 22:13:23.500 UTC" in page and "event &#x27;approval&#x27;: received" in page
    ok(tool("verify", "waits-1", *backend.args()))
