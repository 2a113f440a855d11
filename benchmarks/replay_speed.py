"""Replay speed: how many events per second are read, decoded and folded.

    .venv/bin/python benchmarks/replay_speed.py [--quick] [--events N] [--repeat R] [--no-s3]
                                                [--compaction-events N] [--snapshot-every K]

Writes one synthetic workflow log of N events (default 100,000; 10,000 with
``--quick``) the way the engine does (group-committed batches of events,
inline outputs, a few failures and retries), then measures:

* ``load_state``      the whole replay path: read + unframe (storage), decode, fold;
* ``decode+fold``     records already in memory: decode + fold;
* ``decode+fold, GC running``  the same without pausing the cyclic GC (the naive loop);
* ``fold``            events already decoded: the fold alone;

on local disk and on S3 (a moto_server started on 127.0.0.1 at a free port,
with fake credentials; skipped with a message if the "s3" scheme or moto is
missing). Each figure is the best of R runs.

Compaction: a second log of M events (default 1,000,000; 100,000 with ``--quick``) written
as the manager's runs write it, with a ``workflow.snapshot`` event and snapshot every K
events (default 10,000, the engine's default), is loaded with ``load_state`` (the snapshot
and the tail) and with ``load_state(use_snapshot=False)`` (the whole log), in the same run:
the ratio is the figure. On S3 it is appended 1,000 events per object (10x fewer PUTs to
write it; both loads read the same objects). Prints a table and writes JSON to
benchmarks/results/replay_speed.json. The target is >= 1,000,000 events/s
decode+fold from a local file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import moto_server  # noqa: E402

import replay  # noqa: E402
from replay import (  # noqa: E402
    PayloadRef,
    TaskCompleted,
    TaskFailed,
    TaskRetried,
    TaskScheduled,
    TaskStarted,
    WorkflowRunStarted,
    WorkflowSubmitted,
    WorkflowSucceeded,
)
from replay import snapshot_due, take_snapshot  # noqa: E402
from replay._snapshot import SNAPSHOT_BLOB  # noqa: E402
from storage_backends import open_storage, registered_schemes  # noqa: E402

TARGET = 1_000_000
WORKFLOW_ID = "bench-replay"
BATCH = 100  # events per append, like a busy group commit


def synthetic_events(n: int) -> list[replay.Event]:
    """A legal log of exactly ``n`` events (n >= 3): tasks run, one in 20 fails once and is retried."""
    ts = 1_700_000_000.0
    ref = PayloadRef(size=24, digest="0" * 32, type_name="builtins.int", inline=b"\x80\x05K*." + b"\0" * 19)
    events: list[replay.Event] = [
        WorkflowSubmitted(ts=ts, workflow_id=WORKFLOW_ID, dag=PayloadRef(size=2048, digest="1" * 32, blob="dag"),
                          user_metadata={"bench": True}),
        WorkflowRunStarted(ts=ts, run_id="bench-run"),
    ]
    i = 0
    while len(events) < n - 1:
        ts += 0.001
        task_id = f"step_{i}"
        events.append(TaskScheduled(ts=ts, task_id=task_id, name="bench.step", task_options={"num_cpus": 1}))
        events.append(TaskStarted(ts=ts, task_id=task_id, node_id="a" * 56, pid=4242))
        if i % 20 == 7:
            events.append(TaskFailed(ts=ts, task_id=task_id, error_type="ValueError", message="flaky",
                                     traceback="Traceback (most recent call last): ..."))
            events.append(TaskRetried(ts=ts, task_id=task_id, attempt=2))
            events.append(TaskStarted(ts=ts, task_id=task_id, attempt=2, node_id="a" * 56, pid=4243))
            events.append(TaskCompleted(ts=ts, task_id=task_id, output=ref, attempt=2))
        else:
            events.append(TaskCompleted(ts=ts, task_id=task_id, output=ref))
        i += 1
    # Cut to n - 1 at a point where the workflow can still legally end: drop a dangling tail.
    events = events[: n - 1]
    events.append(WorkflowSucceeded(ts=ts + 0.001, output=ref))
    state = replay.fold(events)  # fails loudly if the cut made the log illegal
    assert state.status is replay.WorkflowStatus.SUCCESSFUL
    return events


async def write_log(storage, events) -> None:
    seq = 0
    for start in range(0, len(events), BATCH):
        seq = await replay.append_events(storage, WORKFLOW_ID, events[start:start + BATCH], seq)


# Each timed run ends when the state is built; freeing the previous run's state
# (100,000 events' worth of objects) happens after the clock stops, as it would
# whenever a caller drops the state.

def best_of(repeat: int, fn) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times), statistics.median(times)


async def abest_of(repeat: int, fn) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - start)
        del result
    return min(times), statistics.median(times)


def decode_fold(records) -> replay.WorkflowState:
    decode = replay.decode_event
    return replay.fold((r.seq, decode(r.data)) for r in records)


def decode_fold_naive(records) -> replay.WorkflowState:
    """apply() per record with the cyclic GC left running: the path before tuning."""
    state = replay.WorkflowState()
    for record in records:
        replay.apply(state, replay.decode_event(record.data), record.seq)
    return state


async def measure(backend: str, storage, events, repeat: int) -> list[dict]:
    n = len(events)
    start = time.perf_counter()
    await write_log(storage, events)
    write_s = time.perf_counter() - start
    expected = replay.fold(events)
    records = await storage.read_all(WORKFLOW_ID)
    assert len(records) == n

    async def load():
        return await replay.load_state(storage, WORKFLOW_ID)

    # Checked once, outside the timed runs: comparing two 30,000-task states is not replay work.
    assert await replay.load_state(storage, WORKFLOW_ID) == expected
    rows = [("load_state (read+decode+fold)", *await abest_of(repeat, load))]
    if backend == "local":  # the in-memory rows do not depend on where the log came from
        rows.append(("decode+fold (records in memory)", *best_of(repeat, lambda: decode_fold(records))))
        rows.append(("decode+fold, GC running", *best_of(repeat, lambda: decode_fold_naive(records))))
        rows.append(("fold alone", *best_of(repeat, lambda: replay.fold(events))))
    results = [{
        "backend": backend, "measure": name, "events": n, "best_s": round(best, 6),
        "median_s": round(median, 6), "events_per_s": round(n / best),
    } for name, best, median in rows]
    results.append({"backend": backend, "measure": f"write ({BATCH} events/append)", "events": n,
                    "best_s": round(write_s, 6), "median_s": round(write_s, 6),
                    "events_per_s": round(n / write_s)})
    return results


# --- compaction -----------------------------------------------------------------------

COMPACTED_ID = "bench-compacted"


async def write_compacted_log(storage, events, every: int, batch: int) -> tuple[int, int]:
    """Append ``events`` as a run's writer does, a snapshot every ``every`` events (the event at
    once, the blob once that event is durable, as engine/runtime/_log_writer.py does). Only the
    last blob is stored: the writer replaces each with the next, and a load reads the last one.

    Returns:
        (events in the log, snapshot events in it).
    """
    state = replay.WorkflowState()
    seq, snapshots, pending = 0, 0, None
    for start in range(0, len(events), batch):
        chunk = list(events[start:start + batch])
        replay.fold(chunk, state)
        if snapshot_due(state, every):
            event, blob = take_snapshot(state)
            replay.apply(state, event)
            chunk.append(event)
            pending, snapshots = blob, snapshots + 1
        seq = await replay.append_events(storage, COMPACTED_ID, chunk, seq)
    if pending is not None:
        await storage.put_blob(COMPACTED_ID, SNAPSHOT_BLOB, pending)
    return seq, snapshots


async def measure_compaction(backend: str, storage, events, every: int, repeat: int, batch: int) -> list[dict]:
    start = time.perf_counter()
    n, snapshots = await write_compacted_log(storage, events, every, batch)
    write_s = time.perf_counter() - start

    async def compacted():
        return await replay.load_state(storage, COMPACTED_ID)

    async def whole():
        return await replay.load_state(storage, COMPACTED_ID, use_snapshot=False)

    # Checked once, outside the timed runs: the snapshot changes nothing.
    state = await compacted()
    assert state == await whole() and state.last_snapshot_seq > n - every - batch - 2
    snapshot_size = len(await storage.get_blob(COMPACTED_ID, SNAPSHOT_BLOB))
    best_c, median_c = await abest_of(repeat, compacted)
    best_w, median_w = await abest_of(repeat, whole)
    common = {"backend": backend, "events": n, "snapshot_every": every, "snapshots": snapshots,
              "tail_events": n - state.last_snapshot_seq, "snapshot_bytes": snapshot_size,
              "tasks": len(state.tasks), "events_per_append": batch, "write_s": round(write_s, 3)}
    return [
        {**common, "measure": "load, whole log (no snapshot)", "best_s": round(best_w, 6),
         "median_s": round(median_w, 6), "events_per_s": round(n / best_w)},
        {**common, "measure": "load, snapshot + tail", "best_s": round(best_c, 6),
         "median_s": round(median_c, 6), "events_per_s": round(n / best_c),
         "speedup_vs_whole": round(best_w / best_c, 2)},
    ]


# --- S3 on moto_server ------------------------------------------------------------

def s3_unavailable() -> str | None:
    if "s3" not in registered_schemes():
        return 'the "s3" storage scheme is not registered'
    try:
        import boto3  # noqa: F401
        import moto.server  # noqa: F401
    except ImportError as exc:
        return f"moto[server] / boto3 are not installed ({exc})"
    return None


async def measure_s3(events, repeat: int, compaction=None) -> tuple[list[dict], list[dict]]:
    import boto3

    with moto_server() as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        storage = open_storage(f"s3://{bucket}/replay", endpoint_url=endpoint)
        try:
            rows = await measure("s3", storage, events, repeat)
            compacted = []
            if compaction is not None:
                long_events, every, compaction_repeat = compaction
                compacted = await measure_compaction("s3", storage, long_events, every, compaction_repeat, 1000)
            return rows, compacted
        finally:
            await storage.close()


# --- main -----------------------------------------------------------------------------

def print_compaction(rows: list[dict]) -> None:
    if not rows:
        return
    print(f"\ncompaction: a log of {rows[0]['events']:,} events, a snapshot every {rows[0]['snapshot_every']:,}")
    print(f"{'backend':<8} {'measure':<32} {'best s':>9} {'median s':>9}  {'tail':>7} {'snapshot':>10}  speed-up")
    for row in rows:
        speedup = f"{row['speedup_vs_whole']:.1f}x" if "speedup_vs_whole" in row else ""
        print(f"{row['backend']:<8} {row['measure']:<32} {row['best_s']:>9.3f} {row['median_s']:>9.3f}  "
              f"{row['tail_events']:>7,} {row['snapshot_bytes'] / 2**20:>7.1f} MiB  {speedup}")


def print_table(results: list[dict]) -> None:
    print(f"\n{'backend':<8} {'measure':<32} {'events':>8} {'best s':>9} {'events/s':>12}  vs target")
    for row in results:
        mark = ""
        if row["measure"].startswith(("load_state", "decode+fold (records")) and row["backend"] == "local":
            mark = f"{row['events_per_s'] / TARGET:>6.0%}"
        print(f"{row['backend']:<8} {row['measure']:<32} {row['events']:>8,} {row['best_s']:>9.4f} "
              f"{row['events_per_s']:>12,}  {mark}")
    print(f"\ntarget: >= {TARGET:,} events/s decode+fold from a local file")


async def run(args) -> dict:
    n = args.events or (10_000 if args.quick else 100_000)
    repeat = args.repeat or (3 if args.quick else 5)
    events = synthetic_events(n)
    results, compaction = [], []
    long_n = args.compaction_events if args.compaction_events is not None else (
        100_000 if args.quick else 1_000_000)
    long_events = synthetic_events(long_n) if long_n else None
    compaction_repeat = 3
    root = tempfile.mkdtemp(prefix="replay-speed-")
    try:
        storage = open_storage(root)
        results += await measure("local", storage, events, repeat)
        if long_events:
            compaction += await measure_compaction("local", storage, long_events, args.snapshot_every,
                                                   compaction_repeat, BATCH)
        await storage.close()
    finally:
        shutil.rmtree(root, ignore_errors=True)
    s3_note = "skipped (--no-s3)" if args.no_s3 else s3_unavailable()
    if s3_note is None:
        rows, compacted = await measure_s3(events, max(1, repeat // 2), (long_events, args.snapshot_every,
                                                                        compaction_repeat) if long_events else None)
        results += rows
        compaction += compacted
    else:
        print(f"S3: skipped: {s3_note}")
    return {
        "benchmark": "replay_speed",
        "events": n,
        "repeat": repeat,
        "target_events_per_s": TARGET,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "s3": "measured" if s3_note is None else s3_note,
        "results": results,
        "compaction": compaction,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 events, fewer repeats")
    parser.add_argument("--events", type=int, default=0, help="log length (default 100,000)")
    parser.add_argument("--repeat", type=int, default=0, help="runs per measure; the best counts")
    parser.add_argument("--no-s3", action="store_true", help="skip the S3 (moto_server) measures")
    parser.add_argument("--compaction-events", type=int, default=None, metavar="M",
                        help="length of the compacted log (default 1,000,000; --quick 100,000; 0: skip)")
    parser.add_argument("--snapshot-every", type=int, default=replay.DEFAULT_SNAPSHOT_EVERY, metavar="K",
                        help="events between snapshots in the compacted log (default: the engine's, 10,000)")
    parser.add_argument("--output", default=os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                         "results", "replay_speed.json"))
    args = parser.parse_args()
    if args.events and args.events < 3:
        parser.error("--events must be at least 3")
    if args.snapshot_every < 1:
        parser.error("--snapshot-every must be at least 1")
    report = asyncio.run(run(args))
    print_table(report["results"])
    print_compaction(report["compaction"])
    os.makedirs(os.path.dirname(args.output), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
