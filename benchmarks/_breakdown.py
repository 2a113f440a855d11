"""Where a one-task workflow's time goes: each step it takes, measured alone in the same run.

A one-task workflow (``workflow.run(f.bind(x))`` on local storage) takes, in order:

1. the driver builds and pickles the DAG and encodes its submission event;
2. one call to the manager actor, with the submission, whose reply is the output (an async
   actor round trip);
3. the manager's first append: the submission, its claim and the task's scheduled event, as a
   new log (a new file, made durable with its directory);
4. the manager's further appends to the workflow's log (the task's outcome with the
   workflow's end), each written and fsynced;
5. the task itself, sent by the manager to a worker (a plain Ray task round trip);
6. the status index's append for the workflow's end.

Each step is timed here on its own (median of ``repeats``), the number of appends is read off
a real workflow's log and the index, and what the steps do not explain is the engine's own
bookkeeping (folding its events, futures, hand-offs between the manager's threads).

What one workflow leaves on disk is measured too: the bytes of its log and blobs, the status
index's growth, and, where ``strace`` is installed, the fsync and fdatasync calls the driver
and the managers made for it (the local counterpart of S3's requests per workflow).
"""

from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
import uuid
from typing import Any

import ray
from _shapes import inc

import engine as workflow
from engine.api._init import context
from engine.api._workflows import submission_event
from engine.graph._build import build_graph
from engine.store import _payloads
from engine.store._index import INDEX_LOG
from engine.store._sync import run_sync
from replay import encode_event


@ray.remote(num_cpus=0)
class _Echo:
    """An async actor like the manager, doing nothing: the cost of the call alone."""

    async def echo(self, value: Any) -> Any:
        return value


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def _timed(repeats: int, step) -> float:
    samples = []
    for i in range(repeats):
        started = time.perf_counter()
        step(i)
        samples.append(time.perf_counter() - started)
    return _median_ms(samples)


def _submission(i: int, workflow_id: str) -> bytes:
    graph = build_graph(inc.bind(i), inputs=((), {}))
    data = graph.to_bytes()
    event, _env = submission_event(workflow_id, _payloads.make_ref(data, graph, None), {}, None)
    return encode_event(event)


def _appends_of_one_workflow() -> tuple[int, int]:
    """(appends to its own log, appends to the status index) of one one-task workflow."""
    storage = context().storage
    workflow_id = f"count-{uuid.uuid4().hex[:8]}"
    index_before = run_sync(storage.next_seq(INDEX_LOG))
    workflow.run(inc.bind(1), workflow_id=workflow_id)
    time.sleep(0.5)  # the index writer's group commit, if it waits for company

    async def batches() -> int:
        return sum([1 async for _ in storage.read_batches(workflow_id)])

    return run_sync(batches()), run_sync(storage.next_seq(INDEX_LOG)) - index_before


def _bytes_under(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _s, files in os.walk(path) for f in files)


def on_disk_per_workflow() -> dict:
    """What one one-task ``workflow.run`` stores on local disk, and its fsync calls.

    Returns:
        {"log_bytes": its directory (log and blobs), "index_bytes": the status index's growth,
        "fsyncs": fsync + fdatasync calls of the driver and the managers (None without strace)}.
    """
    storage = context().storage
    index_file = storage._log_path(INDEX_LOG)  # (a local store: its layout is known here)
    index_before = os.path.getsize(index_file) if os.path.exists(index_file) else 0
    pids = [os.getpid()] + [ray.get(m.describe.remote())["pid"] for m in context().managers]
    tracer = out = None
    if shutil.which("strace"):
        out = tempfile.NamedTemporaryFile(suffix=".strace", delete=False).name
        command = ["strace", "-f", "-c", "-e", "trace=fsync,fdatasync", "-o", out]
        for pid in pids:
            command += ["-p", str(pid)]
        tracer = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        time.sleep(1.0)  # every thread attached
    workflow_id = f"disk-{uuid.uuid4().hex[:8]}"
    workflow.run(inc.bind(1), workflow_id=workflow_id)
    time.sleep(0.5)  # the index writer's group commit, if it waits for company
    fsyncs = None
    if tracer is not None:
        tracer.send_signal(signal.SIGINT)
        tracer.wait(timeout=30)
        with open(out) as f:
            fsyncs = sum(int(line.split()[3]) for line in f
                         if line.split() and line.split()[-1] in ("fsync", "fdatasync"))
        os.unlink(out)
    return {"log_bytes": _bytes_under(os.path.dirname(storage._log_path(workflow_id))),
            "index_bytes": os.path.getsize(index_file) - index_before, "fsyncs": fsyncs}


def one_task_breakdown(durable_ms: float, plain_ms: float, repeats: int = 200) -> dict:
    """Each step's median ms, how many of each a one-task workflow takes, and the remainder.

    Args:
        durable_ms, plain_ms: the one-task workflow's and the plain task's medians, measured
            just before in the same run (``throughput.one_task_latency``).
    """
    storage = context().storage
    tag = uuid.uuid4().hex[:8]
    build_ms = _timed(repeats, lambda i: _submission(i, f"b-{tag}-{i}"))
    records = [_submission(i, f"n-{tag}-{i}") for i in range(repeats)]
    new_log_ms = _timed(repeats, lambda i: run_sync(storage.append(f"n-{tag}-{i}", [records[i]], 0)))
    existing = f"e-{tag}"
    run_sync(storage.append(existing, [records[0]], 0))
    append_ms = _timed(repeats, lambda i: run_sync(storage.append(existing, [records[0]], i + 1)))
    echo = _Echo.remote()
    ray.get(echo.echo.remote(0))
    actor_ms = _timed(repeats, lambda i: ray.get(echo.echo.remote(i)))
    ray.kill(echo)
    task_ms = _timed(repeats, lambda i: ray.get(inc.remote(i)))
    log_appends, index_appends = _appends_of_one_workflow()
    further = log_appends - 1  # the first makes the log
    steps = {
        "build and encode the submission (driver)": build_ms,
        "call the manager, get the output back (actor round trip)": actor_ms,
        "the manager's first append: submission and claim as a new log, durably": new_log_ms,
        f"the manager's further appends to the log ({further} x {append_ms:.2f} ms)": further * append_ms,
        "the task (plain Ray task round trip)": task_ms,
        f"the status index's appends ({index_appends} x {append_ms:.2f} ms)": index_appends * append_ms,
    }
    explained = sum(steps.values())
    return {"durable_ms": durable_ms, "plain_ms": plain_ms, "steps_ms": steps,
            "log_appends": log_appends, "index_appends": index_appends,
            "unexplained_ms": durable_ms - explained, "on_disk": on_disk_per_workflow()}


def print_breakdown(breakdown: dict) -> None:
    print(f"\nwhere a one-task workflow's {breakdown['durable_ms']:.2f} ms go "
          f"(a plain task: {breakdown['plain_ms']:.2f} ms); each step alone, median:")
    for name, ms in breakdown["steps_ms"].items():
        print(f"  {ms:6.2f} ms  {name}")
    print(f"  {breakdown['unexplained_ms']:6.2f} ms  the rest: the engine's bookkeeping and hand-offs "
          "(folding events, futures, threads), and steps overlapping")
    disk = breakdown.get("on_disk")
    if disk:
        fsyncs = "not counted (no strace)" if disk["fsyncs"] is None else disk["fsyncs"]
        print(f"stored per one-task workflow: its log and blobs {disk['log_bytes']} bytes, the status index "
              f"+{disk['index_bytes']} bytes; fsync/fdatasync calls: {fsyncs}")
    print(f"appends one after another per one-task workflow (the storage's sequential round trips): "
          f"{breakdown['log_appends'] + breakdown['index_appends']} ({breakdown['log_appends']} to its log, "
          f"{breakdown['index_appends']} to the status index)")
