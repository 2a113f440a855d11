"""Write the golden binary logs of tests/replay/golden/ (run once; the outputs are committed).

    .venv/bin/python tests/replay/golden/make_old_schema_log.py [--check]

Two logs, both written by the format-1 schema as it was when they were made,
through the real local backend (LocalStorage, so the framing is the real one):

* ``old_schema_v1.log`` (workflow "old-schema-v1"): a *legal* history that
  folds: a failure and a retry, a continuation into a sub-DAG, a failed run,
  a resumed run, a cancel request, success. 21 events in 8 batches, covering
  every event type but ``workflow.canceled`` (which cannot follow success).
* ``events_v1.log`` (workflow "golden-v1"): one event of *every* type of the
  v1 schema, payloads inline and as blob names, in 5 batches. Not a legal
  history (it fails, succeeds and is canceled); it pins decoding only.

tests/replay/test_schema_evolution.py reads them back with the *current*
decoder and fold and checks every field, so a schema or framing change that
would make stored logs unreadable (or read differently) fails.

Do not regenerate them to make that test pass: a stored log cannot be
regenerated either. ``--check`` regenerates into a temp dir and compares,
byte for byte, with the committed files.
"""

from __future__ import annotations

import asyncio
import filecmp
import hashlib
import os
import shutil
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
sys.path.insert(0, REPO)

from replay import (  # noqa: E402
    CancelRequested,
    PayloadRef,
    TaskCompleted,
    TaskContinued,
    TaskFailed,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    WorkflowCanceled,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowSubmitted,
    WorkflowSucceeded,
    append_events,
)
from storage_backends import LocalStorage  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = 1_700_000_000.0


def inline(data: bytes, type_name: str) -> PayloadRef:
    return PayloadRef(size=len(data), digest=hashlib.blake2b(data, digest_size=16).hexdigest(),
                      type_name=type_name, inline=data)


# --- old_schema_v1.log: a legal history ---------------------------------------------------

OLD_SCHEMA_ID = "old-schema-v1"
OLD_SCHEMA_BATCHES = [1, 1, 6, 3, 1, 2, 3, 4]


def old_schema_events() -> list:
    return [
        WorkflowSubmitted(ts=T0, workflow_id=OLD_SCHEMA_ID,
                          dag=PayloadRef(size=4096, digest="a" * 32, type_name="engine._graph.WorkflowGraph",
                                         blob="dag"),
                          user_metadata={"team": "data", "priority": 2}, ray_version="2.47.1",
                          engine_version="0.1.0", python_version="3.10.14",
                          runtime_env={"env_vars": {"MODE": "batch"}}, packages={"cloudpickle": "3.1.1"}),
        WorkflowRunStarted(ts=T0 + 1, run_id="run-1"),
        # 2..7: task "load" fails, is retried, succeeds on attempt 2
        TaskScheduled(ts=T0 + 2, task_id="load", name="etl.load", task_options={"num_cpus": 2, "max_retries": 1},
                      user_metadata={"source": "s3"}),
        TaskStarted(ts=T0 + 3, task_id="load", node_id="node-a", pid=1001),
        TaskFailed(ts=T0 + 4, task_id="load", error_type="ConnectionError", message="reset by peer",
                   traceback="Traceback (most recent call last):\n  ...\nConnectionError: reset by peer\n",
                   error=inline(b"\x80\x04conn.", "builtins.ConnectionError")),
        TaskRetried(ts=T0 + 5, task_id="load", attempt=2, delay_s=0.25),
        TaskStarted(ts=T0 + 6, task_id="load", attempt=2, node_id="node-b", pid=1002),
        TaskCompleted(ts=T0 + 7, task_id="load", attempt=2, output=inline(b"\x80\x04K\x07.", "builtins.int")),
        # 8..10: task "plan" returns a sub-DAG whose output task is "plan.out"
        TaskScheduled(ts=T0 + 8, task_id="plan", name="etl.plan", parent_task_id="load"),
        TaskStarted(ts=T0 + 9, task_id="plan", node_id="node-a", pid=1003),
        TaskContinued(ts=T0 + 10, task_id="plan", dag=PayloadRef(size=900, digest="b" * 32, blob="plan-dag"),
                      output_task_id="plan.out"),
        # 11..14: the sub-DAG's task fails and so does the run
        TaskScheduled(ts=T0 + 11, task_id="plan.out", name="etl.write", parent_task_id="plan"),
        TaskStarted(ts=T0 + 12, task_id="plan.out", node_id="node-c", pid=1004),
        TaskFailed(ts=T0 + 13, task_id="plan.out", error_type="OSError", message="disk full"),
        WorkflowFailed(ts=T0 + 14, task_id="plan.out", error_type="OSError", message="disk full"),
        # 15..20: resumed; a cancel is requested but the last task finishes first
        WorkflowRunStarted(ts=T0 + 15, run_id="run-2", resumed=True),
        TaskScheduled(ts=T0 + 16, task_id="plan.out", name="etl.write", attempt=2, parent_task_id="plan"),
        TaskStarted(ts=T0 + 17, task_id="plan.out", attempt=2, node_id="node-c", pid=1005),
        CancelRequested(ts=T0 + 18, reason="operator asked"),
        TaskCompleted(ts=T0 + 19, task_id="plan.out", attempt=2,
                      output=PayloadRef(size=123456, digest="c" * 32, type_name="builtins.dict", blob="plan.out")),
        WorkflowSucceeded(ts=T0 + 20.5,
                          output=PayloadRef(size=123456, digest="c" * 32, type_name="builtins.dict",
                                            blob="plan.out")),
    ]


# --- events_v1.log: every event type, decode only -------------------------------------------

EVERY_TYPE_ID = "golden-v1"
EVERY_TYPE_BATCHES = [1, 1, 3, 4, 5]


def every_type_events() -> list:
    return [
        WorkflowSubmitted(ts=T0, workflow_id=EVERY_TYPE_ID,
                          dag=PayloadRef(size=2048, digest="d" * 32, type_name="engine._graph.WorkflowGraph",
                                         blob="dag"),
                          user_metadata={"owner": "ci", "n": 3, "tags": ["a", "b"]}, ray_version="2.48.0",
                          engine_version="0.1.0", python_version="3.11.7",
                          runtime_env={"pip": ["requests==2.32.0"]}, packages={"msgspec": "0.22.0"}),
        WorkflowRunStarted(ts=T0 + 1, run_id="run-1"),
        TaskScheduled(ts=T0 + 2, task_id="a", name="demo.step", task_options={"num_cpus": 1, "max_retries": 2},
                      user_metadata={"k": "v"}),
        TaskStarted(ts=T0 + 3, task_id="a", node_id="node-1", pid=4242),
        TaskFailed(ts=T0 + 4, task_id="a", error_type="ValueError", message="flaky",
                   traceback="Traceback (most recent call last):\n  ...\nValueError: flaky\n",
                   error=inline(b"\x80\x04err.", "builtins.ValueError")),
        TaskRetried(ts=T0 + 5, task_id="a", attempt=2, delay_s=0.5),
        TaskStarted(ts=T0 + 6, task_id="a", attempt=2, node_id="node-2", pid=4243),
        TaskCompleted(ts=T0 + 7, task_id="a", output=inline(b"\x80\x04K*.", "builtins.int"), attempt=2),
        TaskScheduled(ts=T0 + 8, task_id="b", name="demo.fan", parent_task_id="a"),
        TaskContinued(ts=T0 + 9, task_id="b", dag=PayloadRef(size=512, digest="c" * 32, blob="b-dag"),
                      output_task_id="b.0"),
        CancelRequested(ts=T0 + 10, reason="user asked"),
        WorkflowFailed(ts=T0 + 11, task_id="b", error_type="RuntimeError", message="boom"),
        WorkflowSucceeded(ts=T0 + 12.25, output=PayloadRef(size=70000, digest="e" * 32, codec="cloudpickle",
                                                           type_name="builtins.dict", blob="output")),
        WorkflowCanceled(ts=T0 + 13),
    ]


LOGS = {  # file name -> (workflow id, events, batch sizes)
    "old_schema_v1.log": (OLD_SCHEMA_ID, old_schema_events, OLD_SCHEMA_BATCHES),
    "events_v1.log": (EVERY_TYPE_ID, every_type_events, EVERY_TYPE_BATCHES),
}


async def write(name: str, path: str) -> None:
    workflow_id, make_events, batches = LOGS[name]
    root = tempfile.mkdtemp(prefix="make-golden-")
    try:
        storage = LocalStorage(root)
        evs, seq = make_events(), 0
        for size in batches:
            seq = await append_events(storage, workflow_id, evs[seq:seq + size], seq)
        assert seq == len(evs)
        await storage.close()
        shutil.copyfile(os.path.join(root, workflow_id, "events.log"), path)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str]) -> int:
    check = "--check" in argv
    out_dir = tempfile.mkdtemp(prefix="golden-check-") if check else HERE
    status = 0
    try:
        for name in LOGS:
            path = os.path.join(out_dir, name)
            if not check and os.path.exists(path):
                print(f"{path} exists: kept (stored logs are never regenerated)")
                continue
            asyncio.run(write(name, path))
            with open(path, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
            if check:
                same = filecmp.cmp(path, os.path.join(HERE, name), shallow=False)
                print(f"{name}: {'identical' if same else 'DIFFERS'} (sha256 {digest})")
                status |= not same
            else:
                print(f"wrote {path}: {os.path.getsize(path)} bytes, sha256 {digest}")
    finally:
        if check:
            shutil.rmtree(out_dir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
