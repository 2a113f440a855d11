"""Throughput: many workflows at once, against the same tasks as plain Ray in the same run.

    .venv/bin/python benchmarks/throughput.py [--quick] [--backend local|s3|s3-20ms] [--drivers 1,4]
                                              [--shards N] [--full]

Shapes, each submitted all at once (``run_async`` in a loop, then one ``ray.get`` of all):

* N one-task workflows (N = 100, 1,000; --full adds 10,000), against N plain tasks;
* M 10-task chains (M = 100), against M plain 10-task chains;
* the same from 4 driver processes at once (each submits N/4), against 4 plain drivers.

Reported: workflows/s and tasks/s, and the ratio to plain Ray. Per one-task workflow (measured
alone): latency against a plain task round trip, and on S3 the requests by method and the bytes
stored; behind a proxy that adds 20 ms each way to every request (``s3-20ms``) the sequential
storage round trips (its extra latency over 40 ms). With --full, the manager's memory (RSS) before
and after 10,000 finished workflows, and a 100,000-task fan-out's time and manager memory per task.

Prints a table; writes JSON to benchmarks/results/throughput-<backend>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine as workflow  # noqa: E402
from _common import moto_server, write_results  # noqa: E402
from _proxy import LatencyProxy  # noqa: E402
from _shapes import inc  # noqa: E402
from engine.api._init import context  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tag() -> str:
    return uuid.uuid4().hex[:8]


def plain_one_tasks(n: int) -> float:
    started = time.perf_counter()
    ray.get([inc.remote(i) for i in range(n)])
    return time.perf_counter() - started


def durable_one_tasks(n: int) -> float:
    tag = _tag()
    started = time.perf_counter()
    refs = [workflow.run_async(inc.bind(i), workflow_id=f"tp-{tag}-{i}") for i in range(n)]
    ray.get(refs)
    return time.perf_counter() - started


def _plain_chain(length: int):
    ref = inc.remote(0)
    for _ in range(length - 1):
        ref = inc.remote(ref)
    return ref


def _durable_chain(length: int):
    node = inc.bind(0)
    for _ in range(length - 1):
        node = inc.bind(node)
    return node


def plain_chains(m: int, length: int = 10) -> float:
    started = time.perf_counter()
    ray.get([_plain_chain(length) for _ in range(m)])
    return time.perf_counter() - started


def durable_chains(m: int, length: int = 10) -> float:
    tag = _tag()
    started = time.perf_counter()
    refs = [workflow.run_async(_durable_chain(length), workflow_id=f"tc-{tag}-{i}") for i in range(m)]
    ray.get(refs)
    return time.perf_counter() - started


def many_drivers(kind: str, n: int, drivers: int, storage: str, options: dict) -> float:
    """Wall time for ``drivers`` processes joining this cluster to submit n/drivers each, at once."""
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address)
    script = os.path.join(ROOT, "benchmarks", "_throughput_driver.py")
    procs = [subprocess.Popen([sys.executable, script, kind, str(n // drivers), storage, json.dumps(options)],
                              env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(drivers)]
    for proc in procs:  # each says READY once connected and warmed up
        assert proc.stdout.readline().startswith("READY")
    started = time.perf_counter()
    for proc in procs:
        proc.stdin.write("GO\n")
        proc.stdin.flush()
    for proc in procs:
        proc.stdout.readline()  # DONE
        proc.wait()
    return time.perf_counter() - started


def one_task_latency(repeats: int) -> tuple[float, float]:
    """Median ms of one plain task round trip and of one one-task workflow, one at a time."""
    tag = _tag()
    plain, durable = [], []
    for i in range(repeats):
        started = time.perf_counter()
        ray.get(inc.remote(i))
        plain.append(time.perf_counter() - started)
        started = time.perf_counter()
        workflow.run(inc.bind(i), workflow_id=f"lat-{tag}-{i}")
        durable.append(time.perf_counter() - started)
    return statistics.median(plain) * 1000, statistics.median(durable) * 1000


def manager_rss() -> float:
    """The manager's resident memory, MiB (Ray vendors psutil)."""
    import psutil

    pid = ray.get(context().manager.describe.remote())["pid"]
    return psutil.Process(pid).memory_info().rss / 2**20


def row(name: str, plain_s: float, durable_s: float, count: int, unit: str = "workflows") -> dict:
    return {"shape": name, "count": count, "unit": unit, "plain_per_s": count / plain_s,
            "durable_per_s": count / durable_s, "ratio": (count / durable_s) / (count / plain_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--backend", choices=["local", "s3", "s3-20ms"], default="local")
    parser.add_argument("--drivers", default="1,4")
    parser.add_argument("--shards", type=int, default=None)
    args = parser.parse_args()
    sizes = [100] if args.quick else [100, 1000] + ([10_000] if args.full else [])
    report: dict = {"backend": args.backend, "rows": []}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.get([inc.remote(i) for i in range(200)])  # workers up
    with tempfile.TemporaryDirectory() as tmp, _storage(args.backend, tmp) as (url, options, proxy):
        init_kwargs = {"shards": args.shards} if args.shards else {}
        workflow.init(url, storage_options=options, **init_kwargs)
        for i in range(20):
            workflow.run(inc.bind(i), workflow_id=f"warm-{_tag()}")
        plain_ms, durable_ms = one_task_latency(20 if args.quick else 50)
        report["one_task_ms"] = {"plain": plain_ms, "durable": durable_ms, "ratio": durable_ms / plain_ms}
        if proxy is not None:
            proxy.reset()
            workflow.run(inc.bind(1), workflow_id=f"count-{_tag()}")
            report["requests_per_one_task_workflow"] = dict(proxy.requests)
            if proxy.delay_s:
                report["sequential_round_trips"] = (durable_ms - plain_ms) / (2 * proxy.delay_s * 1000)
        rss_before = manager_rss()
        for n in sizes:
            report["rows"].append(row(f"{n} one-task workflows", plain_one_tasks(n), durable_one_tasks(n), n))
        m = 20 if args.quick else 100
        report["rows"].append(row(f"{m} 10-task chains", plain_chains(m), durable_chains(m), m * 10, "tasks"))
        for drivers in [int(d) for d in args.drivers.split(",") if int(d) > 1]:
            n = sizes[-1]
            report["rows"].append(row(f"{n} one-task workflows, {drivers} drivers",
                                      many_drivers("plain", n, drivers, url, options),
                                      many_drivers("durable", n, drivers, url, options), n))
        report["manager_rss_mib"] = {"before": rss_before, "after": manager_rss()}
    print_table(report)
    print("results:", write_results(f"throughput-{args.backend}", report))
    ray.shutdown()


def print_table(report: dict) -> None:
    one = report["one_task_ms"]
    print(f"\nthroughput on {report['backend']} storage (plain Ray in the same run)")
    print(f"  one-task workflow alone: {one['durable']:.2f} ms vs a plain task {one['plain']:.2f} ms "
          f"({one['ratio']:.2f}x)")
    if "requests_per_one_task_workflow" in report:
        print(f"  storage requests per one-task workflow: {report['requests_per_one_task_workflow']}")
    if "sequential_round_trips" in report:
        print(f"  sequential storage round trips per one-task workflow: {report['sequential_round_trips']:.1f}")
    print(f"  {'shape':<40} {'plain/s':>10} {'durable/s':>10} {'durable/plain':>14}")
    for r in report["rows"]:
        print(f"  {r['shape']:<40} {r['plain_per_s']:>10.0f} {r['durable_per_s']:>10.0f} {r['ratio']:>14.2f}")
    rss = report["manager_rss_mib"]
    print(f"  manager RSS: {rss['before']:.0f} MiB -> {rss['after']:.0f} MiB")


class _storage:
    """The storage URL and options for a backend, and the latency proxy in front of S3 if any."""

    def __init__(self, backend: str, tmp: str):
        self.backend, self.tmp = backend, tmp
        self._moto = self._proxy = None

    def __enter__(self):
        if self.backend == "local":
            return f"file://{self.tmp}/store", {}, None
        self._moto = moto_server()
        endpoint = self._moto.__enter__()
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="throughput")
        port = int(endpoint.rsplit(":", 1)[1])
        self._proxy = LatencyProxy(port, 0.020 if self.backend == "s3-20ms" else 0.0).__enter__()
        return "s3://throughput/wf", {"endpoint_url": self._proxy.url}, self._proxy

    def __exit__(self, *exc):
        if self._proxy is not None:
            self._proxy.__exit__(*exc)
        if self._moto is not None:
            self._moto.__exit__(*exc)
        return False


if __name__ == "__main__":
    main()
