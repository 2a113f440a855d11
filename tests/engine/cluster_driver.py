"""A driver for the cluster-failure test: ``python -m tests.engine.cluster_driver run|resume STORAGE COUNTER``.

Joins the cluster in $RAY_ADDRESS (started with ``ray start --head``).
"""

import os
import sys

import ray

import engine as workflow
from tests.engine import tasks


def main() -> None:
    mode, storage, counter = sys.argv[1:4]
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test's `ray start` cluster, on purpose
    workflow.init(storage)
    if mode == "run":
        node = 0
        for index in range(8):
            node = tasks.counted_slow_step.bind(node, counter, index)
        ref = workflow.run_async(node, workflow_id="cluster-wf")
        print("SUBMITTED", flush=True)
        print("RESULT", ray.get(ref), flush=True)
    else:
        print("STATUS", workflow.get_status("cluster-wf"), flush=True)
        print("LISTED", workflow.list_all("RESUMABLE"), flush=True)
        resumed = workflow.resume_all()
        print("RESUMED", [w for w, _ in resumed], flush=True)
        print("RESULT", ray.get(resumed[0][1]), flush=True)


if __name__ == "__main__":
    main()
