"""A driver for the event crash test: ``python -m tests.engine.events_driver STORAGE WID``.

It starts its own Ray cluster, so kill -9 of this process takes the cluster, the manager
actor and the sleeping run with it: a real crash in the middle of a 4 s sleep.
"""

import sys

import ray

import engine as workflow
from tests.engine import event_tasks


def main() -> None:
    storage, workflow_id = sys.argv[1:3]
    ray.init(address="local", include_dashboard=False, num_cpus=1, log_to_driver=False)
    workflow.init(storage)
    print("RESULT", workflow.run(event_tasks.stamp.bind(workflow.sleep(4)), workflow_id=workflow_id), flush=True)


if __name__ == "__main__":
    main()
