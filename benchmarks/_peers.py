"""Peers side by side: ray-durable, ray.workflow 2.47 and DBOS Transact on the same shapes.

``python -m benchmarks --peer ray-workflow --peer dbos`` (opt-in, never in CI). Each peer runs in a
virtualenv of its own, found in this order:

* ray.workflow: ``--ray-workflow-python``, ``$RAY_DURABLE_RAY_WORKFLOW_PYTHON``,
  ``.venv-ray-workflow/bin/python`` (what ``engine_overhead.py --vs-ray-workflow`` creates), then
  ``/tmp/rw247/bin/python``; make one with ``python3 -m venv /tmp/rw247 &&
  /tmp/rw247/bin/pip install ray==2.47.1 pyarrow``. It runs benchmarks/ray_workflow_baseline.py.
* DBOS: ``--dbos-python``, ``$RAY_DURABLE_DBOS_PYTHON``, ``.venv-dbos/bin/python``, then
  ``/tmp/dbosvenv/bin/python``; make one with ``python3 -m venv /tmp/dbosvenv &&
  /tmp/dbosvenv/bin/pip install dbos``. It runs benchmarks/peer_dbos.py (SQLite).

The peers run first, one at a time, before this process starts its own Ray, so they never share
the two cores. Then ray-durable (local disk) and plain Ray run the same shapes: a chain, a
fan-out/fan-in, one-task workflows one after the other, many one-task workflows at once; and the
bytes stored per task. Ratios: a peer's ms/task over ray-durable's (above 1: ray-durable is faster),
ray-durable's workflows/s over a peer's (above 1: ray-durable is faster), bytes over ray-durable's.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks._common import figure

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PYTHONS = {
    "ray-workflow": ("ray_workflow_python", "RAY_DURABLE_RAY_WORKFLOW_PYTHON",
                     (os.path.join(ROOT, ".venv-ray-workflow", "bin", "python"), "/tmp/rw247/bin/python"),
                     "python3 -m venv /tmp/rw247 && /tmp/rw247/bin/pip install ray==2.47.1 pyarrow"),
    "dbos": ("dbos_python", "RAY_DURABLE_DBOS_PYTHON",
             (os.path.join(ROOT, ".venv-dbos", "bin", "python"), "/tmp/dbosvenv/bin/python"),
             "python3 -m venv /tmp/dbosvenv && /tmp/dbosvenv/bin/pip install dbos"),
}
SCRIPTS = {"ray-workflow": ("ray_workflow_baseline.py", ["--peers"]), "dbos": ("peer_dbos.py", [])}


def peer_python(peer: str, settings) -> str:
    """The interpreter of ``peer``'s virtualenv. Raises FileNotFoundError saying how to make one."""
    option, env, defaults, make = PYTHONS[peer]
    given = getattr(settings, option) or os.environ.get(env)
    candidates = [given] if given else list(defaults)
    for python in candidates:
        if python and os.access(python, os.X_OK):
            return python
    raise FileNotFoundError(
        f"--peer {peer}: no interpreter at {', '.join(candidates)}; make one ({make}) or pass "
        f"--{option.replace('_', '-')} PYTHON (or set ${env})")


def run_peer(peer: str, settings) -> dict:
    python = peer_python(peer, settings)
    script, extra = SCRIPTS[peer]
    print(f"  {peer}: {python} {script}", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "RAY_ADDRESS")}
    done = subprocess.run([python, script, *extra, *(["--quick"] if settings.quick else [])],
                          cwd=os.path.join(ROOT, "benchmarks"), env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"--peer {peer} failed (exit code {done.returncode}):\n{done.stderr[-3000:]}")
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    samples = measured.get("samples", measured)
    return {"version": measured.get("version"), "storage": measured.get("storage"),
            "chain": samples["chain_ms_per_task"], "fan": samples["fan_ms_per_task"],
            "one": samples["one_task_ms"], "many": samples["many_workflows_per_s"],
            "bytes_per_task": measured["bytes_per_task"],
            "sizes": {k: measured[k] for k in ("chain_tasks", "fan_tasks", "one_task_workflows", "many_workflows")}}


def run_ray_durable(settings) -> tuple[dict, dict]:
    """ray-durable and plain Ray on the shapes (sizes as the peers'), local disk."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray

    import engine as workflow
    from _shapes import (
        PEER_SIZES, durable_chain, durable_fan, durable_many, durable_one_task, inc, plain_chain, plain_fan,
        plain_many, plain_one_task, tree_bytes,
    )

    chain_n, fan_n, one_n, many_n, repeats = PEER_SIZES["quick" if settings.quick else "full"]
    storage = tempfile.mkdtemp(prefix="rd-peers-")
    ray.init(address="local", include_dashboard=False, log_to_driver=False)
    try:
        workflow.init(storage)
        for i in range(10):
            workflow.run(inc.bind(i), workflow_id=f"warm-{i}")
        tag = time.strftime("%H%M%S")
        durable = {"chain": [], "fan": [], "one": [], "many": []}
        plain = {"chain": [], "fan": [], "one": [], "many": []}
        for r in range(repeats):
            plain["chain"].append(plain_chain(chain_n) / chain_n * 1e3)
            durable["chain"].append(durable_chain(workflow, chain_n, f"{tag}-{r}") / chain_n * 1e3)
            plain["fan"].append(plain_fan(fan_n) / (fan_n + 1) * 1e3)
            durable["fan"].append(durable_fan(workflow, fan_n, f"{tag}-{r}") / (fan_n + 1) * 1e3)
            plain["one"].append(plain_one_task(one_n) / one_n * 1e3)
            durable["one"].append(durable_one_task(workflow, one_n, f"{tag}-{r}") / one_n * 1e3)
            plain["many"].append(many_n / plain_many(many_n))
            durable["many"].append(many_n / durable_many(workflow, many_n, f"{tag}-{r}"))
        before = tree_bytes(storage)
        durable_one_task(workflow, one_n, f"{tag}-bytes")
        durable["bytes_per_task"] = (tree_bytes(storage) - before) / one_n
        durable["version"], plain["version"] = "0.1.0", ray.__version__
        durable["storage"], plain["storage"] = "local disk", "(none)"
        durable["sizes"] = plain["sizes"] = {"chain_tasks": chain_n, "fan_tasks": fan_n + 1,
                                             "one_task_workflows": one_n, "many_workflows": many_n}
        return durable, plain
    finally:
        ray.shutdown()
        shutil.rmtree(storage, ignore_errors=True)


SHAPES = (("chain", "chain", "ms/task"), ("fan", "fan-out/fan-in", "ms/task"),
          ("one", "one-task workflow", "ms/task"), ("many", "many one-task workflows at once", "workflows/s"))


def bench(settings) -> list[dict]:
    """Figures for ray-durable, plain Ray and each of ``settings.peers``, and the ratios."""
    peers = {peer: run_peer(peer, settings) for peer in settings.peers}
    durable, plain = run_ray_durable(settings)
    systems = {"ray-durable": durable, "plain Ray": plain, **peers}
    b, figures = "peers", []
    for system, m in systems.items():
        for key, shape, unit in SHAPES:
            figures.append(figure(b, f"{system}: {shape} ({m['sizes'][_size_key(key)]:,})", unit, m[key],
                                  better="higher" if unit == "workflows/s" else "lower",
                                  summary=system != "plain Ray", system=system, shape=shape,
                                  role="workflows_per_s" if unit == "workflows/s" else "ms_per_task"))
        if "bytes_per_task" in m:
            figures.append(figure(b, f"{system}: bytes stored per task", "bytes", [m["bytes_per_task"]],
                                  better="lower", summary=True, system=system, role="bytes_per_task"))
    for peer, m in peers.items():
        for key, shape, unit in SHAPES:
            if unit == "workflows/s":
                ratio = statistics.median(durable[key]) / statistics.median(m[key])
                what = f"ray-durable / {peer} workflows/s: {shape}"
            else:
                ratio = statistics.median(m[key]) / statistics.median(durable[key])
                what = f"{peer} / ray-durable ms/task: {shape}"
            figures.append(figure(b, what, "x", [ratio], summary=True, system=peer, shape=shape, role="ratio"))
        figures.append(figure(b, f"{peer} / ray-durable bytes per task", "x",
                              [m["bytes_per_task"] / durable["bytes_per_task"]], better="lower", summary=True,
                              system=peer, role="bytes_ratio"))
    for system, m in systems.items():
        print(f"  {system} {m.get('version')}: " + ", ".join(
            f"{shape} {statistics.median(m[key]):.2f} {unit}" for key, shape, unit in SHAPES), flush=True)
    return figures


def _size_key(key: str) -> str:
    return {"chain": "chain_tasks", "fan": "fan_tasks", "one": "one_task_workflows", "many": "many_workflows"}[key]


if __name__ == "__main__":  # pragma: no cover
    sys.exit("run it through the suite: python -m benchmarks --only peers --peer ray-workflow --peer dbos")
