"""Writes ``store_v0_1/``: a local store as ray-durable 0.1 (stop 8, before the engine was split
into subpackages) left it, for the upgrade test in ``tests/engine/test_upgrade.py``.

Run once with that version checked out (``git checkout 237908f``), from the repository root:
``.venv/bin/python tests/engine/golden/make_store_v0_1.py``. Running it with a later version
would record that version's pickles instead, which is not the point: the stored graph names
the classes by the module paths of 0.1 (``engine._graph``, ``engine._options``).

Two workflows:
* ``upgrade-failed``: add(add(1, 2), 3) -> a task with ``workflow.options`` that fails unless
  the worker sees ``RAY_DURABLE_TEST`` (the engine tests set it); FAILED, so a resume by a newer
  version must unpickle the old graph, reuse the checkpoints and run the failed task.
* ``upgrade-done``: the same DAG, finished (written with ``RAY_DURABLE_TEST`` set).
"""

import os
import shutil
import sys

import ray

sys.path.insert(0, os.getcwd())
import engine as workflow  # noqa: E402
from tests.engine.tasks import add, needs_test_env  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


def dag():
    first = workflow.options(task_id="first", metadata={"k": 1})(add).bind(1, 2)
    return needs_test_env.bind(add.bind(first, 3), [first])


def main() -> None:
    store = os.path.join(HERE, "store_v0_1")
    shutil.rmtree(store, ignore_errors=True)
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    workflow.init(store)
    try:
        workflow.run(dag(), workflow_id="upgrade-failed")
    except workflow.WorkflowExecutionError:
        pass
    ray.shutdown()
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"RAY_DURABLE_TEST": "1"}})
    workflow.init(store)
    print(workflow.run(dag(), workflow_id="upgrade-done"))
    ray.shutdown()


if __name__ == "__main__":
    main()
