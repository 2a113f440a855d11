"""A driver for the cluster-failure test: ``python -m tests.engine.cluster_driver run|resume STORAGE COUNTER``.

Joins the cluster in $RAY_ADDRESS (started with ``ray start --head``). ``run`` starts the
workflow on a manager whose lease lasts 3 s; ``resume`` only initializes the engine on a new
cluster and waits: its manager takes the workflow on by itself once that lease expired.
"""

import os
import sys
import time

import ray

import engine as workflow
from tests.engine import tasks


def main() -> None:
    mode, storage, counter = sys.argv[1:4]
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test's `ray start` cluster, on purpose
    workflow.init(storage, lease_duration=3)
    if mode == "run":
        node = 0
        for index in range(8):
            node = tasks.counted_slow_step.bind(node, counter, index)
        ref = workflow.run_async(node, workflow_id="cluster-wf")
        print("SUBMITTED", flush=True)
        print("RESULT", ray.get(ref), flush=True)
    else:
        print("STATUS", workflow.get_status("cluster-wf"), flush=True)
        deadline = time.monotonic() + 120
        while workflow.get_status("cluster-wf") != workflow.SUCCESSFUL:
            assert time.monotonic() < deadline, workflow.get_status("cluster-wf")
            time.sleep(0.2)
        print("RESULT", workflow.get_output("cluster-wf"), flush=True)


if __name__ == "__main__":
    main()
