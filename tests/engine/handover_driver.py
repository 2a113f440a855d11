"""A driver for the lost hand-over tests: ``python -m tests.engine.handover_driver MODE STORAGE ID...``.

Each mode starts its own local Ray cluster, so a kill -9 of this process takes the cluster,
its manager and its workers with it (a real crash):

* ``lost``: writes workflow ID's submission as ``run_async`` does, then kill -9s itself before
  the hand-over to the manager is sent (the window ``run_async`` leaves when it returns);
  ``lost-long-ago``: the same, the submission dated before the hand-over's grace;
* ``async``: ``run_async`` of ID, and kill -9 at once after it returned;
* ``queued``: with ``max_running_workflows=1``, ``run_async`` of two IDs (the first waits for
  a gate file, the second is queued behind it), kill -9 once the second is queued;
* ``await``: a new cluster of the same application: waits (without resume) until every ID
  is SUCCESSFUL, and prints ``RESULT <id> <output>`` for each;
* ``untouched``: a new cluster (of the application in ``$RAY_DURABLE_APPLICATION``) that must
  not take the IDs on: checks for 20 s that they stay RESUMABLE, and prints ``UNTOUCHED``.
"""

import os
import signal
import sys
import time

import msgspec
import ray

import engine as workflow
from engine.api import _workflows
from engine.api._init import context
from engine.runtime._recovery import HANDOVER_GRACE_S
from engine.store._sync import run_sync
from replay import decode_event, encode_event
from tests.engine import tasks


def main() -> None:
    mode, storage, *ids = sys.argv[1:]
    # (RAY_GCS_SERVER_PORT, if set, puts the cluster at a fixed port, as `ray start` does)
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False)
    if mode == "queued":
        workflow.init(storage, max_running_workflows=1)
        gate = os.path.join(os.path.dirname(storage.removeprefix("file://")), "gate")
        workflow.run_async(tasks.gated.bind(1, gate), workflow_id=ids[0])
        workflow.run_async(tasks.add.bind(2, 3), workflow_id=ids[1])
        deadline = time.monotonic() + 120
        while workflow.get_status(ids[1]) != workflow.PENDING or workflow.get_status(ids[0]) != workflow.RUNNING:
            assert time.monotonic() < deadline, "the second workflow was never queued"
            time.sleep(0.05)
        print("QUEUED", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
    workflow.init(storage)
    if mode == "lost":
        _workflows._submit_new(tasks.add.bind(20, 1), (), {}, ids[0], None)  # durable, not handed over
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "lost-long-ago":  # the same, as if it happened before the hand-over's grace
        submission, _env = _workflows._submission(tasks.add.bind(20, 1), ids[0], {}, ((), {}))
        event = msgspec.structs.replace(decode_event(submission), ts=time.time() - HANDOVER_GRACE_S - 5)
        run_sync(context().storage.append(ids[0], [encode_event(event)], 0))
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "async":
        workflow.run_async(tasks.add.bind(40, 2), workflow_id=ids[0])
        os.kill(os.getpid(), signal.SIGKILL)
    if mode == "untouched":
        until = time.monotonic() + 20
        while time.monotonic() < until:
            assert all(workflow.get_status(w) == workflow.RESUMABLE for w in ids), \
                {w: workflow.get_status(w) for w in ids}
            time.sleep(0.5)
        print("UNTOUCHED", flush=True)
        return
    deadline = time.monotonic() + 150
    for workflow_id in ids:
        while workflow.get_status(workflow_id) != workflow.SUCCESSFUL:
            assert time.monotonic() < deadline, f"{workflow_id} is {workflow.get_status(workflow_id)}"
            time.sleep(0.1)
        print("RESULT", workflow_id, workflow.get_output(workflow_id), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
