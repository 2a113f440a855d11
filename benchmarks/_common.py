"""Helpers shared by the benchmarks: a throwaway moto_server, timing, results."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

RESULTS_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _moto_command(port: int) -> list[str]:
    """``.venv/bin/moto_server`` next to this interpreter if present, else ``python -m moto.server``."""
    exe = os.path.join(os.path.dirname(sys.executable), "moto_server")
    if os.access(exe, os.X_OK):
        return [exe, "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def fake_aws_env() -> None:
    """Fake credentials, no host AWS config: nothing can reach a real account."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    })


@contextlib.contextmanager
def moto_server(timeout: float = 60.0):
    """Start ``moto_server`` on 127.0.0.1 at a free port; yield its endpoint URL; stop it."""
    fake_aws_env()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(_moto_command(port), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"moto_server exited with code {process.returncode}")
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=2):
                    break
            except urllib.error.HTTPError:
                break  # it answered
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not answer within {timeout:.0f}s") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_results(name: str, report: dict, path: str | None = None) -> str:
    path = path or os.path.join(RESULTS_DIR, f"{name}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(report, f, indent=2)
    return path


# --- figures for the suite (python -m benchmarks) ------------------------------------------


@dataclasses.dataclass
class Settings:
    """What ``python -m benchmarks`` passes to each benchmark's ``bench(settings)``.

    Attributes:
        quick: the small run (the whole suite in under 3 minutes on 2 cores).
        storage: a storage URL to measure instead of a fresh temp dir (local path, file:// or
            s3://); None: a temp dir, plus a throwaway moto_server where a benchmark measures S3.
        s3_latency_ms: one-way delay the latency proxy adds in front of moto_server, ms.
        peers: the peers to measure side by side (``ray-workflow``, ``dbos``).
        ray_workflow_python: the interpreter of a virtualenv with ray==2.47.1 (``--peer ray-workflow``).
        dbos_python: the interpreter of a virtualenv with dbos (``--peer dbos``).
    """

    quick: bool = False
    storage: str | None = None
    s3_latency_ms: float = 20.0
    peers: list = dataclasses.field(default_factory=list)
    ray_workflow_python: str | None = None
    dbos_python: str | None = None


def figure(benchmark: str, name: str, unit: str, samples, *, better: str = "higher",
           summary: bool = False, **params) -> dict:
    """One figure of a benchmark: its samples (one per repeat) and their min/median/max.

    Args:
        benchmark: the benchmark's name (``storage_throughput``...).
        name: what was measured, unique within the benchmark (``append local b=1 100B``).
        unit: ``events/s``, ``ms/task``, ``s``, ``x`` (a ratio to the baseline)...
        samples: one value per repeat (at least one).
        better: ``higher`` or ``lower``, for readers of the table.
        summary: whether the suite's summary table shows it (results.json has every figure).
        **params: what the chart plots it by (backend, batch, concurrency, role...).
    """
    values = [float(v) for v in samples]
    if not values:
        raise ValueError(f"figure {benchmark}/{name}: no samples")
    return {"benchmark": benchmark, "name": name, "unit": unit, "better": better, "summary": summary,
            "params": params, "repeats": len(values), "min": min(values),
            "median": statistics.median(values), "max": max(values), "samples": values}


def sub_url(url: str, name: str) -> str:
    """``url`` with ``/name`` added to its path (before any ``?query``): a fresh place under it."""
    base, sep, query = url.partition("?")
    return f"{base.rstrip('/')}/{name}{sep}{query}"
