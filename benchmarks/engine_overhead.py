"""Engine overhead: durable workflows vs plain Ray tasks, measured in the same run.

    .venv/bin/python benchmarks/engine_overhead.py [--quick] [--storage DIR]

Three shapes of trivial tasks on one Ray instance: a chain (each task takes the
previous output), a fan-out/fan-in (N independent tasks summed by one), and a
batch of one-task workflows (submit -> result, one at a time). Each durable
time is compared with the same shape as plain Ray tasks (``f.remote`` chains)
measured right before it, so machine noise hits both. Prints a table, writes
JSON to benchmarks/results/engine_overhead.json.

"vs ray.workflow" compares with ray.workflow 2.47 as the engine issue states it
for this kind of machine (~34 ms per chain task, ~55 ms per one-task workflow);
the goal is at least 10x faster. With --vs-ray-workflow it is also measured:
ray.workflow is gone from Ray 2.60, so benchmarks/ray_workflow_baseline.py runs
the same shapes on Ray 2.47 in its own virtualenv (.venv-ray-workflow, created
on first use: ray==2.47.1 and pyarrow from PyPI), before this Ray starts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine as workflow  # noqa: E402
from _shapes import (  # noqa: E402
    durable_chain, durable_fan, durable_one_task, plain_chain, plain_fan, plain_one_task,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RAY_WORKFLOW_MS = {"chain": 34.0, "one-task workflows": 55.0}  # ray.workflow 2.47 per the issue, ms per task
BASELINE_VENV = os.path.join(ROOT, ".venv-ray-workflow")
BASELINE_PACKAGES = ["ray==2.47.1", "pyarrow"]  # ray.workflow's storage needs pyarrow


def measure_ray_workflow(quick: bool) -> dict:
    """ray.workflow 2.47's ms per task on the chain and one-task shapes, measured now, in its own venv."""
    python = os.path.join(BASELINE_VENV, "bin", "python")
    if not os.path.exists(python):
        print(f"creating {BASELINE_VENV} ({' '.join(BASELINE_PACKAGES)}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", BASELINE_VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", *BASELINE_PACKAGES], check=True)
    script = os.path.join(ROOT, "benchmarks", "ray_workflow_baseline.py")
    done = subprocess.run([python, script, *(["--quick"] if quick else [])], check=True,
                          capture_output=True, text=True)
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    return {**measured, "chain": measured["chain_ms_per_task"], "one-task workflows": measured["one_task_ms"]}


def samples(repeats: int, plain, durable) -> tuple[list[float], list[float]]:
    """Seconds of interleaved plain/durable runs (interleaving spreads the noise over both)."""
    plains, durables = [], []
    for r in range(repeats):
        plains.append(plain())
        durables.append(durable(r))
    return plains, durables


def measure(repeats: int, plain, durable) -> tuple[float, float]:
    """Medians of :func:`samples`."""
    plains, durables = samples(repeats, plain, durable)
    return statistics.median(plains), statistics.median(durables)


def warm_up(run_id: str) -> None:
    """Workers, the manager actor and the storage, for each shape."""
    plain_chain(20)
    durable_chain(workflow, 20, f"warm-{run_id}")
    plain_fan(100)
    durable_fan(workflow, 100, f"warm-{run_id}")


def bench(settings) -> list[dict]:
    """The suite's run: ms/task of each shape, durable and plain Ray, and their ratio, per repeat."""
    from benchmarks._common import figure, sub_url

    chain_n, fan_n, one_n, repeats = (60, 100, 20, 3) if settings.quick else (500, 1000, 200, 5)
    tmp = tempfile.mkdtemp(prefix="rd-bench-")
    storage = sub_url(settings.storage, f"overhead-{time.strftime('%H%M%S')}") if settings.storage else tmp
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        workflow.init(storage)
        run_id = time.strftime("%H%M%S")
        warm_up(run_id)
        shapes = [
            ("chain", chain_n, lambda: plain_chain(chain_n),
             lambda r: durable_chain(workflow, chain_n, f"{run_id}-{r}")),
            ("fan-out/fan-in", fan_n + 1, lambda: plain_fan(fan_n),
             lambda r: durable_fan(workflow, fan_n, f"{run_id}-{r}")),
            ("one-task workflows", one_n, lambda: plain_one_task(one_n),
             lambda r: durable_one_task(workflow, one_n, f"{run_id}-{r}")),
        ]
        figures = []
        for shape, tasks, plain, durable in shapes:
            plains, durables = samples(repeats, plain, durable)
            print(f"  {shape}: {tasks} tasks, plain {statistics.median(plains) / tasks * 1e3:.3f} ms/task, "
                  f"durable {statistics.median(durables) / tasks * 1e3:.3f} ms/task", flush=True)
            b, label = "engine_overhead", f"{shape} ({tasks} tasks)"
            figures += [
                figure(b, f"plain Ray {label}", "ms/task", [t / tasks * 1e3 for t in plains], better="lower",
                       role="plain", shape=shape, tasks=tasks),
                figure(b, f"durable {label}", "ms/task", [t / tasks * 1e3 for t in durables], better="lower",
                       summary=True, role="durable", shape=shape, tasks=tasks),
                figure(b, f"durable / plain Ray {label}", "x", [d / p for d, p in zip(durables, plains)],
                       better="lower", summary=True, role="ratio", shape=shape, tasks=tasks),
            ]
        return figures
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smaller shapes, one repeat")
    parser.add_argument("--storage", default=None, help="local storage dir (default: a fresh temp dir)")
    parser.add_argument("--vs-ray-workflow", action="store_true",
                        help="also measure ray.workflow 2.47 on this machine (creates .venv-ray-workflow)")
    parser.add_argument("--json", default=os.path.join(os.path.dirname(__file__), "results", "engine_overhead.json"))
    args = parser.parse_args()
    chain_n, fan_n, one_n, repeats = (100, 200, 50, 1) if args.quick else (500, 1000, 200, 5)
    storage = args.storage or tempfile.mkdtemp(prefix="rd-bench-")
    measured = measure_ray_workflow(args.quick) if args.vs_ray_workflow else {}
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    workflow.init(storage)
    run_id = time.strftime("%H%M%S")

    warm_up(run_id)

    rows = []
    plain, durable = measure(repeats, lambda: plain_chain(chain_n), lambda r: durable_chain(workflow, chain_n, f"{run_id}-{r}"))
    rows.append(("chain", chain_n, plain / chain_n, durable / chain_n, "<= 1.3"))
    plain, durable = measure(repeats, lambda: plain_fan(fan_n), lambda r: durable_fan(workflow, fan_n, f"{run_id}-{r}"))
    rows.append(("fan-out/fan-in", fan_n + 1, plain / (fan_n + 1), durable / (fan_n + 1), "<= 1.5"))
    plain, durable = measure(repeats, lambda: plain_one_task(one_n), lambda r: durable_one_task(workflow, one_n, f"{run_id}-{r}"))
    rows.append(("one-task workflows", one_n, plain / one_n, durable / one_n, "<= 15 ms each, >= 10x"))

    print(f"\nengine overhead on {os.cpu_count()} cores, storage {storage}, ray {ray.__version__}")
    print(f"{'shape':<20}{'tasks':>7}{'plain ms/task':>15}{'durable ms/task':>17}{'ratio':>8}"
          f"{'vs ray.workflow':>17}{'measured':>18}  target")
    results = []
    for shape, n, p, d, target in rows:
        quoted, now = RAY_WORKFLOW_MS.get(shape), measured.get(shape)
        speedup = quoted / (d * 1e3) if quoted else None
        speedup_now = now / (d * 1e3) if now else None
        versus = f"{speedup:.1f}x faster" if speedup else "-"
        versus_now = f"{now:.1f} ms: {speedup_now:.1f}x" if now else "-"
        print(f"{shape:<20}{n:>7}{p * 1e3:>15.3f}{d * 1e3:>17.3f}{d / p:>8.2f}{versus:>17}{versus_now:>18}"
              f"  {target}")
        results.append({"shape": shape, "tasks": n, "plain_ms_per_task": p * 1e3,
                        "durable_ms_per_task": d * 1e3, "ratio": d / p, "target": target,
                        "ray_workflow_2_47_ms_per_task": quoted, "speedup_vs_ray_workflow": speedup,
                        "ray_workflow_2_47_measured_ms_per_task": now, "speedup_vs_measured": speedup_now})
    if measured:
        print(f"ray.workflow {measured['ray_version']} measured first, same machine: one-task workflow "
              f"{measured['one_task_ms']:.2f} ms (plain task there {measured['plain_one_task_ms']:.2f} ms), "
              f"{measured['chain_tasks']}-task chain {measured['chain_ms_per_task']:.2f} ms/task "
              f"(plain {measured['plain_chain_ms_per_task']:.2f} ms/task)")
    os.makedirs(os.path.dirname(args.json), exist_ok=True)
    with open(args.json, "w") as f:
        json.dump({"ray_version": ray.__version__, "cpus": os.cpu_count(), "repeats": repeats,
                   "results": results, "ray_workflow_measured": measured or None}, f, indent=2)
    print(f"\nJSON written to {args.json}")
    ray.shutdown()


if __name__ == "__main__":
    main()
