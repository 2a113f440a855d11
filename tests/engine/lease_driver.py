"""A driver on a cluster of its own for the lease tests:
``python -m tests.engine.lease_driver STORAGE WORKFLOW_ID COUNTER STEPS``.

Starts its own local Ray cluster, runs a chain of STEPS slow steps (each notes its index in
COUNTER) on a manager whose lease lasts 3 s, prints "SUBMITTED", then "RESULT <value>" or
"ERROR <type> <message>" when the run ends.
"""

import sys

import ray

import engine as workflow
from tests.engine import tasks


def main() -> None:
    storage, workflow_id, counter, steps = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    workflow.init(storage, lease_duration=3)
    node = 0
    for index in range(steps):
        node = tasks.counted_slow_step.bind(node, counter, index)
    ref = workflow.run_async(node, workflow_id=workflow_id)
    print("SUBMITTED", flush=True)
    try:
        print("RESULT", ray.get(ref), flush=True)
    except Exception as exc:
        print("ERROR", type(exc).__name__, str(exc).replace("\n", " ")[:500], flush=True)


if __name__ == "__main__":
    main()
