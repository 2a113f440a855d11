"""A driver with a Ray cluster of its own, for the two-cluster race: reads "resume WID" lines and
prints one result line each (``OK WID VALUE``, ``RUNNING WID ...`` or ``ERROR WID ...``).

``python -m tests.engine.cluster_race_driver STORAGE``
"""

import sys

import ray

import engine as workflow


def main() -> None:
    storage = sys.argv[1]
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    workflow.init(storage, recover=False)  # only the explicit resumes race
    print("READY", flush=True)
    for line in sys.stdin:
        _verb, workflow_id = line.split()
        try:
            print("OK", workflow_id, workflow.resume(workflow_id), flush=True)
        except workflow.WorkflowRunningError as exc:
            print("RUNNING", workflow_id, str(exc).replace("\n", " "), flush=True)
        except Exception as exc:  # reported, so the test shows it
            print("ERROR", workflow_id, type(exc).__name__, str(exc).replace("\n", " "), flush=True)


if __name__ == "__main__":
    main()
