"""List scale: ``list_all`` and ``get_status`` latency with many workflows.

    .venv/bin/python benchmarks/list_scale.py [--quick] [--backend local|s3|both]

For 100, 1,000 and 10,000 workflows (``--quick``: 100 and 1,000) on local disk
and on S3 (a ``moto_server`` this script starts on 127.0.0.1), it measures:

* ``list_all()`` (median of 5; of 3 when a call takes over 2 s) and
  ``list_all("FAILED")`` (median of 3; one call when that is slow);
* ``get_status(id)`` of random ids (median and p95 of 200);
* the storage's own ``list_logs()`` (median of 5), to tell storage time from
  engine time.

The workflows are not run on Ray: realistic finished logs (submission with a
DAG payload, a run, three tasks with cloudpickled outputs, then success; about
10% end in a task failure instead) are written straight through storage with
``replay.append_events``, in two batches each, many at once. The populations
grow in place (100, then 900 more, ...), and after each step the status index
is rebuilt with ``workflow.reindex()`` if the engine has one. Prints a table,
writes JSON to benchmarks/results/list_scale.json.

Targets: ``list_all`` over 10,000 workflows <= 0.5 s local, <= 2 s on moto S3;
``get_status`` <= 5 ms local whatever the count.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import contextlib
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import cloudpickle  # noqa: E402
import ray  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import moto_server  # noqa: E402
import engine as workflow  # noqa: E402
from replay import (  # noqa: E402
    PayloadRef,
    TaskCompleted,
    TaskFailed,
    TaskScheduled,
    TaskStarted,
    WorkflowFailed,
    WorkflowRunStarted,
    WorkflowSubmitted,
    WorkflowSucceeded,
    append_events,
)
from storage_backends import open_storage  # noqa: E402

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "list_scale.json")
FAILED_EVERY = 10  # one workflow in ten fails
TASKS = ("load", "transform", "report")
TARGETS = {  # (backend, metric) -> seconds, at 10,000 workflows (get_status: any count)
    ("local", "list_all_s"): 0.5,
    ("s3", "list_all_s"): 2.0,
    ("local", "get_status_ms"): 5.0,
}


# --- realistic finished logs -----------------------------------------------------------------


def payload(value) -> PayloadRef:
    data = cloudpickle.dumps(value)
    cls = type(value)
    return PayloadRef(size=len(data), digest=hashlib.blake2b(data, digest_size=16).hexdigest(),
                      type_name=f"{cls.__module__}.{cls.__qualname__}", inline=data)


_DAG = payload({  # about the size of a small pickled three-task graph
    "root": "report",
    "tasks": {name: {"function": f"pipeline.{name}", "args": [i, "s3://data/input.parquet"],
                     "options": {"num_cpus": 1, "max_retries": 3}, "code": bytes(range(256)) * 2}
              for i, name in enumerate(TASKS)},
})


def finished_log(workflow_id: str, index: int, t0: float) -> list[list]:
    """The events of one finished run, in the batches a driver would have appended them."""
    failed = index % FAILED_EVERY == FAILED_EVERY - 1
    t = t0 + index * 0.01
    submission = [WorkflowSubmitted(ts=t, workflow_id=workflow_id, dag=_DAG,
                                     user_metadata={"owner": "bench", "n": index},
                                     ray_version=ray.__version__, engine_version="bench",
                                     python_version=sys.version.split()[0])]
    run = [WorkflowRunStarted(ts=t + 0.1, run_id=f"run-{index}")]
    for i, name in enumerate(TASKS):
        start = t + 0.2 + i
        run += [TaskScheduled(ts=start, task_id=name, name=f"pipeline.{name}", task_options={"num_cpus": 1}),
                TaskStarted(ts=start + 0.01, task_id=name, node_id="node-1", pid=4242)]
        if failed and name == TASKS[-1]:
            run += [TaskFailed(ts=start + 0.5, task_id=name, error_type="ValueError",
                               message=f"bad row {index}",
                               traceback=f"Traceback (most recent call last):\n  ...\nValueError: bad row {index}"),
                    WorkflowFailed(ts=start + 0.51, task_id=name, error_type="ValueError",
                                   message=f"bad row {index}")]
        else:
            run.append(TaskCompleted(ts=start + 0.5, task_id=name,
                                     output=payload({"task": name, "rows": index * 10 + i, "ok": True})))
    if not failed:
        run.append(WorkflowSucceeded(ts=t + 3.0, output=payload({"report": f"wf {index}", "rows": index})))
    return [submission, run]


def workflow_id(index: int) -> str:
    return f"bench-{index:06d}"


async def populate(url: str, options: dict, start: int, stop: int, concurrency: int) -> None:
    storage = open_storage(url, **options)
    limit = asyncio.Semaphore(concurrency)
    t0 = time.time() - 86400

    async def write(index: int) -> None:
        wid = workflow_id(index)
        async with limit:
            seq = 0
            for batch in finished_log(wid, index, t0):
                seq = await append_events(storage, wid, batch, seq)

    try:
        await asyncio.gather(*(write(i) for i in range(start, stop)))
    finally:
        await storage.close()


async def time_list_logs(url: str, options: dict, repeats: int) -> tuple[list[float], int]:
    storage = open_storage(url, **options)
    try:
        await storage.list_logs()  # warm: client open, bucket checked
        times, count = [], 0
        for _ in range(repeats):
            start = time.perf_counter()
            count = len(await storage.list_logs())
            times.append(time.perf_counter() - start)
        return times, count
    finally:
        await storage.close()


# --- moto ------------------------------------------------------------------------------------


# --- measuring -------------------------------------------------------------------------------


def timed(fn, repeats: int, slow_repeats: int = 3) -> tuple[list[float], object]:
    """Times of ``repeats`` calls (``slow_repeats`` if the first takes over 2 s), and the last result."""
    times, result = [], None
    while len(times) < (repeats if not times or times[0] <= 2.0 else slow_repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return times, result


def measure(backend: str, url: str, options: dict, counts: list[int], concurrency: int) -> list[dict]:
    workflow.init(url, storage_options=options)
    rng = random.Random(0)
    rows, have = [], 0
    for count in counts:
        print(f"[{backend}] populating {have} -> {count} workflows ...", flush=True)
        start = time.perf_counter()
        asyncio.run(populate(url, options, have, count, concurrency))
        populate_s = time.perf_counter() - start
        have = count
        reindex_s = None
        if hasattr(workflow, "reindex"):
            start = time.perf_counter()
            workflow.reindex()
            reindex_s = time.perf_counter() - start
        list_logs_times, listed = asyncio.run(time_list_logs(url, options, 5))
        list_logs_s = statistics.median(list_logs_times)
        assert listed == count, (listed, count)

        everything = workflow.list_all()  # also warms the engine's storage client
        expected_failed = sum(1 for i in range(count) if i % FAILED_EVERY == FAILED_EVERY - 1)
        by_status = {}
        for _wid, status in everything:
            by_status[str(status)] = by_status.get(str(status), 0) + 1
        assert len(everything) == count, (len(everything), count)
        assert by_status.get("FAILED", 0) == expected_failed, by_status
        list_all, _ = timed(workflow.list_all, 5)
        failed, failed_ids = timed(lambda: workflow.list_all("FAILED"), 3, 1)
        assert len(failed_ids) == expected_failed

        ids = [workflow_id(i) for i in rng.sample(range(count), min(200, count))]
        ids = (ids * (200 // len(ids) + 1))[:200]
        workflow.get_status(ids[0])  # warm
        status_times = []
        for wid in ids:
            start = time.perf_counter()
            workflow.get_status(wid)
            status_times.append(time.perf_counter() - start)
        status_ms = sorted(t * 1000 for t in status_times)

        row = {
            "backend": backend, "workflows": count, "failed": expected_failed,
            "populate_s": populate_s, "reindex_s": reindex_s,
            "list_logs_s": list_logs_s,
            "list_all_s": statistics.median(list_all), "list_all_min_s": min(list_all),
            "list_all_repeats": len(list_all),
            # what list_all folds from the logs on every call (the index vouches for the rest)
            "not_indexed": count - sum(by_status.get(s, 0) for s in ("SUCCESSFUL", "CANCELED", "FAILED")),
            "list_all_failed_s": statistics.median(failed),
            "get_status_ms": statistics.median(status_ms),
            "get_status_p95_ms": status_ms[int(len(status_ms) * 0.95) - 1],
            "statuses": by_status,
            # every call, for the suite's min/median/max
            "list_all_samples": list_all, "list_logs_samples": list_logs_times, "get_status_samples": status_ms,
        }
        rows.append(row)
        print_row(row)
    return rows


def verdict(row: dict, metric: str) -> str:
    target = TARGETS.get((row["backend"], metric))
    if target is None or (metric == "list_all_s" and row["workflows"] < 10_000):
        return ""
    return " ok" if row[metric] <= target else " MISS"


HEADER = (f"{'backend':<7} {'workflows':>9} {'populate':>9} {'reindex':>8} {'list_logs':>9} "
          f"{'list_all':>13} {'list FAILED':>11} {'get_status':>15} {'p95':>8}")


def print_row(row: dict) -> None:
    reindex = f"{row['reindex_s']:7.2f}s" if row["reindex_s"] is not None else f"{'-':>8}"
    print(f"{row['backend']:<7} {row['workflows']:>9,} {row['populate_s']:8.1f}s {reindex} "
          f"{row['list_logs_s']:8.3f}s {row['list_all_s']:8.3f}s{verdict(row, 'list_all_s'):<5}"
          f"{row['list_all_failed_s']:10.3f}s {row['get_status_ms']:7.2f} ms{verdict(row, 'get_status_ms'):<5}"
          f"{row['get_status_p95_ms']:5.1f}ms", flush=True)


def bench(settings) -> list[dict]:
    """The suite's run: list_all and get_status against the count of workflows, local and moto S3.

    The baseline is the storage's own ``list_logs()`` (the listing alone, no statuses). Quick: 100
    and 1,000 workflows local, 100 on S3; full: 100, 1,000 and 10,000 local, 100 and 1,000 on S3
    (writing and reindexing 10,000 logs on moto takes several minutes: ``list_scale.py`` does it).
    """
    from benchmarks._common import figure, sub_url

    counts = [100, 1_000] if settings.quick else [100, 1_000, 10_000]
    rows = []
    tmp = tempfile.mkdtemp(prefix="list-scale-")
    with moto_server() as endpoint:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        try:
            local = sub_url(settings.storage, f"list-scale-{os.getpid()}") if settings.storage else \
                os.path.join(tmp, "store")
            rows += measure("local" if not settings.storage else "storage", local, {}, counts, 64)
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="list-scale")
            rows += measure("s3", "s3://list-scale/bench", {"endpoint_url": endpoint, "max_pool_connections": 64},
                            counts[:1] if settings.quick else counts[:2], 64)
        finally:
            ray.shutdown()
            shutil.rmtree(tmp, ignore_errors=True)
    figures = []
    for row in rows:
        b, n, backend = "list_scale", row["workflows"], row["backend"]
        label = f"{backend}, {n:,} workflows"
        headline = n == max(r["workflows"] for r in rows if r["backend"] == backend)
        figures += [
            figure(b, f"list_all() {label}", "s", row["list_all_samples"], better="lower", summary=headline,
                   role="list_all", backend=backend, workflows=n),
            figure(b, f"storage list_logs() {label}", "s", row["list_logs_samples"], better="lower",
                   role="list_logs", backend=backend, workflows=n),
            figure(b, f"list_all / list_logs {label}", "x",
                   [a / lg for a, lg in zip(row["list_all_samples"], row["list_logs_samples"])],
                   better="lower", summary=headline, role="ratio", backend=backend, workflows=n),
            figure(b, f"get_status() {label}", "ms", row["get_status_samples"], better="lower", summary=headline,
                   role="get_status", backend=backend, workflows=n),
        ]
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 and 1,000 workflows only")
    parser.add_argument("--backend", choices=("local", "s3", "both"), default="both")
    parser.add_argument("--concurrency", type=int, default=64, help="logs written at once while populating")
    parser.add_argument("--output", default=RESULTS)
    args = parser.parse_args()
    counts = [100, 1_000] if args.quick else [100, 1_000, 10_000]
    backends = ["local", "s3"] if args.backend == "both" else [args.backend]

    stack = contextlib.ExitStack()
    endpoint = None
    if "s3" in backends:
        endpoint = stack.enter_context(moto_server())  # before ray.init: the env now holds the fake credentials
    tmp = tempfile.mkdtemp(prefix="list-scale-")
    print(HEADER, flush=True)
    rows = []
    try:
        ray.init(address="local", include_dashboard=False, log_to_driver=False)
        for backend in backends:
            if backend == "local":
                rows += measure("local", os.path.join(tmp, "store"), {}, counts, args.concurrency)
            else:
                import boto3

                bucket = "list-scale"
                boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
                options = {"endpoint_url": endpoint, "max_pool_connections": max(args.concurrency, 32)}
                rows += measure("s3", f"s3://{bucket}/bench", options, counts, args.concurrency)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        stack.close()
        shutil.rmtree(tmp, ignore_errors=True)

    print()
    print(HEADER)
    for row in rows:
        print_row(row)
    print("targets at 10,000: list_all <= 0.5 s local, <= 2 s moto S3; get_status <= 5 ms local (any count)")
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump({
            "ray_version": ray.__version__, "cpus": os.cpu_count(), "quick": args.quick,
            "status_index": hasattr(workflow, "reindex"),
            "targets": {f"{b}:{m}": v for (b, m), v in TARGETS.items()},
            "results": rows,
        }, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
