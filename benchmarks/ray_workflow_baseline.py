"""ray.workflow 2.47 on the engine benchmark's shapes, for engine_overhead.py --vs-ray-workflow.

    .venv-ray-workflow/bin/python benchmarks/ray_workflow_baseline.py [--quick]

Runs under Ray 2.47 (the last release with ray.workflow), in its own virtualenv:
engine_overhead.py creates it and runs this before starting its own Ray. Prints
one JSON object: ms per one-task workflow and per chain task, for ray.workflow
and for plain Ray tasks on the same Ray: the shapes of benchmarks/_shapes.py,
which engine_overhead.py runs too. ray.workflow cannot build a 500-deep
chain (cloudpickle: "excessively deep recursion"), so its chain is 200 tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import warnings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
warnings.filterwarnings("ignore", message=".*Workflows library is deprecated.*")

import ray  # noqa: E402
from ray import workflow  # noqa: E402

from _shapes import (  # noqa: E402
    PEER_SIZES, durable_chain, durable_fan, durable_many, durable_one_task, inc, plain_chain, plain_fan,
    plain_many, plain_one_task, tree_bytes,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller shapes, one repeat")
    parser.add_argument("--peers", action="store_true",
                        help="the suite's peer shapes too (fan-out, many at once, bytes per task), and "
                             "every repeat's figure (python -m benchmarks --peer ray-workflow)")
    args = parser.parse_args()
    chain_n, one_n, repeats = (50, 50, 1) if args.quick else (200, 200, 3)
    fan_n = many_n = 0
    if args.peers:
        chain_n, fan_n, one_n, many_n, repeats = PEER_SIZES["quick" if args.quick else "full"]
    storage = tempfile.mkdtemp(prefix="rw-bench-")
    ray.init(address="local", include_dashboard=False, log_to_driver=False, storage=storage)
    for i in range(10):  # warm up workers and the workflow management actor
        workflow.run(inc.bind(i), workflow_id=f"warm-{i}")
    ones, plain_ones, chains, plain_chains = [], [], [], []
    fans, plain_fans, many, plain_manys = [], [], [], []
    for r in range(repeats):
        plain_ones.append(plain_one_task(one_n) / one_n)
        ones.append(durable_one_task(workflow, one_n, str(r)) / one_n)
        plain_chains.append(plain_chain(chain_n) / chain_n)
        chains.append(durable_chain(workflow, chain_n, str(r)) / chain_n)
        if args.peers:
            plain_fans.append(plain_fan(fan_n) / (fan_n + 1))
            fans.append(durable_fan(workflow, fan_n, str(r)) / (fan_n + 1))
            plain_manys.append(many_n / plain_many(many_n))
            many.append(many_n / durable_many(workflow, many_n, str(r)))
    before = tree_bytes(storage)
    durable_one_task(workflow, one_n, "bytes")
    bytes_per_task = (tree_bytes(storage) - before) / one_n
    ray.shutdown()
    shutil.rmtree(storage, ignore_errors=True)
    report = {
        "ray_version": ray.__version__, "repeats": repeats, "chain_tasks": chain_n, "one_task_workflows": one_n,
        "one_task_ms": statistics.median(ones) * 1e3, "plain_one_task_ms": statistics.median(plain_ones) * 1e3,
        "chain_ms_per_task": statistics.median(chains) * 1e3,
        "plain_chain_ms_per_task": statistics.median(plain_chains) * 1e3,
    }
    if args.peers:
        report.update({
            "system": "ray-workflow", "version": ray.__version__, "storage": "local disk (ray.init(storage=))",
            "fan_tasks": fan_n + 1, "many_workflows": many_n, "bytes_per_task": bytes_per_task,
            "samples": {
                "chain_ms_per_task": [v * 1e3 for v in chains], "fan_ms_per_task": [v * 1e3 for v in fans],
                "one_task_ms": [v * 1e3 for v in ones], "many_workflows_per_s": many,
                "plain_chain_ms_per_task": [v * 1e3 for v in plain_chains],
                "plain_fan_ms_per_task": [v * 1e3 for v in plain_fans],
                "plain_one_task_ms": [v * 1e3 for v in plain_ones], "plain_many_per_s": plain_manys,
            },
        })
    print(json.dumps(report))


if __name__ == "__main__":
    main()
