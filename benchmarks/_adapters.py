"""Thin adapters from two benchmark scripts to the suite's figures.

replay_speed.py and throughput.py are being extended elsewhere (compaction figures; issue 14's
throughput work), so the suite calls their existing functions from here rather than changing them:
``replay_speed.synthetic_events``/``write_log`` and ``throughput.plain_one_tasks``,
``durable_one_tasks``, ``plain_chains``, ``durable_chains``, ``one_task_latency``, ``manager_rss``
and its ``_storage`` set-up (local, or S3 behind the latency proxy).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid

from benchmarks._common import figure, moto_server, sub_url

os.environ.setdefault("RAY_AUTH_MODE", "disabled")


# --- replay speed: load time vs log length ----------------------------------------------------


def replay_bench(settings) -> list[dict]:
    """``load_state`` time (read + decode + fold) against log length, and the raw read of the same bytes.

    Local disk always, S3 on moto unless unavailable, ``settings.storage`` if given. The baseline
    is ``Storage.read_all`` of the same log: the bytes alone, with no decoding or folding.
    """
    import replay_speed

    lengths = (1_000, 10_000) if settings.quick else (1_000, 10_000, 100_000)
    repeat = 3 if settings.quick else 5
    logs = {n: replay_speed.synthetic_events(n) for n in lengths}
    figures: list[dict] = []
    root = tempfile.mkdtemp(prefix="replay-suite-")
    try:
        figures += asyncio.run(_replay_backend("local", root, {}, logs, repeat))
        if settings.storage:
            url = sub_url(settings.storage, f"replay-{uuid.uuid4().hex[:8]}")
            figures += asyncio.run(_replay_backend("storage", url, {}, logs, repeat))
    finally:
        shutil.rmtree(root, ignore_errors=True)
    if replay_speed.s3_unavailable() is None:
        import boto3

        with moto_server() as endpoint:
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="replay-suite")
            figures += asyncio.run(_replay_backend("s3", "s3://replay-suite/logs", {"endpoint_url": endpoint},
                                                   logs, max(2, repeat // 2)))
    return figures


async def _replay_backend(backend: str, url: str, options: dict, logs: dict, repeat: int) -> list[dict]:
    import replay
    import replay_speed
    from storage_backends import open_storage

    figures = []
    for n, events in logs.items():
        storage = open_storage(sub_url(url, f"n{n}"), **options)
        try:
            await replay_speed.write_log(storage, events)
            expected = replay.fold(events)
            assert await replay.load_state(storage, replay_speed.WORKFLOW_ID) == expected
            loads, reads = [], []
            for _ in range(repeat):  # interleaved, so noise hits both
                start = time.perf_counter()
                await storage.read_all(replay_speed.WORKFLOW_ID)
                reads.append(time.perf_counter() - start)
                start = time.perf_counter()
                await replay.load_state(storage, replay_speed.WORKFLOW_ID)
                loads.append(time.perf_counter() - start)
            print(f"  {backend} {n:>7,} events: load_state {min(loads):.4f} s, read alone {min(reads):.4f} s",
                  flush=True)
        finally:
            await storage.delete(replay_speed.WORKFLOW_ID)
            await storage.close()
        b, label = "replay_speed", f"{backend}, {n:,} events"
        headline = n == max(logs)
        figures += [
            figure(b, f"load_state {label}", "s", loads, better="lower", role="load", backend=backend, events=n),
            figure(b, f"load_state events/s {label}", "events/s", [n / t for t in loads], summary=headline,
                   role="load_rate", backend=backend, events=n),
            figure(b, f"raw read_all {label}", "s", reads, better="lower", role="read", backend=backend, events=n),
            figure(b, f"load_state / raw read {label}", "x", [lo / r for lo, r in zip(loads, reads)],
                   better="lower", summary=headline, role="ratio", backend=backend, events=n),
        ]
    return figures


# --- throughput: workflows/s vs concurrency ---------------------------------------------------


def throughput_bench(settings) -> list[dict]:
    """Workflows/s against how many are submitted at once, durable vs the same plain Ray tasks.

    Local disk (or ``settings.storage``); the full run adds S3 behind the latency proxy
    (``settings.s3_latency_ms``). Also 10-task chains and the latency of one workflow alone.
    """
    import ray

    import throughput

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        ray.get([throughput.inc.remote(i) for i in range(200)])  # workers up
        backends = ["local"] if settings.quick else ["local", f"s3-{settings.s3_latency_ms:g}ms"]
        figures = []
        for backend in backends:
            figures += _throughput_backend(throughput, backend, settings)
        return figures
    finally:
        ray.shutdown()


class _Storage:
    """``throughput._storage`` for local and S3, ``settings.storage`` for local, any proxy delay."""

    def __init__(self, throughput, backend: str, settings, tmp: str):
        self.inner = None if backend == "local" and settings.storage else throughput._storage(
            "local" if backend == "local" else "s3-20ms", tmp)
        self.settings, self.backend = settings, backend

    def __enter__(self):
        if self.inner is None:
            return sub_url(self.settings.storage, f"throughput-{uuid.uuid4().hex[:8]}"), {}, None
        url, options, proxy = self.inner.__enter__()
        if proxy is not None:
            proxy.delay_s = self.settings.s3_latency_ms / 1000
            # Ray's workers were started before moto's fake credentials were set in this process's
            # environment, so the manager needs them as options (fake ones: moto takes any).
            options = {**options, "aws_access_key_id": "testing", "aws_secret_access_key": "testing",
                       "region_name": "us-east-1"}
        return url, options, proxy

    def __exit__(self, *exc):
        return self.inner.__exit__(*exc) if self.inner is not None else False


def _throughput_backend(throughput, backend: str, settings) -> list[dict]:
    import engine as workflow

    quick = settings.quick
    far = backend != "local"
    counts = (10, 100) if quick or far else (10, 100, 1000)
    repeats = 2 if quick or far else 3
    b = "throughput"
    figures = []
    with tempfile.TemporaryDirectory() as tmp, _Storage(throughput, backend, settings, tmp) as (url, options, _):
        workflow.init(url, storage_options=options)
        for i in range(10):
            workflow.run(throughput.inc.bind(i), workflow_id=f"warm-{uuid.uuid4().hex[:8]}")
        plain_ms, durable_ms = zip(*(throughput.one_task_latency(10 if quick or far else 30)
                                     for _ in range(repeats)))
        rss_before = throughput.manager_rss()
        figures += [
            figure(b, f"one plain task, {backend}", "ms", plain_ms, better="lower", role="plain",
                   shape="one-task latency", backend=backend),
            figure(b, f"one one-task workflow, {backend}", "ms", durable_ms, better="lower", summary=True,
                   role="durable", shape="one-task latency", backend=backend),
        ]
        for n in counts:
            plain, durable = [], []
            for _ in range(repeats):  # interleaved
                plain.append(n / throughput.plain_one_tasks(n))
                durable.append(n / throughput.durable_one_tasks(n))
            print(f"  {backend}: {n:>5} at once: {max(durable):8.1f} workflows/s (plain Ray {max(plain):8.1f}/s)",
                  flush=True)
            label = f"{n} one-task workflows at once, {backend}"
            figures += [
                figure(b, f"plain Ray: {label}", "tasks/s", plain, role="plain", shape="one-task",
                       backend=backend, concurrency=n),
                figure(b, f"durable: {label}", "workflows/s", durable, summary=n == counts[-1], role="durable",
                       shape="one-task", backend=backend, concurrency=n),
                figure(b, f"durable / plain: {label}", "x", [d / p for d, p in zip(durable, plain)],
                       summary=n == counts[-1], role="ratio", shape="one-task", backend=backend, concurrency=n),
            ]
        m = 20 if quick or far else 100
        plain = [m * 10 / throughput.plain_chains(m) for _ in range(repeats)]
        durable = [m * 10 / throughput.durable_chains(m) for _ in range(repeats)]
        figures += [
            figure(b, f"plain Ray: {m} 10-task chains at once, {backend}", "tasks/s", plain, role="plain",
                   shape="chains", backend=backend, concurrency=m),
            figure(b, f"durable: {m} 10-task chains at once, {backend}", "tasks/s", durable, role="durable",
                   shape="chains", backend=backend, concurrency=m),
        ]
        figures.append(figure(b, f"manager RSS growth over the run, {backend}", "MiB",
                              [throughput.manager_rss() - rss_before], better="lower", role="rss", backend=backend))
    return figures

