"""Scenarios on a real multi-node Ray cluster (``ray.cluster_utils.Cluster``), one per process:
``python -m tests.engine.multinode_driver SCENARIO STORAGE WORKDIR [STORAGE_OPTIONS_JSON]``.

A head node with no CPUs and two worker nodes with 2 CPUs each, so tasks run on the workers;
the manager actor is placed on a worker node (a ``manager_slot`` resource only workers have,
through ``workflow.init(manager_options=...)``). Each scenario runs a 12-step chain whose steps
note their index in WORKDIR/counter and prints one JSON line: ``{"result": ..., ...}`` or
``{"error": ...}``. Scenarios:

* ``worker-node``: the worker node running the chain's tasks is removed mid-run.
* ``manager-node``: the node hosting the manager is removed mid-run; Ray restarts the manager
  on the other worker, which takes the workflow on; the driver, waiting in ``ray.get`` of
  ``run_async``'s ref, gets the output.
* ``manager-kill``: the manager's process is ``kill -9``ed mid-run; the driver waits in
  ``workflow.run``.
* ``whole-cluster``: the whole cluster is shut down mid-run; a new cluster started against the
  same storage takes the workflow on by itself (``get_output`` waits for it).
"""

import json
import os
import signal
import sys
import time

import ray
from ray.cluster_utils import Cluster

import engine as workflow
from tests.engine import tasks

STEPS = 12


def _cluster() -> Cluster:
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        cluster.add_node(num_cpus=2, resources={"manager_slot": 1})
    cluster.wait_for_nodes()
    return cluster


def _init(storage: str, options: dict, **kwargs) -> None:
    workflow.init(storage, storage_options=options, lease_duration=5,
                  manager_options={"resources": {"manager_slot": 0.001}}, **kwargs)


def _chain(counter: str):
    node = 0
    for index in range(STEPS):
        node = tasks.counted_slow_step.bind(node, counter, index)
    return node


def _wait_for_steps(counter: str, n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not (os.path.exists(counter) and len(open(counter).read().split()) >= n):
        if time.monotonic() > deadline:
            raise TimeoutError(f"fewer than {n} steps ran within {timeout:.0f}s")
        time.sleep(0.05)


def _manager_info() -> tuple[str, int]:
    """(node id, pid) of the manager actor."""
    from engine.api._init import context

    info = ray.get(context().manager.describe.remote(), timeout=60)
    return info["node_id"], info["pid"]


def _node_of(cluster: Cluster, node_id: str):
    for node in cluster.worker_nodes:
        if node.node_id == node_id:
            return node
    raise RuntimeError(f"node {node_id} is not a worker node of this cluster")


def main() -> None:
    scenario, storage, workdir = sys.argv[1:4]
    options = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    counter = os.path.join(workdir, "counter")
    cluster = _cluster()
    ray.init(address=cluster.address, log_to_driver=False)
    _init(storage, options)
    wid = f"mn-{scenario}"
    out: dict = {"scenario": scenario}
    try:
        if scenario == "worker-node":
            ref = workflow.run_async(_chain(counter), workflow_id=wid)
            _wait_for_steps(counter, 3)
            manager_node, _pid = _manager_info()
            busy = [n for n in cluster.worker_nodes if n.node_id != manager_node]
            cluster.remove_node(busy[0])  # the worker that is not the manager's: it ran tasks too
            cluster.add_node(num_cpus=2)
            out["result"] = ray.get(ref)
        elif scenario == "manager-node":
            ref = workflow.run_async(_chain(counter), workflow_id=wid)
            _wait_for_steps(counter, 3)
            manager_node, _pid = _manager_info()
            cluster.add_node(num_cpus=2, resources={"manager_slot": 1})  # room for the restart
            cluster.remove_node(_node_of(cluster, manager_node))
            out["result"] = ray.get(ref)
            out["moved"] = _manager_info()[0] != manager_node
        elif scenario == "manager-kill":
            import threading

            def kill_later():
                _wait_for_steps(counter, 3)
                os.kill(_manager_info()[1], signal.SIGKILL)

            killer = threading.Thread(target=kill_later)
            killer.start()
            out["result"] = workflow.run(_chain(counter), workflow_id=wid)
            killer.join()
        elif scenario == "whole-cluster":
            workflow.run_async(_chain(counter), workflow_id=wid)
            _wait_for_steps(counter, 3)
            ray.shutdown()
            cluster.shutdown()
            cluster = _cluster()
            ray.init(address=cluster.address, log_to_driver=False)
            _init(storage, options)
            out["result"] = workflow.get_output(wid)
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
        out["status"] = str(workflow.get_status(wid))
    except Exception as exc:  # reported for the test to show
        out["error"] = f"{type(exc).__name__}: {exc}"
    print(json.dumps(out), flush=True)
    ray.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
