"""The crash matrix's workflow and its driver process.

``python -m tests.reliability.crash_workflow run STORAGE WID SIDE TEMP_DIR [ENDPOINT]``
starts a Ray cluster of its own (in TEMP_DIR), prints ``MANAGER <pid>`` and ``STARTED`` once
the workflow is claimed, then ``RESULT <value>``, or ``INTERRUPTED <message>`` (exit 3) if its
manager dies. ``... resume STORAGE WID SIDE - [ENDPOINT]`` joins the cluster in
``$RAY_ADDRESS`` and resumes the workflow: ``STATUS <status>`` then ``RESULT <value>``.

The workflow has 50 tasks: a chain of 25 (``c00`` ... ``c24``), a fan-out of 24 from the
chain's end (``b00`` ... ``b23``) and a fan-in (``sum``). Each task first appends its id to
the side file SIDE (the side effect a crash may repeat), then works for a few milliseconds.
"""

from __future__ import annotations

import os
import sys
import time

import ray

import engine as workflow

CHAIN, FAN = 25, 24
PAUSE_S = 0.03
TASK_IDS = [f"c{i:02d}" for i in range(CHAIN)] + [f"b{i:02d}" for i in range(FAN)] + ["sum"]
EXPECTED = sum(range(CHAIN)) * sum(range(1, FAN + 1))


def _note(side: str, task_id: str) -> None:
    with open(side, "a") as f:  # one short O_APPEND write per line: lines never interleave
        f.write(task_id + "\n")


@ray.remote
def step(prev: int, index: int, side: str, task_id: str) -> int:
    _note(side, task_id)
    time.sleep(PAUSE_S)
    return prev + index


@ray.remote
def branch(base: int, factor: int, side: str, task_id: str) -> int:
    _note(side, task_id)
    time.sleep(PAUSE_S)
    return base * factor


@ray.remote
def total(side: str, *values: int) -> int:
    _note(side, "sum")
    return sum(values)


def dag(side: str):
    node = 0
    for i in range(CHAIN):
        task_id = f"c{i:02d}"
        node = workflow.options(task_id=task_id)(step).bind(node, i, side, task_id)
    branches = [workflow.options(task_id=f"b{i:02d}")(branch).bind(node, i + 1, side, f"b{i:02d}")
                for i in range(FAN)]
    return workflow.options(task_id="sum")(total).bind(side, *branches)


def main() -> None:
    mode, storage, workflow_id, side, temp_dir = sys.argv[1:6]
    options = {"endpoint_url": sys.argv[6]} if len(sys.argv) > 6 else None
    if mode == "run":
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _temp_dir=temp_dir)
        workflow.init(storage, storage_options=options)
        from engine.api._init import context

        pid = ray.get(context().manager.__ray_call__.remote(lambda self: os.getpid()))
        print("MANAGER", pid, flush=True)
        ref = workflow.run_async(dag(side), workflow_id=workflow_id)
        print("STARTED", flush=True)
        try:
            print("RESULT", workflow.get_output(workflow_id), flush=True)
        except workflow.WorkflowError as exc:  # WorkflowInterruptedError; or, if the manager died
            # between STARTED and this call, the new one says it has no output yet: RESUMABLE
            print("INTERRUPTED", str(exc).replace("\n", " "), flush=True)
            sys.exit(3)
        del ref
    else:
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test's cluster, on purpose
        workflow.init(storage, storage_options=options)
        print("STATUS", workflow.get_status(workflow_id), flush=True)
        print("RESULT", workflow.resume(workflow_id), flush=True)


if __name__ == "__main__":
    main()
