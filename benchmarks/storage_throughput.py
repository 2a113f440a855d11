"""Storage throughput: events/s appended (durably) and read back, per backend.

    .venv/bin/python benchmarks/storage_throughput.py [--quick] [--no-s3] [--sizes 100,4096] [--batches 1,10,100,1000]

For every backend (local disk; S3 on a moto_server this script starts on
127.0.0.1 at a free port, with fake credentials), every event size (~100 B and
~4 KB) and every batch size (1, 10, 100, 1000 records per append):

* ``append``: events/s through ``Storage.append`` (compare-and-append, durable
  on return: the local backend fsyncs, S3 has the PUT acknowledged);
* ``read``: events/s through ``Storage.read_all`` of the log just written;
* local only, ``raw``: ``os.write`` + ``os.fsync`` of exactly the same framed
  bytes to a plain file in the same directory, measured in the same run and
  interleaved with the backend's rounds (so machine noise hits both), and the
  ratio backend / raw (per append; 1.00 = no overhead over the disk).

Each figure is the median of several rounds (the best is in the JSON as
``*_best``); the ratio is the median, over rounds, of a backend round's time
over that of the raw round run right next to it (alternately before and
after). Prints a table and writes JSON to
benchmarks/results/storage_throughput.json. The full run takes about 20 s
(``--quick``: about 5 s).

Targets: local batch-1 append within 1.5x of raw write+fsync; local batch-1000
>= 200,000 events/s; S3 (moto) batch-1000 >= 20,000 events/s; local read-back
>= 500,000 events/s. (Event-rate targets are checked on the ~100 B events: at
4 KB they would mean GB/s.)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks._common import moto_server, write_results  # noqa: E402
from storage_backends import open_storage, registered_schemes  # noqa: E402
from storage_backends._framing import encode_batch  # noqa: E402

BATCHES = (1, 10, 100, 1000)
SIZES = (100, 4096)

TARGET_LOCAL_B1_RATIO = 1.5
TARGET_LOCAL_B1000 = 200_000
TARGET_S3_B1000 = 20_000
TARGET_READ = 500_000


def plan(backend: str, batch: int, size: int, quick: bool) -> tuple[int, int]:
    """(appends, rounds) for one configuration: enough to be stable, bounded in bytes.

    Local rounds are short and many, each paired with a raw round right before
    it, so that the noise of a busy machine hits both sides of each ratio.
    """
    if backend == "local":
        appends, rounds = {1: (3000, 60), 10: (1000, 40), 100: (300, 20), 1000: (60, 10)}[batch]
        max_bytes = 64 << 20
    elif backend.startswith("s3-"):  # behind the latency proxy: each PUT costs a round trip
        appends, rounds = {1: (40, 5), 10: (40, 5), 100: (25, 5), 1000: (15, 5)}[batch]
        max_bytes = 24 << 20
    else:
        appends, rounds = {1: (150, 3), 10: (80, 3), 100: (40, 3), 1000: (15, 3)}[batch]
        max_bytes = 24 << 20
    if quick:
        appends //= 5
        rounds = max(3, rounds // 3)
        max_bytes //= 4
    appends = max(3, min(appends, max_bytes // (batch * size)))
    rounds = min(rounds, appends)
    return appends - appends % rounds, rounds


def make_batches(appends: int, batch: int, size: int) -> list[list[bytes]]:
    pool = [os.urandom(size) for _ in range(min(max(batch, 64), 1000))]
    out, k = [], 0
    for _ in range(appends):
        records = []
        for _ in range(batch):
            records.append(pool[k % len(pool)])
            k += 1
        out.append(records)
    return out


def raw_round(path: str, frames: list[bytes]) -> float:
    """Seconds to write+fsync each frame to ``path`` (appending), one fsync per frame."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        write, fsync = os.write, os.fsync
        start = time.perf_counter()
        for frame in frames:
            write(fd, frame)
            fsync(fd)
        return time.perf_counter() - start
    finally:
        os.close(fd)


async def storage_round(storage, log_id: str, batches: list[list[bytes]], seq: int) -> tuple[float, int]:
    append = storage.append
    start = time.perf_counter()
    for records in batches:
        seq = await append(log_id, records, seq)
    return time.perf_counter() - start, seq


def local_raw(raw_dir: str | None, log_id: str):
    """The raw baseline for local appends: ``write+fsync`` of the frames to a plain file beside the log."""
    if raw_dir is None:
        return None
    path = os.path.join(raw_dir, f"raw-{log_id}.bin")

    async def raw(frames: list[bytes]) -> float:
        return raw_round(path, frames)

    raw.cleanup = lambda: os.path.exists(path) and os.remove(path)
    return raw


def s3_raw(storage, log_id: str):
    """The raw baseline for S3 appends: one plain ``PutObject`` per frame, same client, same bytes.

    No condition, no metadata, no bookkeeping: what any writer of those bytes must pay.
    """
    keys = []

    async def raw(frames: list[bytes]) -> float:
        s3 = await storage._s3()
        start = time.perf_counter()
        for frame in frames:
            key = f"{storage._base}raw-baseline/{log_id}/{len(keys):012d}"
            await s3.put_object(Bucket=storage.bucket, Key=key, Body=frame)
            keys.append(key)
        return time.perf_counter() - start

    async def cleanup():
        s3 = await storage._s3()
        for key in keys:
            await s3.delete_object(Bucket=storage.bucket, Key=key)

    raw.cleanup = cleanup
    return raw


async def bench_config(backend: str, storage, raw_dir: str | None, batch: int, size: int,
                       quick: bool) -> dict:
    appends, rounds = plan(backend, batch, size, quick)
    batches = make_batches(appends, batch, size)
    per_round = appends // rounds
    log_id = f"bench-{backend}-{size}-{batch}-{uuid.uuid4().hex[:8]}"
    # the exact frames the backend writes, for the raw baseline
    frames, seq = [], 0
    for records in batches:
        frames.append(encode_batch(seq, records))
        seq += len(records)
    raw = s3_raw(storage, log_id) if hasattr(storage, "bucket") else local_raw(raw_dir, log_id)

    # warm up: first append creates the directory and the file (not what we measure)
    await storage.append(log_id, batches[0], 0)
    seq = batch
    if raw:
        await raw(frames[:1])

    append_times, raw_times = [], []
    gc.collect()
    for r in range(rounds):
        chunk = slice(r * per_round, (r + 1) * per_round)
        if raw and r % 2 == 0:  # alternate which side of a pair runs first
            raw_times.append(await raw(frames[chunk]))
        elapsed, seq = await storage_round(storage, log_id, batches[chunk], seq)
        append_times.append(elapsed)
        if raw and r % 2 == 1:
            raw_times.append(await raw(frames[chunk]))
    events = seq
    assert await storage.next_seq(log_id) == events

    read_times = []
    for _ in range(3 if hasattr(storage, "bucket") else 5):
        start = time.perf_counter()
        records = await storage.read_all(log_id)
        read_times.append(time.perf_counter() - start)
        assert len(records) == events and records[-1].seq == events - 1
    assert records[-1].data == batches[-1][-1] and records[batch].data == batches[0][0]
    del records

    ev_per_round = per_round * batch
    median_append = statistics.median(append_times)
    row = {
        "backend": backend, "event_bytes": size, "batch": batch, "appends": per_round * rounds,
        "rounds": rounds, "events_in_log": events,
        "append_events_per_s": round(ev_per_round / median_append),
        "append_events_per_s_best": round(ev_per_round / min(append_times)),
        "append_us": round(median_append / per_round * 1e6, 1),
        "append_us_best": round(min(append_times) / per_round * 1e6, 1),
        "read_events_per_s": round(events / statistics.median(read_times)),
        "read_events_per_s_best": round(events / min(read_times)),
        # per round, for the suite's min/median/max
        "append_samples": [ev_per_round / t for t in append_times],
        "read_samples": [events / t for t in read_times],
    }
    if raw_times:
        median_raw = statistics.median(raw_times)
        row["raw_events_per_s"] = round(ev_per_round / median_raw)
        row["raw_us"] = round(median_raw / per_round * 1e6, 1)
        row["raw_us_best"] = round(min(raw_times) / per_round * 1e6, 1)
        # each backend round against the raw round run right next to it, then the median
        row["ratio"] = round(statistics.median(a / w for a, w in zip(append_times, raw_times)), 3)
        row["ratio_best"] = round(min(append_times) / min(raw_times), 3)
        row["raw_samples"] = [ev_per_round / t for t in raw_times]
        row["ratio_samples"] = [a / w for a, w in zip(append_times, raw_times)]
        done = raw.cleanup()
        if asyncio.iscoroutine(done):
            await done
    await storage.delete(log_id)
    return row


async def bench_backend(backend: str, url: str, options: dict, raw_dir: str | None, args) -> list[dict]:
    storage = open_storage(url, **options)
    rows = []
    quick = args.quick
    try:
        for size in args.sizes:
            for batch in args.batches:
                row = await bench_config(backend, storage, raw_dir, batch, size, quick)
                print_row(row)
                rows.append(row)
    finally:
        await storage.close()
    return rows


def s3_unavailable() -> str | None:
    if "s3" not in registered_schemes():
        return "backend not registered"
    try:
        for module in ("boto3", "moto.server"):
            importlib.import_module(module)
    except ImportError as exc:
        return f"moto[server] / boto3 are not installed ({exc})"
    return None


async def bench_s3(args) -> list[dict]:
    import boto3

    with moto_server() as endpoint:
        bucket = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
        return await bench_backend("s3", f"s3://{bucket}/bench", {"endpoint_url": endpoint}, None, args)


# --- group commit: concurrent writers of one log, at a region's distance ----------------------


def _head(workflow_id: str) -> list:
    from replay import PayloadRef, WorkflowRunStarted, WorkflowSubmitted

    return [WorkflowSubmitted(ts=time.time(), workflow_id=workflow_id,
                              dag=PayloadRef(size=2048, digest="1" * 32, blob="dag")),
            WorkflowRunStarted(ts=time.time(), run_id="bench-run")]


def _scheduled(writer: int, i: int):
    from replay import TaskScheduled

    return TaskScheduled(ts=time.time(), task_id=f"w{writer}-{i}", name="bench.step",
                         task_options={"num_cpus": 1})


async def group_commit_round(storage, writers: int, events: int, grouped: bool) -> float:
    """Events/s when ``writers`` coroutines make ``events`` events durable, each one at a time.

    ``grouped``: through the engine's LogWriter (events queued while an append is in flight go
    out together in the next). Otherwise each event is its own compare-and-append, in turn (a
    log has one writer at a time): what writers without group commit get.
    """
    from engine.runtime._log_writer import LogWriter
    from replay import WorkflowState, append_events

    log_id = f"gc-{writers}-{uuid.uuid4().hex[:8]}"
    head = _head(log_id)
    if grouped:
        log = LogWriter(storage, log_id, WorkflowState())
        await log.write(*head)

        async def writer(k: int) -> None:
            for i in range(events // writers):
                await log.write(_scheduled(k, i))
    else:
        seq = await append_events(storage, log_id, head, 0)
        turn = asyncio.Lock()
        taken = 0

        async def writer(k: int) -> None:
            nonlocal seq, taken
            while True:
                async with turn:
                    if taken == events:
                        return
                    seq = await append_events(storage, log_id, [_scheduled(k, taken)], seq)
                    taken += 1
    start = time.perf_counter()
    await asyncio.gather(*(writer(k) for k in range(writers)))
    elapsed = time.perf_counter() - start
    assert await storage.next_seq(log_id) == len(head) + events
    await storage.delete(log_id)
    return events / elapsed


async def raw_put_round(storage, events: int) -> float:
    """Events/s of plain PutObjects of one encoded event each, in turn (the baseline)."""
    from replay import encode_event

    raw = s3_raw(storage, f"gc-raw-{uuid.uuid4().hex[:8]}")
    frame = encode_batch(0, [encode_event(_scheduled(0, 0))])
    elapsed = await raw([frame] * events)
    await raw.cleanup()
    return events / elapsed


async def bench_group_commit(storage, writer_counts, rounds: int, quick: bool = False) -> list[dict]:
    rows = []
    for writers in writer_counts:
        grouped, single, raw = [], [], []
        for _ in range(rounds):
            grouped.append(await group_commit_round(storage, writers, 5 * writers, grouped=True))
            # in turn, the rate does not depend on the writer count: a few events in all, shared
            single.append(await group_commit_round(storage, writers, 8 if quick else 16, grouped=False))
            raw.append(await raw_put_round(storage, 8))
        rows.append({"writers": writers, "grouped": grouped, "one_append_per_event": single, "raw_put": raw})
        print(f"  group commit, {writers:>3} writers: {statistics.median(grouped):8,.0f} events/s grouped, "
              f"{statistics.median(single):6,.0f} one append per event, {statistics.median(raw):6,.0f} raw PUTs",
              flush=True)
    return rows


# --- the suite's entry: python -m benchmarks --------------------------------------------------


def bench(settings) -> list[dict]:
    """The suite's run: figures (see ``benchmarks._common.figure``) for every backend.

    Local disk (against raw write+fsync), S3 on moto (against raw PutObject), the same S3 behind
    the latency proxy (``settings.s3_latency_ms`` each way), group commit there against
    concurrent writers, and ``settings.storage`` if given.
    """
    return asyncio.run(_bench(settings))


async def _bench(settings) -> list[dict]:
    from benchmarks._common import figure, sub_url
    from benchmarks._proxy import LatencyProxy

    quick = settings.quick
    args = argparse.Namespace(quick=quick, sizes=[100] if quick else list(SIZES), batches=list(BATCHES))
    rows, group = [], []
    root = tempfile.mkdtemp(prefix="storage-throughput-")
    try:
        rows += await bench_backend("local", os.path.join(root, "store"), {}, root, args)
        if settings.storage:
            url = sub_url(settings.storage, f"bench-{uuid.uuid4().hex[:8]}")
            local = "://" not in url or url.startswith("file://")
            raw_dir = url.removeprefix("file://") if local else None
            if raw_dir:
                os.makedirs(raw_dir, exist_ok=True)
            rows += await bench_backend("storage", url, {}, raw_dir, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    note = s3_unavailable()
    if note is None:
        import boto3

        with moto_server() as endpoint:
            bucket = f"bench-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=bucket)
            near = argparse.Namespace(quick=quick, sizes=args.sizes, batches=[1, 100, 1000] if quick else BATCHES)
            rows += await bench_backend("s3", f"s3://{bucket}/bench", {"endpoint_url": endpoint}, None, near)
            delay = settings.s3_latency_ms / 1000
            name = f"s3-{settings.s3_latency_ms:g}ms"
            with LatencyProxy(int(endpoint.rsplit(":", 1)[1]), delay) as proxy:
                far = argparse.Namespace(quick=quick, sizes=[100], batches=[1, 1000] if quick else list(BATCHES))
                rows += await bench_backend(name, f"s3://{bucket}/far", {"endpoint_url": proxy.url}, None, far)
                storage = open_storage(f"s3://{bucket}/gc", endpoint_url=proxy.url)
                try:
                    group = await bench_group_commit(storage, (1, 64) if quick else (1, 4, 16, 64),
                                                     2 if quick else 3, quick)
                finally:
                    await storage.close()
    else:
        print(f"S3 skipped: {note}")

    b = "storage_throughput"
    figures = []
    for row in rows:
        where = dict(backend=row["backend"], batch=row["batch"], event_bytes=row["event_bytes"])
        label = f"{row['backend']} batch {row['batch']}, {row['event_bytes']} B"
        headline = row["event_bytes"] == 100 and row["batch"] in (1, 1000)
        figures.append(figure(b, f"append {label}", "events/s", row["append_samples"], summary=headline,
                              role="append", **where))
        figures.append(figure(b, f"read {label}", "events/s", row["read_samples"], role="read", **where))
        if "raw_samples" in row:
            raw = "raw write+fsync" if row["backend"] in ("local", "storage") else "raw PutObject"
            figures.append(figure(b, f"{raw} {label}", "events/s", row["raw_samples"], role="raw", **where))
            figures.append(figure(b, f"append / {raw} {label}", "x", row["ratio_samples"], better="lower",
                                  summary=headline, role="ratio", **where))
    for row in group:
        where = dict(backend=f"s3-{settings.s3_latency_ms:g}ms", writers=row["writers"])
        label = f"{row['writers']} writers, {settings.s3_latency_ms:g} ms each way"
        figures.append(figure(b, f"group commit {label}", "events/s", row["grouped"],
                              summary=row["writers"] == 64, role="grouped", **where))
        figures.append(figure(b, f"one append per event {label}", "events/s", row["one_append_per_event"],
                              role="single", **where))
        figures.append(figure(b, f"raw PutObject per event {label}", "events/s", row["raw_put"],
                              role="raw_put", **where))
        figures.append(figure(b, f"group commit / one append per event {label}", "x",
                              [g / s for g, s in zip(row["grouped"], row["one_append_per_event"])],
                              summary=row["writers"] == 64, role="gain", **where))
    return figures


# --- report ---------------------------------------------------------------------------

HEADER = (f"{'backend':<7} {'event':>6} {'batch':>5} {'appends':>7} {'append ev/s':>12} {'us/append':>10} "
          f"{'raw ev/s':>11} {'raw us':>9} {'ratio':>6} {'read ev/s':>11}")


def print_row(row: dict) -> None:
    raw = (f"{row['raw_events_per_s']:>11,} {row['raw_us']:>9.1f} {row['ratio']:>6.2f}"
           if "ratio" in row else f"{'-':>11} {'-':>9} {'-':>6}")
    print(f"{row['backend']:<7} {row['event_bytes']:>5}B {row['batch']:>5} {row['appends']:>7} "
          f"{row['append_events_per_s']:>12,} {row['append_us']:>10.1f} {raw} {row['read_events_per_s']:>11,}",
          flush=True)


def check_targets(rows: list[dict]) -> list[dict]:
    def find(backend, batch, size=100):
        return next((r for r in rows if (r["backend"], r["batch"], r["event_bytes"]) == (backend, batch, size)),
                    None)

    checks = []
    for size in SIZES:
        row = find("local", 1, size)
        if row:
            checks.append({"target": f"local batch-1 append <= {TARGET_LOCAL_B1_RATIO}x raw write+fsync "
                                     f"({size} B)", "value": row["ratio"],
                           "met": row["ratio"] <= TARGET_LOCAL_B1_RATIO})
    row = find("local", 1000)
    if row:
        checks.append({"target": f"local batch-1000 append >= {TARGET_LOCAL_B1000:,} events/s (100 B)",
                       "value": row["append_events_per_s"], "met": row["append_events_per_s"] >= TARGET_LOCAL_B1000})
    row = find("s3", 1000)
    if row:
        checks.append({"target": f"S3 (moto) batch-1000 append >= {TARGET_S3_B1000:,} events/s (100 B)",
                       "value": row["append_events_per_s"], "met": row["append_events_per_s"] >= TARGET_S3_B1000})
    for batch in BATCHES:
        row = find("local", batch)
        if row:
            checks.append({"target": f"local read-back >= {TARGET_READ:,} events/s (100 B, batch {batch})",
                           "value": row["read_events_per_s"], "met": row["read_events_per_s"] >= TARGET_READ})
    return checks


async def run(args) -> dict:
    rows: list[dict] = []
    print(HEADER, flush=True)
    root = tempfile.mkdtemp(prefix="storage-throughput-", dir=args.dir)
    try:
        rows += await bench_backend("local", os.path.join(root, "store"), {}, root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    s3_note = "skipped (--no-s3)" if args.no_s3 else s3_unavailable()
    if s3_note is None:
        rows += await bench_s3(args)
    else:
        print(f"S3 skipped: {s3_note}")
    checks = check_targets(rows)
    print()
    for check in checks:
        value = check["value"]
        shown = f"{value:.2f}x" if isinstance(value, float) else f"{value:,}"
        print(f"  [{'met ' if check['met'] else 'MISS'}] {check['target']}: {shown}")
    return {
        "benchmark": "storage_throughput",
        "quick": args.quick,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "s3": "measured (moto_server on 127.0.0.1)" if s3_note is None else s3_note,
        "results": rows,
        "targets": checks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small run (about 5x fewer appends)")
    parser.add_argument("--no-s3", action="store_true", help="skip S3 (moto_server)")
    parser.add_argument("--sizes", type=lambda v: [int(x) for x in v.split(",")], default=list(SIZES),
                        help="event sizes in bytes, comma-separated (default 100,4096)")
    parser.add_argument("--batches", type=lambda v: [int(x) for x in v.split(",")], default=list(BATCHES),
                        help="batch sizes, comma-separated (default 1,10,100,1000)")
    parser.add_argument("--dir", default=None, help="where the local logs go (default: the temp dir)")
    parser.add_argument("--output", default=None, help="JSON path (default benchmarks/results/...)")
    args = parser.parse_args()
    report = asyncio.run(run(args))
    print(f"wrote {write_results('storage_throughput', report, args.output)}")


if __name__ == "__main__":
    main()
