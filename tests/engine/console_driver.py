"""A driver whose console the console test reads: continuations, a caught failure, a worker
crash that is retried, a cancel. It prints only ``USER ...`` lines of its own; its tasks print
``USER task ...``. Usage: console_driver.py STORAGE_URL RAY_ADDRESS SCRATCH_DIR"""

import os
import sys
import time

import ray

import engine as workflow
from tests.engine.tasks import factorial


@ray.remote
def shout(x):
    print(f"USER task shout got {x}")
    return x


@ray.remote
def boom(x):
    raise ValueError(f"kaput {x}")


@ray.remote(max_retries=2)
def crash_once(path):
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(1)
    return 1


@ray.remote
def slow(seconds):
    time.sleep(seconds)
    return seconds


def main() -> None:
    url, address, scratch = sys.argv[1:4]
    workflow.init(url, address=address)
    print("USER factorial", workflow.run(shout.bind(factorial.bind(5)), workflow_id="fact"), flush=True)
    try:
        workflow.run(shout.bind(boom.bind(1)), workflow_id="bad")
    except workflow.WorkflowExecutionError as exc:
        print("USER caught", exc, flush=True)
    print("USER crash", workflow.run(shout.bind(crash_once.bind(os.path.join(scratch, "crashed"))),
                                     workflow_id="crash"), flush=True)
    ref = workflow.run_async(shout.bind(slow.bind(60)), workflow_id="slow")
    deadline = time.monotonic() + 60
    while workflow.get_status("slow") != workflow.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    workflow.cancel("slow")
    try:
        ray.get(ref)
    except workflow.WorkflowCancellationError:
        print("USER canceled", flush=True)
    time.sleep(2)  # Ray prints what reaches the driver's console asynchronously: give it time


if __name__ == "__main__":
    main()
