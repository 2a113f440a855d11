"""A long-lived driver for the two-driver race: reads "resume WID" lines, prints one result line each
(``OK WID VALUE``, ``RUNNING WID ...`` or ``ERROR WID ...``)."""

import os
import sys

import ray

import engine as workflow


def serve_resumes() -> None:
    """Say READY, then resume each workflow named on stdin and print how it went."""
    print("READY", flush=True)
    for line in sys.stdin:
        _verb, workflow_id = line.split()
        try:
            print("OK", workflow_id, workflow.resume(workflow_id), flush=True)
        except workflow.WorkflowRunningError as exc:
            print("RUNNING", workflow_id, str(exc).replace("\n", " "), flush=True)
        except Exception as exc:  # reported, so the test shows it
            print("ERROR", workflow_id, type(exc).__name__, str(exc).replace("\n", " "), flush=True)


def main() -> None:
    storage = sys.argv[1]
    ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)  # the test session's cluster, on purpose
    workflow.init(storage)
    serve_resumes()


if __name__ == "__main__":
    main()
