"""A driver with a secret in its job's runtime env, for the security tests.

``python -m tests.reliability.secret_driver run STORAGE WID MARKER SECRET [ENDPOINT]`` joins the
cluster in ``$RAY_ADDRESS`` with ``runtime_env={"env_vars": {"API_TOKEN": SECRET}}`` and runs a
workflow that fails until MARKER exists; ``... resume STORAGE WID - VALUE [ENDPOINT]`` starts a
cluster of its own whose job supplies ``API_TOKEN=VALUE`` (or none if VALUE is ``-``) and
resumes it, printing ``RESULT <the value the task saw>``.
"""

import os
import sys

import ray

import engine as workflow
from tests.engine import tasks
from tests.reliability import faulty_tasks


def main() -> None:
    mode, storage, workflow_id, marker, value = sys.argv[1:6]
    options = {"endpoint_url": sys.argv[6]} if len(sys.argv) > 6 else None
    env = {"env_vars": {"API_TOKEN": value}} if value != "-" else None
    if mode == "run":  # the test's cluster, on purpose: a job of its own with its own runtime env
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False, runtime_env=env)
        workflow.init(storage, storage_options=options)
        dag = faulty_tasks.env_value.bind("API_TOKEN", tasks.fails_until.bind(marker, 1))
        try:
            workflow.run(dag, workflow_id=workflow_id)
        except workflow.WorkflowExecutionError:
            print("FAILED", flush=True)
    else:  # another cluster: only what this driver supplies reaches the tasks
        ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False, runtime_env=env)
        workflow.init(storage, storage_options=options)
        print("RESULT", workflow.resume(workflow_id), flush=True)


if __name__ == "__main__":
    main()
