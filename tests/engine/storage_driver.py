"""A driver for the cluster-storage tests: ``python -m tests.engine.storage_driver MODE [STORAGE] WID``.

Joins the cluster in $RAY_ADDRESS. Modes:

* ``explicit STORAGE WID``: ``workflow.init(STORAGE)``, then run a workflow;
* ``implicit WID``: no ``workflow.init`` at all, as a second driver of ray.workflow would;
* ``in-task WID``: the same from inside a Ray task (the Getting Started page's "Workflows can be
  launched from within a Ray task or actor");
* ``kill STORAGE``: kill the manager actor of STORAGE (as if its cluster lost it).

Prints ``STORAGE <url>``, ``RESULT <output>`` and ``LISTED <ids>``, or ``ERROR <type>: <message>``;
engine log lines (INFO and up) go to stderr.
"""

import logging
import os
import sys

import ray

import engine as workflow
from engine._names import NAMESPACE, manager_name
from engine.api._init import context
from engine.store._spec import StorageSpec
from tests.engine import tasks


@ray.remote
def launch(workflow_id: str):
    """A Ray task that runs a workflow: its process has no workflow.init of its own."""
    return workflow.run(tasks.add.bind(1, 2), workflow_id=workflow_id)


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    mode, *args = sys.argv[1:]
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test's cluster, on purpose
    if mode == "kill":
        ray.kill(ray.get_actor(manager_name(StorageSpec.from_url(args[0]).key), namespace=NAMESPACE))
        print("KILLED", flush=True)
        return
    if mode == "explicit":
        workflow.init(args[0])
    workflow_id = args[-1]
    try:
        if mode == "in-task":
            result = ray.get(launch.remote(workflow_id))
        else:
            result = workflow.run(tasks.add.bind(1, 2), workflow_id=workflow_id)
    except Exception as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        return
    print("STORAGE", context().storage_url, flush=True)
    print("RESULT", result, flush=True)
    print("LISTED", " ".join(w for w, _ in workflow.list_all()), flush=True)


if __name__ == "__main__":
    main()
