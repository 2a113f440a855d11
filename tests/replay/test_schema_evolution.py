"""Schema evolution: logs written by older (and newer) schemas, read by the current one.

The rules (replay/_events.py): tags are never reused; a field added later has
a default; unknown fields are skipped; an unknown event type is an error that
names its tag. Each is shown here with real logs written through
LocalStorage by a *different* schema, defined in this file with msgspec
Structs that carry the same tags:

* an older writer (fewer fields, fewer event types) -> the current reader
  decodes everything, added fields get their defaults, and the fold works;
* a newer writer with extra fields on known events -> they are skipped;
* a newer writer with an event type this reader does not know ->
  UnknownEventError naming the tag, after every event before it.

And two golden binary logs written by the format-1 schema through LocalStorage
(made once by tests/replay/golden/make_old_schema_log.py, committed, never
regenerated; ``make_old_schema_log.py --check`` shows they still match it) are
copied into a fresh storage root as <root>/<wid>/events.log and read back:
``old_schema_v1.log`` is a legal history (retry, continuation, failed run,
resume, cancel request, success) checked event by event *and* folded state
field by field; ``events_v1.log`` holds one event of every v1 type and is
checked event by event. A schema, codec, framing or fold change that breaks
stored logs fails here.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from typing import Any, Union

import msgspec
import pytest

from replay import (
    EVENT_TAGS,
    TaskError,
    TaskState,
    TaskStatus,
    WorkflowState,
    FORMAT_VERSION,
    CancelRequested,
    EventRecordError,
    PayloadRef,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    UnknownEventError,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowStatus,
    WorkflowSubmitted,
    WorkflowSucceeded,
    decode_raw,
    fold,
    load_state,
    read_events,
)
from storage_backends import LocalStorage

GOLDEN_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
T0 = 1_700_000_000.0


def _writer_encode(event: msgspec.Struct) -> bytes:
    """How every ray-durable writer of format 1 frames an event: the version byte, then msgpack."""
    return bytes([FORMAT_VERSION]) + msgspec.msgpack.encode(event)


async def _write(storage: LocalStorage, workflow_id: str, events: list, batches: list[int]) -> None:
    seq = 0
    for size in batches:
        seq = await storage.append(workflow_id, [_writer_encode(e) for e in events[seq:seq + size]], seq)
    assert seq == len(events)


async def _read(storage: LocalStorage, workflow_id: str) -> list:
    return [event async for _seq, event in read_events(storage, workflow_id)]


# --- an older schema: fewer fields, fewer event types ------------------------------------

class OldPayloadRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    size: int
    digest: str
    blob: str | None = None
    inline: bytes | None = None  # no type_name, no codec yet


class OldEvent(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    ts: float


class OldSubmitted(OldEvent, tag="workflow.submitted"):
    workflow_id: str
    dag: OldPayloadRef  # no metadata, versions, runtime_env or packages yet


class OldRunStarted(OldEvent, tag="workflow.run_started"):
    run_id: str  # no "resumed" yet


class OldScheduled(OldEvent, tag="task.scheduled"):
    task_id: str
    name: str  # no attempt, options, metadata, parent yet


class OldStarted(OldEvent, tag="task.started"):
    task_id: str


class OldCompleted(OldEvent, tag="task.completed"):
    task_id: str
    output: OldPayloadRef


class OldFailed(OldEvent, tag="task.failed"):
    task_id: str
    error_type: str
    message: str


class OldSucceeded(OldEvent, tag="workflow.succeeded"):
    output: OldPayloadRef


class OldWorkflowFailed(OldEvent, tag="workflow.failed"):
    task_id: str
    error_type: str
    message: str


# No retries, continuations or cancellation in the old schema.
OldAnyEvent = Union[OldSubmitted, OldRunStarted, OldScheduled, OldStarted, OldCompleted, OldFailed,
                    OldSucceeded, OldWorkflowFailed]


def test_the_old_schema_really_is_older():
    old_tags = {t.__struct_config__.tag for t in OldAnyEvent.__args__}
    assert old_tags < EVENT_TAGS, "the old schema must use the current tags, and fewer of them"
    for old, new in [(OldSubmitted, WorkflowSubmitted), (OldScheduled, TaskScheduled),
                     (OldStarted, TaskStarted), (OldPayloadRef, PayloadRef), (OldRunStarted, WorkflowRunStarted)]:
        assert set(old.__struct_fields__) < set(new.__struct_fields__), (old, new)


async def test_an_old_log_is_read_by_the_current_decoder_with_defaults(tmp_path):
    out = OldPayloadRef(size=5, digest="2" * 32, inline=b"\x80\x04K*.")
    old_events = [
        OldSubmitted(ts=T0, workflow_id="old", dag=OldPayloadRef(size=100, digest="1" * 32, blob="dag")),
        OldRunStarted(ts=T0 + 1, run_id="r1"),
        OldScheduled(ts=T0 + 2, task_id="a", name="m.f"),
        OldStarted(ts=T0 + 3, task_id="a"),
        OldCompleted(ts=T0 + 4, task_id="a", output=out),
        OldSucceeded(ts=T0 + 5, output=out),
    ]
    storage = LocalStorage(str(tmp_path))
    await _write(storage, "old", old_events, batches=[2, 1, 3])
    raw = (tmp_path / "old" / "events.log").read_bytes()
    for name in (b"attempt", b"task_options", b"type_name", b"codec", b"packages", b"resumed"):
        assert name not in raw  # really written without the fields added later

    new_out = PayloadRef(size=5, digest="2" * 32, inline=b"\x80\x04K*.")
    expected = [
        WorkflowSubmitted(ts=T0, workflow_id="old", dag=PayloadRef(size=100, digest="1" * 32, blob="dag")),
        WorkflowRunStarted(ts=T0 + 1, run_id="r1"),
        TaskScheduled(ts=T0 + 2, task_id="a", name="m.f"),
        TaskStarted(ts=T0 + 3, task_id="a"),
        TaskCompleted(ts=T0 + 4, task_id="a", output=new_out),
        WorkflowSucceeded(ts=T0 + 5, output=new_out),
    ]
    events = await _read(storage, "old")
    assert events == expected
    # the added fields hold their defaults
    submitted, run, scheduled, started, completed, _ = events
    assert (submitted.user_metadata, submitted.runtime_env, submitted.packages, submitted.ray_version) == \
        ({}, None, {}, "")
    assert submitted.dag.type_name == "" and submitted.dag.codec == "cloudpickle"
    assert run.resumed is False
    assert (scheduled.attempt, scheduled.task_options, scheduled.parent_task_id) == (1, {}, None)
    assert (started.attempt, started.node_id, started.pid) == (1, "", 0)
    assert completed.attempt == 1
    # and the fold makes sense of it
    state = await load_state(storage, "old")
    assert state.status is WorkflowStatus.SUCCESSFUL
    assert state == fold(expected)


async def test_an_old_failed_workflow_log(tmp_path):
    old_events = [
        OldSubmitted(ts=T0, workflow_id="oldf", dag=OldPayloadRef(size=1, digest="1" * 32, inline=b"d")),
        OldRunStarted(ts=T0 + 1, run_id="r1"),
        OldScheduled(ts=T0 + 2, task_id="a", name="m.f"),
        OldStarted(ts=T0 + 3, task_id="a"),
        OldFailed(ts=T0 + 4, task_id="a", error_type="KeyError", message="'x'"),
        OldWorkflowFailed(ts=T0 + 5, task_id="a", error_type="KeyError", message="'x'"),
    ]
    storage = LocalStorage(str(tmp_path))
    await _write(storage, "oldf", old_events, batches=[6])
    events = await _read(storage, "oldf")
    assert events[4] == TaskFailed(ts=T0 + 4, task_id="a", error_type="KeyError", message="'x'")
    assert (events[4].traceback, events[4].attempt, events[4].error) == ("", 1, None)
    assert (await load_state(storage, "oldf")).status is WorkflowStatus.FAILED


# --- a newer schema: extra fields, and an event type this reader does not know ----------------

class NewPayloadRef(msgspec.Struct, kw_only=True, omit_defaults=True):
    size: int
    digest: str
    type_name: str = ""
    codec: str = "cloudpickle"
    blob: str | None = None
    inline: bytes | None = None
    compression: str = "zstd"  # added by a newer writer
    chunks: list[int] = []


class NewEvent(msgspec.Struct, tag_field="type", kw_only=True, omit_defaults=True):
    ts: float
    host: str = ""  # a field every event gained in the newer schema


class NewStarted(NewEvent, tag="task.started"):
    task_id: str
    attempt: int = 1
    node_id: str = ""
    pid: int = 0
    gpu_ids: list[int] = []  # newer
    labels: dict[str, Any] = {}  # newer


class NewCompleted(NewEvent, tag="task.completed"):
    task_id: str
    output: NewPayloadRef
    attempt: int = 1
    duration_s: float = 0.0  # newer


class NewPaused(NewEvent, tag="task.paused"):  # an event type this reader has never heard of
    task_id: str
    until: float


async def test_extra_fields_from_a_newer_writer_are_skipped(tmp_path):
    events = [
        NewStarted(ts=T0, task_id="a", attempt=2, node_id="n1", pid=7, gpu_ids=[0, 1],
                   labels={"zone": "b", "nested": {"x": [1, 2.5, None]}}, host="h1"),
        NewCompleted(ts=T0 + 1, task_id="a", attempt=2, duration_s=1.5, host="h1",
                     output=NewPayloadRef(size=3, digest="f" * 32, inline=b"abc", compression="none", chunks=[3])),
    ]
    storage = LocalStorage(str(tmp_path))
    await _write(storage, "newer", events, batches=[1, 1])
    assert b"gpu_ids" in (tmp_path / "newer" / "events.log").read_bytes()
    assert await _read(storage, "newer") == [
        TaskStarted(ts=T0, task_id="a", attempt=2, node_id="n1", pid=7),
        TaskCompleted(ts=T0 + 1, task_id="a", attempt=2, output=PayloadRef(size=3, digest="f" * 32, inline=b"abc")),
    ]


async def test_an_unknown_event_type_raises_naming_its_tag(tmp_path):
    submitted = WorkflowSubmitted(ts=T0, workflow_id="newest", dag=PayloadRef(size=1, digest="0" * 32, inline=b"d"))
    events = [
        submitted,
        NewPaused(ts=T0 + 1, task_id="a", until=T0 + 60),
        NewCompleted(ts=T0 + 2, task_id="a", output=NewPayloadRef(size=1, digest="f" * 32, inline=b"x")),
    ]
    storage = LocalStorage(str(tmp_path))
    await _write(storage, "newest", events, batches=[1, 2])
    seen = []
    with pytest.raises(EventRecordError) as info:
        async for seq, event in read_events(storage, "newest"):
            seen.append((seq, event))
    assert seen == [(0, submitted)]  # everything before it was read
    error = info.value
    assert isinstance(error.cause, UnknownEventError)
    assert error.cause.tag == "task.paused"
    assert (error.workflow_id, error.seq) == ("newest", 1)
    assert "'task.paused'" in str(error) and "newer ray-durable" in str(error)
    with pytest.raises(EventRecordError) as info:
        await load_state(storage, "newest")
    assert isinstance(info.value.cause, UnknownEventError) and info.value.cause.tag == "task.paused"


# --- golden log 1: a legal history, decoded and folded ---------------------------------------

OLD_LOG = os.path.join(GOLDEN_DIR, "old_schema_v1.log")
OLD_LOG_ID = "old-schema-v1"
OLD_LOG_SHA256 = "87b70a5e184172b9aa9b9fc8afd6da1d3eeb330b37881eaf44cc64e9b9c2a1ea"
OLD_LOG_BATCH_OFFSETS = [0, 353] + [434] * 6 + [1249] * 3 + [1572] + [1686] * 2 + [1874] * 3 + [2156] * 4

_LOAD_ERR = PayloadRef(size=7, digest="27a643dadfbf8cf026ecb687eac37c85", type_name="builtins.ConnectionError",
                       inline=b"\x80\x04conn.")
_LOAD_OUT = PayloadRef(size=5, digest="6a781f5b843d7d85a77e5bb6760aaf12", type_name="builtins.int",
                       inline=b"\x80\x04K\x07.")
_PLAN_DAG = PayloadRef(size=900, digest="b" * 32, blob="plan-dag")
_FINAL = PayloadRef(size=123456, digest="c" * 32, type_name="builtins.dict", blob="plan.out")
_SUBMITTED = WorkflowSubmitted(
    ts=T0, workflow_id=OLD_LOG_ID,
    dag=PayloadRef(size=4096, digest="a" * 32, type_name="engine._graph.WorkflowGraph", blob="dag"),
    user_metadata={"team": "data", "priority": 2}, ray_version="2.47.1", engine_version="0.1.0",
    python_version="3.10.14", runtime_env={"env_vars": {"MODE": "batch"}}, packages={"cloudpickle": "3.1.1"})

OLD_LOG_EVENTS = [
    _SUBMITTED,
    WorkflowRunStarted(ts=T0 + 1, run_id="run-1", resumed=False),
    TaskScheduled(ts=T0 + 2, task_id="load", name="etl.load", attempt=1,
                  task_options={"num_cpus": 2, "max_retries": 1}, user_metadata={"source": "s3"}),
    TaskStarted(ts=T0 + 3, task_id="load", attempt=1, node_id="node-a", pid=1001),
    TaskFailed(ts=T0 + 4, task_id="load", error_type="ConnectionError", message="reset by peer",
               traceback="Traceback (most recent call last):\n  ...\nConnectionError: reset by peer\n",
               attempt=1, error=_LOAD_ERR),
    TaskRetried(ts=T0 + 5, task_id="load", attempt=2, delay_s=0.25),
    TaskStarted(ts=T0 + 6, task_id="load", attempt=2, node_id="node-b", pid=1002),
    TaskCompleted(ts=T0 + 7, task_id="load", attempt=2, output=_LOAD_OUT),
    TaskScheduled(ts=T0 + 8, task_id="plan", name="etl.plan", parent_task_id="load"),
    TaskStarted(ts=T0 + 9, task_id="plan", node_id="node-a", pid=1003),
    TaskContinued(ts=T0 + 10, task_id="plan", dag=_PLAN_DAG, output_task_id="plan.out", attempt=1),
    TaskScheduled(ts=T0 + 11, task_id="plan.out", name="etl.write", parent_task_id="plan"),
    TaskStarted(ts=T0 + 12, task_id="plan.out", node_id="node-c", pid=1004),
    TaskFailed(ts=T0 + 13, task_id="plan.out", error_type="OSError", message="disk full"),
    WorkflowFailed(ts=T0 + 14, task_id="plan.out", error_type="OSError", message="disk full"),
    WorkflowRunStarted(ts=T0 + 15, run_id="run-2", resumed=True),
    TaskScheduled(ts=T0 + 16, task_id="plan.out", name="etl.write", attempt=2, parent_task_id="plan"),
    TaskStarted(ts=T0 + 17, task_id="plan.out", attempt=2, node_id="node-c", pid=1005),
    CancelRequested(ts=T0 + 18, reason="operator asked"),
    TaskCompleted(ts=T0 + 19, task_id="plan.out", attempt=2, output=_FINAL),
    WorkflowSucceeded(ts=T0 + 20.5, output=_FINAL),
]

# The fold of it, spelled out field by field.
OLD_LOG_STATE = WorkflowState(
    workflow_id=OLD_LOG_ID,
    status=WorkflowStatus.SUCCESSFUL,
    submission=_SUBMITTED,
    tasks={
        "load": TaskState(
            task_id="load", name="etl.load", status=TaskStatus.SUCCESSFUL, attempt=2,
            task_options={"num_cpus": 2, "max_retries": 1}, user_metadata={"source": "s3"}, parent_task_id=None,
            scheduled_at=T0 + 2, started_at=T0 + 6, ended_at=T0 + 7, output=_LOAD_OUT,
            errors=(TaskError(attempt=1, error_type="ConnectionError", message="reset by peer",
                              traceback="Traceback (most recent call last):\n  ...\nConnectionError: reset by peer\n",
                              at=T0 + 4, payload=_LOAD_ERR),),
            spans=((1, T0 + 3, T0 + 4), (2, T0 + 6, T0 + 7))),
        "plan": TaskState(
            task_id="plan", name="etl.plan", status=TaskStatus.SUCCESSFUL, attempt=1, parent_task_id="load",
            scheduled_at=T0 + 8, started_at=T0 + 9, ended_at=T0 + 19, output=_FINAL,  # its sub-DAG's output
            continuation=_PLAN_DAG, continuation_output_task_id="plan.out", spans=((1, T0 + 9, T0 + 10),)),
        "plan.out": TaskState(
            task_id="plan.out", name="etl.write", status=TaskStatus.SUCCESSFUL, attempt=2, parent_task_id="plan",
            scheduled_at=T0 + 16, started_at=T0 + 17, ended_at=T0 + 19, output=_FINAL,
            errors=(TaskError(attempt=1, error_type="OSError", message="disk full", at=T0 + 13),),
            spans=((1, T0 + 12, T0 + 13), (2, T0 + 17, T0 + 19))),
    },
    output=_FINAL,
    failed_task_id=None, error_type=None, error_message=None,  # cleared by the resumed run
    cancel_requested=True,
    start_time=T0, end_time=T0 + 20.5, run_start_time=T0 + 15,
    run_ids=["run-1", "run-2"],
    last_seq=20, last_ts=T0 + 20.5,
    waiting_on={},
)


def _golden_sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.fixture
async def old_log_storage(tmp_path):
    root = tmp_path / "store"
    os.makedirs(root / OLD_LOG_ID)
    shutil.copyfile(OLD_LOG, root / OLD_LOG_ID / "events.log")  # <root>/<wid>/events.log, as LocalStorage lays out
    storage = LocalStorage(str(root))
    yield storage
    await storage.close()


def test_the_old_schema_log_is_the_committed_one():
    assert _golden_sha256(OLD_LOG) == OLD_LOG_SHA256, (
        "tests/replay/golden/old_schema_v1.log changed. It stands for logs already on users' disks, "
        "which cannot be regenerated: restore it (git checkout) instead of regenerating it."
    )


async def test_the_old_schema_log_frames(old_log_storage):
    records = await old_log_storage.read_all(OLD_LOG_ID)
    assert [r.seq for r in records] == list(range(21))
    assert [r.offset for r in records] == OLD_LOG_BATCH_OFFSETS
    assert await old_log_storage.next_seq(OLD_LOG_ID) == 21
    assert await old_log_storage.list_logs() == [OLD_LOG_ID]
    assert [decode_raw(r.data)["type"] for r in records] == [
        e.__struct_config__.tag for e in OLD_LOG_EVENTS]


async def test_the_old_schema_log_decodes_to_exactly_these_events(old_log_storage):
    got = [(seq, event) async for seq, event in read_events(old_log_storage, OLD_LOG_ID)]
    assert [seq for seq, _ in got] == list(range(len(OLD_LOG_EVENTS)))
    for seq, ((_, event), want) in enumerate(zip(got, OLD_LOG_EVENTS)):
        assert type(event) is type(want), f"seq {seq}"
        assert event == want, f"seq {seq} decodes differently"
    assert len(got) == len(OLD_LOG_EVENTS)
    # every v1 event type but workflow.canceled (which cannot follow success; events_v1.log has it)
    assert {e.__struct_config__.tag for _, e in got} == set(EVENT_TAGS_V1) - {"workflow.canceled"}


async def test_the_old_schema_log_folds_to_exactly_this_state(old_log_storage):
    state = await load_state(old_log_storage, OLD_LOG_ID)
    assert state.status is WorkflowStatus.SUCCESSFUL
    for task_id, want in OLD_LOG_STATE.tasks.items():
        assert state.tasks.get(task_id) == want, f"task {task_id!r} folds differently"
    assert state == OLD_LOG_STATE
    assert state.completed_outputs() == {"load": _LOAD_OUT, "plan": _FINAL, "plan.out": _FINAL}
    assert state.continuation_chain("plan") == ["plan", "plan.out"]
    # the same fold, fed the decoded events directly, and prefix by prefix: the run failed at seq 14
    assert fold(OLD_LOG_EVENTS) == OLD_LOG_STATE
    at_14 = fold(OLD_LOG_EVENTS[:15])
    assert (at_14.status, at_14.failed_task_id, at_14.error_type) == (WorkflowStatus.FAILED, "plan.out", "OSError")


async def test_the_old_schema_log_is_read_by_a_writer_that_then_refuses_to_fork_it(old_log_storage):
    from storage_backends import AppendConflictError

    with pytest.raises(AppendConflictError):
        await old_log_storage.append(OLD_LOG_ID, [b"\x01"], 20)
    assert _golden_sha256(str(old_log_storage.root) + f"/{OLD_LOG_ID}/events.log") == OLD_LOG_SHA256


# --- golden log 2: one event of every v1 type, decoded ----------------------------------------

# The event types of format 1 when the golden logs were written. New types may be added; these stay.
EVENT_TAGS_V1 = frozenset({
    "workflow.submitted", "workflow.run_started", "task.scheduled", "task.started", "task.completed",
    "task.failed", "task.retried", "task.continued", "workflow.cancel_requested", "workflow.succeeded",
    "workflow.failed", "workflow.canceled",
})


def test_every_v1_tag_is_still_known():
    assert EVENT_TAGS_V1 <= EVENT_TAGS, "an event type was removed or its tag renamed: stored logs break"


GOLDEN_LOG = os.path.join(GOLDEN_DIR, "events_v1.log")
GOLDEN_SHA256 = "fa3c0ce431830ea54ab5462f4e217918177bc228a4c74ed82d85d8eeeba91b9d"
GOLDEN_BATCH_OFFSETS = [0, 348, 429, 429, 429, 891, 891, 891, 891, 1292, 1292, 1292, 1292, 1292]

# Exactly what the file holds, as plain msgpack data (independent of the schema classes).
GOLDEN_RAW = [
    {'type': 'workflow.submitted', 'workflow_id': 'golden-v1', 'dag': {'size': 2048, 'digest': 'd' * 32, 'type_name': 'engine._graph.WorkflowGraph', 'blob': 'dag'}, 'user_metadata': {'owner': 'ci', 'n': 3, 'tags': ['a', 'b']}, 'ray_version': '2.48.0', 'engine_version': '0.1.0', 'python_version': '3.11.7', 'runtime_env': {'pip': ['requests==2.32.0']}, 'packages': {'msgspec': '0.22.0'}, 'ts': 1700000000.0},  # noqa: E501
    {'type': 'workflow.run_started', 'run_id': 'run-1', 'ts': 1700000001.0},
    {'type': 'task.scheduled', 'task_id': 'a', 'name': 'demo.step', 'task_options': {'num_cpus': 1, 'max_retries': 2}, 'user_metadata': {'k': 'v'}, 'ts': 1700000002.0},  # noqa: E501
    {'type': 'task.started', 'task_id': 'a', 'node_id': 'node-1', 'pid': 4242, 'ts': 1700000003.0},
    {'type': 'task.failed', 'task_id': 'a', 'error_type': 'ValueError', 'message': 'flaky', 'traceback': 'Traceback (most recent call last):\n  ...\nValueError: flaky\n', 'error': {'size': 6, 'digest': '51fa01f6e7f5281844e6c0bca714f94a', 'type_name': 'builtins.ValueError', 'inline': b'\x80\x04err.'}, 'ts': 1700000004.0},  # noqa: E501
    {'type': 'task.retried', 'task_id': 'a', 'attempt': 2, 'delay_s': 0.5, 'ts': 1700000005.0},
    {'type': 'task.started', 'task_id': 'a', 'attempt': 2, 'node_id': 'node-2', 'pid': 4243, 'ts': 1700000006.0},
    {'type': 'task.completed', 'task_id': 'a', 'output': {'size': 5, 'digest': '277747ab7f57ae2fcaf21ac436ec8f77', 'type_name': 'builtins.int', 'inline': b'\x80\x04K*.'}, 'attempt': 2, 'ts': 1700000007.0},  # noqa: E501
    {'type': 'task.scheduled', 'task_id': 'b', 'name': 'demo.fan', 'parent_task_id': 'a', 'ts': 1700000008.0},
    {'type': 'task.continued', 'task_id': 'b', 'dag': {'size': 512, 'digest': 'c' * 32, 'blob': 'b-dag'}, 'output_task_id': 'b.0', 'ts': 1700000009.0},  # noqa: E501
    {'type': 'workflow.cancel_requested', 'reason': 'user asked', 'ts': 1700000010.0},
    {'type': 'workflow.failed', 'task_id': 'b', 'error_type': 'RuntimeError', 'message': 'boom', 'ts': 1700000011.0},
    {'type': 'workflow.succeeded', 'output': {'size': 70000, 'digest': 'e' * 32, 'type_name': 'builtins.dict', 'blob': 'output'}, 'ts': 1700000012.25},  # noqa: E501
    {'type': 'workflow.canceled', 'ts': 1700000013.0},
]

# What the current schema must make of it.
GOLDEN_EVENTS = [
    WorkflowSubmitted(ts=T0, workflow_id="golden-v1",
                      dag=PayloadRef(size=2048, digest="d" * 32, type_name="engine._graph.WorkflowGraph", blob="dag"),
                      user_metadata={"owner": "ci", "n": 3, "tags": ["a", "b"]}, ray_version="2.48.0",
                      engine_version="0.1.0", python_version="3.11.7", runtime_env={"pip": ["requests==2.32.0"]},
                      packages={"msgspec": "0.22.0"}),
    WorkflowRunStarted(ts=T0 + 1, run_id="run-1", resumed=False),
    TaskScheduled(ts=T0 + 2, task_id="a", name="demo.step", attempt=1,
                  task_options={"num_cpus": 1, "max_retries": 2}, user_metadata={"k": "v"}, parent_task_id=None),
    TaskStarted(ts=T0 + 3, task_id="a", attempt=1, node_id="node-1", pid=4242),
    TaskFailed(ts=T0 + 4, task_id="a", error_type="ValueError", message="flaky",
               traceback="Traceback (most recent call last):\n  ...\nValueError: flaky\n", attempt=1,
               error=PayloadRef(size=6, digest="51fa01f6e7f5281844e6c0bca714f94a", type_name="builtins.ValueError",
                                codec="cloudpickle", blob=None, inline=b"\x80\x04err.")),
    TaskRetried(ts=T0 + 5, task_id="a", attempt=2, delay_s=0.5),
    TaskStarted(ts=T0 + 6, task_id="a", attempt=2, node_id="node-2", pid=4243),
    TaskCompleted(ts=T0 + 7, task_id="a", attempt=2,
                  output=PayloadRef(size=5, digest="277747ab7f57ae2fcaf21ac436ec8f77", type_name="builtins.int",
                                    inline=b"\x80\x04K*.")),
    TaskScheduled(ts=T0 + 8, task_id="b", name="demo.fan", parent_task_id="a"),
    TaskContinued(ts=T0 + 9, task_id="b", dag=PayloadRef(size=512, digest="c" * 32, blob="b-dag"),
                  output_task_id="b.0", attempt=1),
    CancelRequested(ts=T0 + 10, reason="user asked"),
    WorkflowFailed(ts=T0 + 11, task_id="b", error_type="RuntimeError", message="boom"),
    WorkflowSucceeded(ts=T0 + 12.25, output=PayloadRef(size=70000, digest="e" * 32, type_name="builtins.dict",
                                                       codec="cloudpickle", blob="output")),
    WorkflowCanceled(ts=T0 + 13),
]


def test_the_golden_log_is_the_committed_one():
    assert _golden_sha256(GOLDEN_LOG) == GOLDEN_SHA256, (
        "tests/replay/golden/events_v1.log changed. It stands for logs already on users' disks, "
        "which cannot be regenerated: restore it (git checkout) instead of regenerating it."
    )


@pytest.fixture
async def golden_storage(tmp_path):
    os.makedirs(tmp_path / "store" / "golden-v1")
    shutil.copyfile(GOLDEN_LOG, tmp_path / "store" / "golden-v1" / "events.log")
    storage = LocalStorage(str(tmp_path / "store"))
    yield storage
    await storage.close()


async def test_the_golden_log_frames_and_raw_contents(golden_storage):
    records = await golden_storage.read_all("golden-v1")
    assert [r.seq for r in records] == list(range(14))
    assert [r.offset for r in records] == GOLDEN_BATCH_OFFSETS
    assert await golden_storage.next_seq("golden-v1") == 14
    assert [decode_raw(r.data) for r in records] == GOLDEN_RAW


async def test_the_golden_log_decodes_to_exactly_these_events(golden_storage):
    seqs_events = [(seq, event) async for seq, event in read_events(golden_storage, "golden-v1")]
    assert [seq for seq, _ in seqs_events] == list(range(14))
    events = [event for _, event in seqs_events]
    for i, (got, want) in enumerate(zip(events, GOLDEN_EVENTS)):
        assert type(got) is type(want), f"record {i}"
        assert got == want, f"record {i} decodes differently"
    assert len(events) == len(GOLDEN_EVENTS)
    assert {e.__struct_config__.tag for e in events} == {r["type"] for r in GOLDEN_RAW} == EVENT_TAGS_V1


async def test_the_golden_log_can_be_continued(golden_storage):
    """A current writer appends to an old log at the right seq, and the old part is unchanged."""
    from replay import append_events

    more = [WorkflowRunStarted(ts=T0 + 20, run_id="run-2", resumed=True)]
    assert await append_events(golden_storage, "golden-v1", more, 14) == 15
    events = [event async for _seq, event in read_events(golden_storage, "golden-v1")]
    assert events == GOLDEN_EVENTS + more
