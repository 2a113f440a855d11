"""A long-lived driver for the two-driver race: reads "resume WID" lines, prints one result line each."""

import os
import sys

import ray

import engine as workflow


def main() -> None:
    storage = sys.argv[1]
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test session's cluster, on purpose
    workflow.init(storage)
    print("READY", flush=True)
    for line in sys.stdin:
        _verb, workflow_id = line.split()
        try:
            print("OK", workflow_id, workflow.resume(workflow_id), flush=True)
        except workflow.WorkflowRunningError as exc:
            print("RUNNING", workflow_id, str(exc).replace("\n", " "), flush=True)
        except Exception as exc:  # reported, so the test shows it
            print("ERROR", workflow_id, type(exc).__name__, exc, flush=True)


if __name__ == "__main__":
    main()
