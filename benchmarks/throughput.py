"""Throughput: many workflows at once, against the same tasks as plain Ray in the same run.

    .venv/bin/python benchmarks/throughput.py [--quick] [--backend local|s3|s3-20ms] [--drivers 1,4]
                                              [--shards N] [--full] [--cluster NODES] [--profile]
                                              [--fan-out WIDTH]

Shapes, each submitted all at once (``run_async`` in a loop, then one ``ray.get`` of all):

* N one-task workflows (N = 100, 1,000; --full adds 10,000), against N plain tasks;
* M 10-task chains (M = 100), against M plain 10-task chains;
* the same from 4 driver processes at once (each submits N/4), against N plain tasks from one
  driver (4 plain drivers are 4 Ray jobs; their figure is kept as ``plain_drivers_per_s``).

Reported: workflows/s and tasks/s, and the ratio to plain Ray. One chain of 10, 100 and 500
tasks alone (``workflow.run``; --quick: 10 and 100), ms per task against the same plain Ray
chain. Per one-task workflow (``workflow.run``, measured alone): latency against a plain task
round trip; on S3 the bytes stored (the bucket's growth) and, behind the proxy, the requests by
method; behind a proxy that adds 20 ms to every request, 10 ms each way (``s3-20ms``), the
sequential storage round trips: the one-task workflow's extra latency with the delay on over the
same proxy with it off, in 20 ms units. With --full, the manager's memory (RSS) before and after
10,000 workflows submitted at once, and after each of 10 rounds of 1,000 (whether it stays flat as
workflows finish), and a 100,000-task fan-out's time and the manager's memory per task after it.

On local storage, the floor in the same run: creating a file durably (create, write, fsync, and
fsync of its directory: one journal commit of the file system), which every new workflow's log
costs before run_async returns; and where a one-task workflow's time goes, step by step
(``_breakdown.py``: each step timed alone, the appends counted off a real workflow's log).

With ``--profile``: py-spy samples the driver and the managers while one-task workflows are
submitted 1,000 at a time, and the CPU is split by phase (``_profile.py``).

With ``--cluster NODES``: the 1,000 one-task shape (1 and 4 drivers) on a ``ray.cluster_utils``
cluster of NODES nodes of 1 CPU each, with 1 manager shard and with one shard per node, and per
shard the workflows it drove and the node it sat on.

Prints a table; writes JSON to benchmarks/results/throughput-<backend>[-cluster].json.
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
from _breakdown import one_task_breakdown, print_breakdown  # noqa: E402
from _common import fake_aws_env, moto_server, write_results  # noqa: E402
from _profile import print_profile, profile  # noqa: E402
from _proxy import LatencyProxy  # noqa: E402
from _shapes import inc  # noqa: E402
from _shapes import total as total_of  # noqa: E402
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


def chain_alone(length: int, repeats: int) -> dict:
    """One chain of ``length`` tasks at a time (``workflow.run``), against the same plain Ray
    chain: median ms per task of each, and their ratio."""
    tag = _tag()
    plain, durable = [], []
    for i in range(repeats):
        started = time.perf_counter()
        assert ray.get(_plain_chain(length)) == length
        plain.append((time.perf_counter() - started) / length)
        started = time.perf_counter()
        assert workflow.run(_durable_chain(length), workflow_id=f"ch-{tag}-{i}") == length
        durable.append((time.perf_counter() - started) / length)
    plain_ms, durable_ms = statistics.median(plain) * 1000, statistics.median(durable) * 1000
    return {"length": length, "plain_ms_per_task": plain_ms, "durable_ms_per_task": durable_ms,
            "ratio": durable_ms / plain_ms}


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
    elapsed = time.perf_counter() - started
    for proc in procs:  # (a driver's exit takes Ray's shutdown: not part of the figure)
        proc.wait()
    return elapsed


def drivers_row(n: int, drivers: int, url: str, options: dict, suffix: str = "") -> dict:
    """n one-task workflows from ``drivers`` processes at once, against n plain tasks from one
    driver: plain tasks from several drivers are several Ray jobs, each needing workers of its
    own, and on 2 CPUs Ray kills and starts workers between the jobs (their figure is kept as
    ``plain_drivers_per_s``). The engine's tasks all run in the manager's job."""
    durable_s = many_drivers("durable", n, drivers, url, options)
    result = row(f"{n} one-task workflows, {drivers} drivers{suffix}", plain_one_tasks(n), durable_s, n)
    result["plain_drivers_per_s"] = n / many_drivers("plain", n, drivers, url, options)
    return result


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


def cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) used so far by this driver, the managers, and the rest of
    this Ray session's processes (workers, raylet, GCS: ray.init(address="local") started them
    all as this process's descendants). Processes that exited meanwhile are not counted."""
    import psutil

    managers = {ray.get(m.describe.remote())["pid"] for m in context().managers}
    me = psutil.Process()
    used = {"driver": sum(me.cpu_times()[:2]), "manager": 0.0, "workers and Ray": 0.0}
    for child in me.children(recursive=True):
        try:
            seconds = sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
        used["manager" if child.pid in managers else "workers and Ray"] += seconds
    return used


def cpu_ms_per_item(run, n: int) -> dict[str, float]:
    """Run ``run(n)``; the CPU ms per item it cost each group of processes (see cpu_seconds)."""
    before = cpu_seconds()
    run(n)
    after = cpu_seconds()
    used = {k: (after[k] - before[k]) * 1000 / n for k in after}
    return {**used, "total": sum(used.values())}


def manager_rss() -> float:
    """The managers' resident memory, MiB, summed over shards (Ray vendors psutil)."""
    import psutil

    pids = [ray.get(m.describe.remote())["pid"] for m in context().managers]
    return sum(psutil.Process(pid).memory_info().rss for pid in pids) / 2**20


def manager_rss_rounds(rounds: int, n: int) -> list[float]:
    """The managers' RSS (MiB) before and after each of ``rounds`` rounds of ``n`` one-task
    workflows submitted at once and finished: whether memory stays flat as workflows end."""
    rss = [manager_rss()]
    for _ in range(rounds):
        durable_one_tasks(n)
        rss.append(manager_rss())
    return rss


def bucket_bytes(endpoint: str, bucket: str = "throughput") -> int:
    """Bytes of every object in the benchmark's bucket."""
    import boto3

    pages = boto3.client("s3", endpoint_url=endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(o["Size"] for page in pages for o in page.get("Contents", []))


def new_file_floor_ms(directory: str, n: int = 200) -> float:
    """Median ms to create a file durably (create, write 300 bytes, fsync it and its directory)."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        path = os.path.join(directory, f"floor-{i}")
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        os.pwrite(fd, b"x" * 300, 0)
        os.fsync(fd)
        os.close(fd)
        dfd = os.open(directory, os.O_RDONLY)
        os.fsync(dfd)
        os.close(dfd)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def fan_out(width: int) -> dict:
    """One workflow of ``width`` parallel tasks summed by one more; against the same in plain Ray."""
    started = time.perf_counter()
    assert ray.get(total_of.remote(*[inc.remote(i) for i in range(width)])) == width * (width + 1) // 2
    plain_s = time.perf_counter() - started
    rss_before = manager_rss()
    started = time.perf_counter()
    dag = total_of.bind(*[inc.bind(i) for i in range(width)])
    assert workflow.run(dag, workflow_id=f"fan-{_tag()}") == width * (width + 1) // 2
    durable_s = time.perf_counter() - started
    rss_after = manager_rss()
    return {"width": width, "plain_s": plain_s, "durable_s": durable_s, "ratio": durable_s / plain_s,
            "manager_rss_mib": {"before": rss_before, "after": rss_after},
            "manager_bytes_per_task": (rss_after - rss_before) * 2**20 / width}


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
    parser.add_argument("--cluster", type=int, default=0, metavar="NODES")
    parser.add_argument("--profile", action="store_true",
                        help="also sample the driver and the managers with py-spy: CPU by phase")
    parser.add_argument("--fan-out", type=int, default=0, metavar="WIDTH",
                        help="only one workflow of WIDTH parallel tasks (--full runs 100,000)")
    args = parser.parse_args()
    fake_aws_env()  # before ray.init: the manager and workers inherit the driver's environment
    if args.cluster:
        report = scale_out(args)
        print_scale_out(report)
        print("results:", write_results(f"throughput-{args.backend}-cluster", report))
        return
    sizes = [100] if args.quick else [100, 1000] + ([10_000] if args.full else [])
    report: dict = {"backend": args.backend, "rows": []}
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.get([inc.remote(i) for i in range(200)])  # workers up
    if args.fan_out:
        with tempfile.TemporaryDirectory() as tmp, _storage(args.backend, tmp) as (url, options, _proxy):
            workflow.init(url, storage_options=options)
            report["fan_out"] = fan_out(args.fan_out)
        fan = report["fan_out"]
        print(f"{fan['width']}-task fan-out: {fan['durable_s']:.1f} s vs plain {fan['plain_s']:.1f} s "
              f"({fan['ratio']:.2f}x); manager {fan['manager_bytes_per_task']:.0f} bytes per task")
        print("results:", write_results(f"throughput-{args.backend}-fan-out", report))
        return
    with tempfile.TemporaryDirectory() as tmp, _storage(args.backend, tmp) as (url, options, proxy):
        init_kwargs = {"shards": args.shards} if args.shards else {}
        workflow.init(url, storage_options=options, **init_kwargs)
        for i in range(20):
            workflow.run(inc.bind(i), workflow_id=f"warm-{_tag()}")
        if args.backend == "local":
            os.makedirs(os.path.join(tmp, "floor"))
            report["new_file_floor_ms"] = new_file_floor_ms(os.path.join(tmp, "floor"))
        plain_ms, durable_ms = one_task_latency(20 if args.quick else 50)
        report["one_task_ms"] = {"plain": plain_ms, "durable": durable_ms, "ratio": durable_ms / plain_ms}
        if args.backend == "local":
            report["one_task_breakdown"] = one_task_breakdown(durable_ms, plain_ms, 50 if args.quick else 200)
        if args.backend != "local":
            stored_before = bucket_bytes(options["endpoint_url"])
            if proxy is not None:
                proxy.reset()
            workflow.run(inc.bind(1), workflow_id=f"count-{_tag()}")
            time.sleep(1.0)  # (nothing of it is left in flight: the count is the workflow's own)
            if proxy is not None:
                report["requests_per_one_task_workflow"] = dict(proxy.requests)
            report["stored_bytes_per_one_task_workflow"] = bucket_bytes(options["endpoint_url"]) - stored_before
        if proxy is not None:
            if delay_s := proxy.delay_s:
                proxy.delay_s = 0.0
                _, undelayed_ms = one_task_latency(20 if args.quick else 50)
                proxy.delay_s = delay_s
                report["one_task_ms"]["without_delay"] = undelayed_ms
                report["sequential_round_trips"] = (durable_ms - undelayed_ms) / (2 * delay_s * 1000)
        report["chains_alone"] = [chain_alone(length, 3 if args.quick else 5)
                                  for length in ([10, 100] if args.quick else [10, 100, 500])]
        for n in sizes:
            if n == sizes[-1]:
                rss_before = manager_rss()
            if proxy is not None:
                proxy.reset()
            report["rows"].append(row(f"{n} one-task workflows", plain_one_tasks(n), durable_one_tasks(n), n))
            if proxy is not None:
                report["requests_per_workflow_at_once"] = {
                    "workflows": n, **{k: v / n for k, v in proxy.requests.items()}}
        report["manager_rss_mib"] = {"workflows": sizes[-1], "before": rss_before, "after": manager_rss()}
        report["cpu_ms_per_one_task"] = {"workflows": sizes[-1],
                                         "plain": cpu_ms_per_item(plain_one_tasks, sizes[-1]),
                                         "durable": cpu_ms_per_item(durable_one_tasks, sizes[-1])}
        m = 20 if args.quick else 100
        report["rows"].append(row(f"{m} 10-task chains", plain_chains(m), durable_chains(m), m * 10, "tasks"))
        for drivers in [int(d) for d in args.drivers.split(",") if int(d) > 1]:
            report["rows"].append(drivers_row(sizes[-1], drivers, url, options))
        if args.full:
            report["manager_rss_rounds_mib"] = manager_rss_rounds(10, 1000)
            report["fan_out"] = fan_out(100_000)
        if args.profile:
            managers = [ray.get(m.describe.remote())["pid"] for m in context().managers]
            report["profile"] = profile(durable_one_tasks, os.getpid(), managers)
    print_table(report)
    if "one_task_breakdown" in report:
        print_breakdown(report["one_task_breakdown"])
    if "profile" in report:
        print_profile(report["profile"], report["cpu_ms_per_one_task"]["durable"])
    print("results:", write_results(f"throughput-{args.backend}", report))
    ray.shutdown()


def scale_out(args) -> dict:
    """The 1,000 one-task shape on a cluster of ``args.cluster`` 1-CPU nodes, with 1 shard and
    with one shard per node (each on a storage of its own)."""
    from ray.cluster_utils import Cluster

    n = 200 if args.quick else 1000
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    for _ in range(args.cluster - 1):
        cluster.add_node(num_cpus=1)
    report: dict = {"backend": args.backend, "nodes": args.cluster, "workflows": n, "runs": []}
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        ray.get([inc.remote(i) for i in range(200)])
        with tempfile.TemporaryDirectory() as tmp:
            for shards in sorted({1, args.cluster}):
                with _storage(args.backend, os.path.join(tmp, f"s{shards}")) as (url, options, _proxy):
                    workflow.init(url, storage_options=options, shards=shards)
                    for i in range(20):
                        workflow.run(inc.bind(i), workflow_id=f"warm-{_tag()}")
                    one = row(f"{n} one-task workflows, {shards} shard(s)", plain_one_tasks(n),
                              durable_one_tasks(n), n)
                    four = drivers_row(n, 4, url, options, f", {shards} shard(s)")
                    report["runs"].append({"shards": shards, "rows": [one, four], "per_shard": _per_shard()})
    finally:
        ray.shutdown()
        cluster.shutdown()
    return report


def _per_shard() -> list[dict]:
    """Each shard's node and how many workflows it drove (its run_started events, by owner)."""
    from engine.store._sync import run_sync
    from replay import load_state

    ctx = context()
    shards = [ray.get(m.describe.remote()) for m in ctx.managers]
    driven = {info["owner"]: 0 for info in shards}
    for workflow_id in [wid for wid, _ in workflow.list_all()]:
        owner = run_sync(load_state(ctx.storage, workflow_id)).owner
        if owner in driven:
            driven[owner] += 1
    return [{"shard": info["shard"], "node": info["node_id"][:12], "workflows": driven[info["owner"]]}
            for info in shards]


def print_scale_out(report: dict) -> None:
    print(f"\nscale-out on {report['nodes']} nodes of 1 CPU ({report['backend']} storage, one machine)")
    print(f"  {'shape':<52} {'plain/s':>10} {'durable/s':>10} {'durable/plain':>14}")
    for run in report["runs"]:
        for r in run["rows"]:
            print(f"  {r['shape']:<52} {r['plain_per_s']:>10.0f} {r['durable_per_s']:>10.0f} {r['ratio']:>14.2f}")
        for shard in run["per_shard"]:
            print(f"    shard {shard['shard']} on node {shard['node']}: {shard['workflows']} workflows "
                  "(all of its storage's: the warm-ups and both rows above)")


def print_table(report: dict) -> None:
    one = report["one_task_ms"]
    print(f"\nthroughput on {report['backend']} storage (plain Ray in the same run)")
    print(f"  one-task workflow alone: {one['durable']:.2f} ms vs a plain task {one['plain']:.2f} ms "
          f"({one['ratio']:.2f}x)")
    if "requests_per_one_task_workflow" in report:
        print(f"  storage requests per one-task workflow: {report['requests_per_one_task_workflow']}")
    if "requests_per_workflow_at_once" in report:
        print(f"  storage requests per workflow, {report['requests_per_workflow_at_once']['workflows']} at once: "
              f"{ {k: round(v, 2) for k, v in report['requests_per_workflow_at_once'].items() if k != 'workflows'} }")
    if "new_file_floor_ms" in report:
        print(f"  floor: creating one file durably (a new workflow's log) {report['new_file_floor_ms']:.2f} ms")
    if "sequential_round_trips" in report:
        print(f"  sequential storage round trips per one-task workflow: {report['sequential_round_trips']:.1f}")
    for chain in report.get("chains_alone", []):
        print(f"  one {chain['length']}-task chain alone: {chain['durable_ms_per_task']:.2f} ms per task vs "
              f"plain {chain['plain_ms_per_task']:.2f} ms ({chain['ratio']:.2f}x)")
    print(f"  {'shape':<40} {'plain/s':>10} {'durable/s':>10} {'durable/plain':>14}")
    for r in report["rows"]:
        print(f"  {r['shape']:<40} {r['plain_per_s']:>10.0f} {r['durable_per_s']:>10.0f} {r['ratio']:>14.2f}")
    if "cpu_ms_per_one_task" in report:
        cpu = report["cpu_ms_per_one_task"]
        print(f"  CPU ms per one-task workflow, {cpu['workflows']} at once (plain Ray task in brackets): "
              + ", ".join(f"{k} {cpu['durable'][k]:.2f} ({cpu['plain'][k]:.2f})" for k in cpu["durable"]))
    rss = report["manager_rss_mib"]
    print(f"  manager RSS across {rss['workflows']} workflows: {rss['before']:.0f} MiB -> {rss['after']:.0f} MiB "
          f"({100 * (rss['after'] / rss['before'] - 1):+.1f}%)")
    if "manager_rss_rounds_mib" in report:
        rounds = report["manager_rss_rounds_mib"]
        half = len(rounds) // 2
        print(f"  manager RSS after each of {len(rounds) - 1} rounds of 1,000 workflows: "
              + " -> ".join(f"{m:.0f}" for m in rounds)
              + f" MiB ({100 * (rounds[-1] / rounds[0] - 1):+.1f}% in all, "
              f"{100 * (rounds[-1] / rounds[half] - 1):+.1f}% over the last {len(rounds) - 1 - half})")
    if "stored_bytes_per_one_task_workflow" in report:
        print(f"  bytes stored per one-task workflow (the bucket's growth): "
              f"{report['stored_bytes_per_one_task_workflow']}")
    if "fan_out" in report:
        fan = report["fan_out"]
        print(f"  {fan['width']}-task fan-out: {fan['durable_s']:.1f} s vs plain {fan['plain_s']:.1f} s "
              f"({fan['ratio']:.2f}x); manager {fan['manager_bytes_per_task']:.0f} bytes per task")


class _storage:
    """The storage URL and options for a backend, and the latency proxy in front of S3 if any
    (``s3-20ms``: 10 ms each way; ``s3``: moto directly)."""

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
        if self.backend == "s3":  # moto directly: no proxy, so no request counts
            return "s3://throughput/wf", {"endpoint_url": endpoint}, None
        port = int(endpoint.rsplit(":", 1)[1])
        self._proxy = LatencyProxy(port, 0.010).__enter__()
        return "s3://throughput/wf", {"endpoint_url": self._proxy.url}, self._proxy

    def __exit__(self, *exc):
        if self._proxy is not None:
            self._proxy.__exit__(*exc)
        if self._moto is not None:
            self._moto.__exit__(*exc)
        return False


if __name__ == "__main__":
    main()
