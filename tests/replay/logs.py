"""Building workflow logs for the replay tests: events with fixed timestamps, written for real.

``LogBuilder`` makes legal event sequences read like the run they describe;
``write_log`` appends them through :func:`replay.append_events` into a real
storage backend (local or S3), in whatever batches the test asks for.
"""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Sequence

from replay import (
    CancelRequested,
    Event,
    EventAwaited,
    EventReceived,
    ForkOrigin,
    PayloadRef,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskForked,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    TimerSet,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowSubmitted,
    WorkflowSucceeded,
    append_events,
)
from storage_backends import open_storage

T0 = 1_700_000_000.0  # 2023-11-14 22:13:20 UTC


def payload(value, blob: str | None = None) -> PayloadRef:
    """A real payload of ``value`` (inline unless a blob name is given).

    Pickled with the stdlib at protocol 4, which cloudpickle reads and whose
    bytes (hence sizes and digests in golden files) do not change between
    Python or cloudpickle versions.
    """
    data = pickle.dumps(value, protocol=4)
    cls = type(value)
    ref = PayloadRef(size=len(data), digest=hashlib.blake2b(data, digest_size=16).hexdigest(),
                     type_name=f"{cls.__module__}.{cls.__qualname__}")
    if blob is None:
        ref.inline = data
    else:
        ref.blob = blob
    return ref


class LogBuilder:
    """Appends events at a clock that only moves when told to (``dt`` seconds per call)."""

    def __init__(self, workflow_id: str, t0: float = T0):
        self.workflow_id = workflow_id
        self.t = t0
        self.events: list[Event] = []

    def _add(self, event_type, dt: float, **fields) -> LogBuilder:
        self.t = round(self.t + dt, 6)
        self.events.append(event_type(ts=self.t, **fields))
        return self

    def submit(self, metadata=None, dt=0.0, **fields):
        return self._add(WorkflowSubmitted, dt, workflow_id=self.workflow_id, dag=payload({"dag": "tests"}),
                         user_metadata=metadata or {}, **fields)

    def run(self, run_id: str, resumed: bool = False, dt=0.1):
        return self._add(WorkflowRunStarted, dt, run_id=run_id, resumed=resumed)

    def schedule(self, task_id: str, name: str | None = None, attempt=1, parent=None, dt=0.01):
        return self._add(TaskScheduled, dt, task_id=task_id, name=name or f"tests.{task_id.split('@')[0]}",
                         attempt=attempt, parent_task_id=parent)

    def start(self, task_id: str, attempt=1, dt=0.05):
        return self._add(TaskStarted, dt, task_id=task_id, attempt=attempt, node_id="node-1", pid=4242)

    def complete(self, task_id: str, value=None, attempt=1, dt=0.5, ref: PayloadRef | None = None):
        return self._add(TaskCompleted, dt, task_id=task_id, attempt=attempt,
                         output=ref if ref is not None else payload(value if value is not None else task_id))

    def fail(self, task_id: str, error_type="ValueError", message="boom", attempt=1, dt=0.25):
        return self._add(TaskFailed, dt, task_id=task_id, error_type=error_type, message=message,
                         traceback=f"Traceback (most recent call last):\n  ...\n{error_type}: {message}",
                         attempt=attempt)

    def retry(self, task_id: str, attempt: int, dt=0.01):
        return self._add(TaskRetried, dt, task_id=task_id, attempt=attempt)

    def continue_into(self, task_id: str, output_task_id: str, attempt=1, dt=0.2):
        return self._add(TaskContinued, dt, task_id=task_id, dag=payload({"sub": output_task_id}),
                         output_task_id=output_task_id, attempt=attempt)

    def cancel_requested(self, dt=0.01):
        return self._add(CancelRequested, dt, reason="tests")

    def succeed(self, value=None, dt=0.01, ref: PayloadRef | None = None):
        return self._add(WorkflowSucceeded, dt, output=ref if ref is not None else payload(value))

    def workflow_failed(self, task_id: str, error_type="ValueError", message="boom", dt=0.01):
        return self._add(WorkflowFailed, dt, task_id=task_id, error_type=error_type, message=message)

    def canceled(self, dt=0.01):
        return self._add(WorkflowCanceled, dt)

    def forked(self, task_id: str, value=None, source_seq=0, dt=0.0, ref: PayloadRef | None = None):
        return self._add(TaskForked, dt, task_id=task_id, name=f"tests.{task_id}", source_seq=source_seq,
                         output=ref if ref is not None else payload(value if value is not None else task_id))


# --- the scenarios the tool tests (and golden files) use -------------------------------------------

def retry_and_continuation(workflow_id: str = "golden-retry") -> LogBuilder:
    """Succeeds: ``b`` fails once and is retried; ``merge`` continues into ``top@1``."""
    b = LogBuilder(workflow_id)
    b.submit(metadata={"owner": "tests", "ticket": 42}, engine_version="0.1.0", ray_version="2.48.0",
             python_version="3.11.7")
    b.run("run-1")
    b.schedule("a").schedule("b").start("a").start("b", dt=0.0)
    b.complete("a", {"words": 3}).fail("b", message="flaky network")
    b.retry("b", 2).start("b", attempt=2).complete("b", {"words": 5}, attempt=2)
    b.schedule("merge").start("merge").continue_into("merge", "top@1")
    b.schedule("top@1", parent="merge").start("top@1").complete("top@1", [("ray", 2), ("log", 1)], dt=0.3)
    b.succeed([("ray", 2), ("log", 1)])
    return b


def resumed_after_failure(workflow_id: str = "golden-resumed") -> LogBuilder:
    """Fails in run 1 (``c`` was in flight), is resumed, and succeeds in run 2."""
    b = LogBuilder(workflow_id)
    b.submit(metadata={"owner": "tests"})
    b.run("run-1")
    b.schedule("a").schedule("c").start("a").start("c", dt=0.0)
    b.fail("a", error_type="KeyError", message="'missing'")
    b.workflow_failed("a", error_type="KeyError", message="'missing'")
    b.run("run-2", resumed=True, dt=5.0)
    b.schedule("a", attempt=2).schedule("c", attempt=2)
    b.start("a", attempt=2).start("c", attempt=2, dt=0.0)
    b.complete("a", 1, attempt=2).complete("c", 2, attempt=2, dt=0.1)
    b.succeed(3)
    return b


def failed(workflow_id: str = "golden-failed") -> LogBuilder:
    """Fails for good: ``flaky`` fails all three attempts."""
    b = LogBuilder(workflow_id)
    b.submit()
    b.run("run-1")
    b.schedule("ok").start("ok").complete("ok", 1)
    b.schedule("flaky").start("flaky").fail("flaky", error_type="RuntimeError", message="attempt 1 failed")
    for attempt in (2, 3):
        b.retry("flaky", attempt).start("flaky", attempt=attempt)
        b.fail("flaky", error_type="RuntimeError", message=f"attempt {attempt} failed", attempt=attempt)
    b.workflow_failed("flaky", error_type="RuntimeError", message="attempt 3 failed")
    return b


def running(workflow_id: str = "golden-running") -> LogBuilder:
    """Still running (as far as the log knows): one task done, one in flight."""
    b = LogBuilder(workflow_id)
    b.submit()
    b.run("run-1")
    b.schedule("done").schedule("busy").start("done").complete("done", 1).start("busy")
    return b


def waits(workflow_id: str = "golden-waits") -> LogBuilder:
    """A sleep that fired, an HTTP event received from the mailbox, and a listener still waiting
    when the run stopped (a crash), then resumed and received."""
    b = LogBuilder(workflow_id)
    b.submit()
    b.run("run-1")
    b.schedule("engine.sleep").schedule("engine.wait_for_event").schedule("engine.wait_for_event_1")
    b._add(TimerSet, 0.01, task_id="engine.sleep", deadline=round(b.t + 2.0, 6))
    b._add(EventAwaited, 0.01, task_id="engine.wait_for_event", event_key="approval",
           listener="engine.http_event_provider.HTTPListener")
    b._add(EventAwaited, 0.01, task_id="engine.wait_for_event_1", listener="tests.FileListener")
    b._add(EventReceived, 0.7, task_id="engine.wait_for_event", payload=payload({"by": "ops"}),
           event_key="approval", mailbox_seq=0)
    b.complete("engine.wait_for_event", ("approval", {"by": "ops"}), dt=0.01)
    b.complete("engine.sleep", ref=payload(None), dt=1.3)
    b.run("run-2", resumed=True, dt=4.0).schedule("engine.wait_for_event_1", attempt=2)
    b._add(EventAwaited, 0.01, task_id="engine.wait_for_event_1", attempt=2, listener="tests.FileListener")
    b._add(EventReceived, 0.5, task_id="engine.wait_for_event_1", attempt=2, payload=payload("file content"))
    b.complete("engine.wait_for_event_1", "file content", attempt=2, dt=0.01)
    return b


def forked(workflow_id: str = "golden-forked") -> LogBuilder:
    """A fork of ``golden-failed`` from ``flaky``: ``ok`` (inline) and ``big`` (the source's
    blob) reused, ``flaky`` run again and succeeding."""
    b = LogBuilder(workflow_id)
    b.submit(forked_from=ForkOrigin(workflow_id="golden-failed", seq=14, from_task="flaky"))
    big = payload("x" * 100, blob="out-0123456789abcdef0123-1")
    big.log = "golden-failed"
    b.forked("ok", 1, source_seq=14).forked("big", ref=big, source_seq=14)
    b.run("run-1")
    b.schedule("flaky").start("flaky").complete("flaky", 2)
    b.succeed(3)
    return b


SCENARIOS = {
    "retry_and_continuation": retry_and_continuation,
    "resumed_after_failure": resumed_after_failure,
    "failed": failed,
    "running": running,
    "waits": waits,
    "forked": forked,
}


# --- writing for real -------------------------------------------------------------------------------

async def write_log(url: str, options: dict, workflow_id: str, events: Sequence[Event],
                    batches: Sequence[int] | None = None) -> None:
    """Append ``events`` to a real storage log, in batches of the given sizes (default: 3 at a time)."""
    storage = open_storage(url, **options)
    try:
        seq = 0
        sizes = list(batches) if batches is not None else []
        while seq < len(events):
            size = sizes.pop(0) if sizes else 3
            seq = await append_events(storage, workflow_id, list(events[seq:seq + size]), seq)
    finally:
        await storage.close()
