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
import statistics
import tempfile
import warnings

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
warnings.filterwarnings("ignore", message=".*Workflows library is deprecated.*")

import ray  # noqa: E402
from ray import workflow  # noqa: E402

from _shapes import durable_chain, durable_one_task, inc, plain_chain, plain_one_task  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller shapes, one repeat")
    args = parser.parse_args()
    chain_n, one_n, repeats = (50, 50, 1) if args.quick else (200, 200, 3)
    ray.init(address="local", include_dashboard=False, log_to_driver=False, storage=tempfile.mkdtemp(prefix="rw-bench-"))
    for i in range(10):  # warm up workers and the workflow management actor
        workflow.run(inc.bind(i), workflow_id=f"warm-{i}")
    ones, plain_ones, chains, plain_chains = [], [], [], []
    for r in range(repeats):
        plain_ones.append(plain_one_task(one_n) / one_n)
        ones.append(durable_one_task(workflow, one_n, str(r)) / one_n)
        plain_chains.append(plain_chain(chain_n) / chain_n)
        chains.append(durable_chain(workflow, chain_n, str(r)) / chain_n)
    ray.shutdown()
    print(json.dumps({
        "ray_version": ray.__version__, "repeats": repeats, "chain_tasks": chain_n, "one_task_workflows": one_n,
        "one_task_ms": statistics.median(ones) * 1e3, "plain_one_task_ms": statistics.median(plain_ones) * 1e3,
        "chain_ms_per_task": statistics.median(chains) * 1e3,
        "plain_chain_ms_per_task": statistics.median(plain_chains) * 1e3,
    }))


if __name__ == "__main__":
    main()
