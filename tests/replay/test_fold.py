"""The fold on hand-written logs: what the state knows, and each illegal transition, by seq."""

import pytest

from replay import (
    IllegalTransitionError,
    TaskStatus,
    WorkflowState,
    WorkflowStatus,
    apply,
    fold,
)
from tests.replay.logs import T0, LogBuilder, failed, resumed_after_failure, retry_and_continuation, running


def test_state_knows_everything_the_spec_lists():
    b = retry_and_continuation()
    state = fold(b.events)
    assert state.status is WorkflowStatus.SUCCESSFUL
    assert state.workflow_id == "golden-retry"
    assert state.user_metadata == {"owner": "tests", "ticket": 42}
    assert state.start_time == T0 and state.end_time == b.events[-1].ts
    assert state.output == b.events[-1].output
    assert state.run_ids == ["run-1"]
    assert state.last_seq == len(b.events) - 1 and state.last_ts == b.events[-1].ts

    task_b = state.tasks["b"]
    assert task_b.status is TaskStatus.SUCCESSFUL and task_b.attempt == 2
    assert [(e.attempt, e.error_type, e.message) for e in task_b.errors] == [(1, "ValueError", "flaky network")]
    assert [s[0] for s in task_b.spans] == [1, 2] and all(s[2] is not None for s in task_b.spans)
    assert task_b.duration == pytest.approx(0.5)

    merge = state.tasks["merge"]
    assert merge.status is TaskStatus.SUCCESSFUL  # its sub-DAG's output task finished
    assert merge.continuation_output_task_id == "top@1"
    assert merge.output == state.tasks["top@1"].output
    assert state.continuation_chain("merge") == ["merge", "top@1"]
    assert state.tasks["top@1"].parent_task_id == "merge"
    assert state.completed_outputs().keys() == {"a", "b", "merge", "top@1"}


def test_continued_task_waits_for_its_sub_dag():
    b = LogBuilder("w").submit().run("r").schedule("m").start("m").continue_into("m", "sub")
    state = fold(b.events)
    assert state.tasks["m"].status is TaskStatus.CONTINUED
    assert state.tasks["m"].ended_at is None
    assert state.waiting_on == {"sub": "m"}
    b.schedule("sub", parent="m").start("sub").continue_into("sub", "subsub")
    b.schedule("subsub", parent="sub").start("subsub").complete("subsub", 7)
    state = fold(b.events)
    assert state.continuation_chain("m") == ["m", "sub", "subsub"]
    assert state.tasks["m"].status is state.tasks["sub"].status is TaskStatus.SUCCESSFUL
    assert state.tasks["m"].output == state.tasks["subsub"].output
    assert state.waiting_on == {}


def test_failed_then_resumed():
    state = fold(resumed_after_failure().events)
    assert state.status is WorkflowStatus.SUCCESSFUL
    assert state.run_ids == ["run-1", "run-2"]
    assert state.error_type is None and state.failed_task_id is None
    c = state.tasks["c"]
    assert [s[0] for s in c.spans] == [1, 2] and c.spans[0][2] is None  # attempt 1 interrupted


def test_failed_workflow_and_running_workflow():
    state = fold(failed().events)
    assert state.status is WorkflowStatus.FAILED
    assert (state.failed_task_id, state.error_type, state.error_message) == (
        "flaky", "RuntimeError", "attempt 3 failed")
    assert state.tasks["flaky"].attempt == 3 and len(state.tasks["flaky"].errors) == 3
    assert fold(running().events).status is WorkflowStatus.RUNNING


def test_fold_of_pairs_equals_fold_of_bare_events_and_incremental_apply():
    events = retry_and_continuation().events
    incremental = WorkflowState()
    for e in events:
        apply(incremental, e)
    assert fold(events) == fold(enumerate(events)) == incremental


def _illegal(events, seq_pairs=None):
    with pytest.raises(IllegalTransitionError) as info:
        fold(seq_pairs if seq_pairs is not None else events)
    return info.value


def test_completing_twice_is_illegal_at_its_seq():
    b = LogBuilder("w").submit().run("r").schedule("a").start("a").complete("a", 1)
    b.complete("a", 1)
    err = _illegal(b.events)
    assert err.seq == 5 and "completed while SUCCESSFUL" in str(err) and "seq 5" in str(err)
    assert err.event is b.events[5]


def test_event_after_the_end_is_illegal():
    b = LogBuilder("w").submit().run("r").succeed(1).cancel_requested()
    err = _illegal(b.events)
    assert err.seq == 3 and "already ended (SUCCESSFUL)" in err.reason
    b = LogBuilder("w").submit().canceled().run("r2")
    assert _illegal(b.events).seq == 2


def test_sequence_gap_and_repeat_are_illegal():
    events = LogBuilder("w").submit().run("r").schedule("a").events
    err = _illegal(None, [(0, events[0]), (1, events[1]), (3, events[2])])
    assert err.seq == 3 and "expected seq 2" in err.reason
    err = _illegal(None, [(0, events[0]), (1, events[1]), (1, events[2])])
    assert err.seq == 1


def test_event_before_submission_is_illegal():
    b = LogBuilder("w").submit().run("r")
    err = _illegal([b.events[1], b.events[0]])
    assert err.seq == 0 and "first event must be workflow.submitted" in err.reason


@pytest.mark.parametrize("build, seq, words", [
    (lambda b: b.submit().submit(), 1, "already submitted"),
    (lambda b: b.submit().schedule("a"), 1, "need a RUNNING workflow"),
    (lambda b: b.submit().run("r").start("a"), 2, "never scheduled"),
    (lambda b: b.submit().run("r").schedule("a").start("a", attempt=2), 3, "attempt 2 started"),
    (lambda b: b.submit().run("r").schedule("a").retry("a", 2), 3, "not FAILED"),
    (lambda b: b.submit().run("r").schedule("a").fail("a").retry("a", 3), 4, "does not follow"),
    (lambda b: b.submit().run("r").schedule("a").complete("a", attempt=2), 3, "attempt 1 is the current"),
    (lambda b: b.submit().run("r").schedule("a").complete("a").schedule("a"), 4, "must not run again"),
    (lambda b: b.submit().run("r").schedule("a").fail("a").schedule("a", name="other", attempt=2), 4,
     "was 'tests.a', now 'other'"),
    (lambda b: b.submit().run("r").schedule("a").schedule("b").continue_into("a", "x")
     .continue_into("b", "x"), 5, "already carries"),
    (lambda b: b.submit().succeed(1), 1, "PENDING workflow cannot succeed"),
    (lambda b: b.submit().run("r").workflow_failed("a").workflow_failed("a"), 3, "FAILED workflow cannot fail"),
    (lambda b: b.submit().run("r").schedule("a").workflow_failed("a").complete("a"), 4, "RUNNING workflow"),
])
def test_each_illegal_transition_names_its_seq(build, seq, words):
    err = _illegal(build(LogBuilder("w")).events)
    assert err.seq == seq
    assert words in str(err)


def test_an_illegal_event_does_not_advance_the_state():
    b = LogBuilder("w").submit().run("r").schedule("a").start("a").complete("a", 1)
    state = fold(b.events)
    with pytest.raises(IllegalTransitionError):
        apply(state, b.events[-1])
    assert state.last_seq == 4
    assert state == fold(b.events)
