"""A driver process for the crash tests: ``python -m tests.engine.crash_driver run|resume ...``.

It starts its own Ray cluster, so kill -9 of this process takes the cluster,
the manager actor and any running task with it: a real crash.
"""

import os
import sys

import ray

import engine as workflow
from tests.engine import tasks


def main() -> None:
    mode, storage, workflow_id, counter, flag = sys.argv[1:6]
    # Only the first driver sets a job runtime env: the resume must reuse the recorded one.
    runtime_env = {"env_vars": {"RD_WF_ENV": "from-submission"}} if mode == "run" else None
    ray.init(address="local", include_dashboard=False, num_cpus=2, log_to_driver=False, runtime_env=runtime_env)
    workflow.init(storage)
    if mode == "run":
        node = 0
        for index in range(1, 21):
            node = tasks.chain_step.bind(node, index, counter, 10, os.getpid(), flag)
        print("RESULT", workflow.run(node, workflow_id=workflow_id), flush=True)
    else:
        print("STATUS", workflow.get_status(workflow_id), flush=True)
        print("RESULT", workflow.resume(workflow_id), flush=True)
    ray.shutdown()


if __name__ == "__main__":
    main()
