"""Recovery: from a manager's death to its workflow running again, against Ray's own actor restart.

    .venv/bin/python benchmarks/recovery.py [--quick] [--backend local|s3]

One Ray instance. Baseline, measured in the same run: a plain async actor with
``max_restarts=-1`` is ``kill -9``ed; the time until a call to it answers again is Ray's own
restart time. Engine: a long workflow runs; the manager's process is ``kill -9``ed; the time
until the restarted manager says the workflow is RUNNING again (it took it on: read its log,
wrote its lease, claimed the log) is the recovery time. Each is repeated (20 kills, 5 with
--quick) and the medians compared.

Lease cost: the manager renews its lease every third of ``lease_duration`` while it drives
anything, one write per renewal whatever the number of workflows. Measured here as the
manager's lease writes over a window with 1 and with 20 running workflows, given per minute
per cluster and per running workflow, for the default 30 s lease (scaled from a short lease,
so the window stays short: the rate is 180 / lease_duration writes a minute).

Prints a table; writes JSON to benchmarks/results/recovery.json.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import sys
import tempfile
import time
import uuid

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine as workflow  # noqa: E402
from _common import fake_aws_env, moto_server, write_results  # noqa: E402
from engine.api._init import context  # noqa: E402

DEFAULT_LEASE_S = 30.0


@ray.remote(num_cpus=0, max_restarts=-1, max_concurrency=10)
class Restartable:
    async def pid(self) -> int:
        return os.getpid()


@ray.remote(num_cpus=0)
def nap(prev, seconds):
    time.sleep(seconds)
    return prev + 1


def _until(condition, timeout=120.0, poll=0.005) -> float:
    start = time.perf_counter()
    while not condition():
        if time.perf_counter() - start > timeout:
            raise TimeoutError("gave up waiting")
        time.sleep(poll)
    return time.perf_counter() - start


def _true(call) -> bool:
    """``call()``, with an error (the actor still restarting) counting as False."""
    try:
        return bool(call())
    except Exception:
        return False


def ray_restart_times(kills: int) -> list[float]:
    actor = Restartable.options(name=f"restartable-{uuid.uuid4().hex[:6]}", lifetime="detached").remote()
    times = []
    for _ in range(kills):
        old = ray.get(actor.pid.remote())
        os.kill(old, signal.SIGKILL)
        started = time.perf_counter()
        _until(lambda: _true(lambda: ray.get(actor.pid.remote(), timeout=5) != old))
        times.append(time.perf_counter() - started)
    ray.kill(actor)
    return times


def engine_recovery_times(kills: int) -> list[float]:
    node = 0
    for _ in range(2000):
        node = nap.bind(node, 0.05)
    wid = f"recovery-{uuid.uuid4().hex[:6]}"
    ref = workflow.run_async(node, workflow_id=wid)
    manager = context().manager
    times = []
    for _ in range(kills):
        _until(lambda: ray.get(manager.live_status.remote(wid)) == "RUNNING")
        old = ray.get(manager.describe.remote())["pid"]
        os.kill(old, signal.SIGKILL)
        started = time.perf_counter()

        def running_again() -> bool:
            info = ray.get(manager.describe.remote(), timeout=5)
            return info["pid"] != old and ray.get(manager.live_status.remote(wid), timeout=5) == "RUNNING"

        _until(lambda: _true(running_again))
        times.append(time.perf_counter() - started)
    workflow.cancel(wid)
    _settle([ref])
    return times


def lease_writes(workflows: int, lease_s: float, window_s: float) -> float:
    """The manager's lease writes per minute while ``workflows`` long workflows run."""
    manager = context().manager
    refs = [workflow.run_async(nap.bind(0, window_s * 4 + 10), workflow_id=f"lease-{uuid.uuid4().hex[:8]}")
            for _ in range(workflows)]
    for _ in range(3):  # a manager restarted within the window (a busy machine) starts its count again
        before = _describe(manager)
        time.sleep(window_s)
        after = _describe(manager)
        if after["pid"] == before["pid"]:
            break
    before, after = before["lease_writes"], after["lease_writes"]
    for workflow_id, _status in workflow.list_all("RUNNING"):
        workflow.cancel(workflow_id)
    _settle(refs)
    return (after - before) * 60.0 / window_s


def _describe(manager) -> dict:
    """The manager's ``describe()``, waiting out a restart."""
    _until(lambda: _true(lambda: ray.get(manager.describe.remote(), timeout=5)))
    return ray.get(manager.describe.remote(), timeout=30)


def _settle(refs) -> None:
    """Take the (canceled) outcomes, so Ray does not report them as unhandled errors."""
    for ref in refs:
        try:
            ray.get(ref)
        except Exception:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", choices=["local", "s3"], default="local")
    args = parser.parse_args()
    kills = 5 if args.quick else 20
    lease_s = 6.0
    fake_aws_env()  # before ray.init: the manager and workers inherit the driver's environment
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    report: dict = {"backend": args.backend, "kills": kills}
    with tempfile.TemporaryDirectory() as tmp, (moto_server() if args.backend == "s3" else _nothing()) as endpoint:
        if args.backend == "s3":
            import boto3

            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="recovery")
            workflow.init("s3://recovery/wf", storage_options={"endpoint_url": endpoint}, lease_duration=lease_s)
        else:
            workflow.init(f"file://{tmp}/store", lease_duration=lease_s)
        ray_times = ray_restart_times(kills)
        engine_times = engine_recovery_times(kills)
        window = 12.0 if args.quick else 36.0
        per_min = {n: lease_writes(n, lease_s, window) for n in (1, 20)}
    scale = lease_s / DEFAULT_LEASE_S  # writes a minute go as 1 / lease_duration
    report.update(
        ray_actor_restart_s=statistics.median(ray_times), engine_recovery_s=statistics.median(engine_times),
        ratio=statistics.median(engine_times) / statistics.median(ray_times),
        ray_times=ray_times, engine_times=engine_times,
        lease_writes_per_min_measured={str(n): v for n, v in per_min.items()}, lease_s_measured=lease_s,
        lease_writes_per_min_default={str(n): v * scale for n, v in per_min.items()},
    )
    print(f"\nrecovery on {args.backend} storage, median of {kills} kill -9s of the manager")
    print(f"  Ray actor restart (plain actor, same run)   {report['ray_actor_restart_s'] * 1000:8.0f} ms")
    print(f"  manager death -> workflow RUNNING again     {report['engine_recovery_s'] * 1000:8.0f} ms"
          f"   ({report['ratio']:.2f}x Ray's restart)")
    print(f"lease writes a minute, default {DEFAULT_LEASE_S:.0f} s lease (measured at {lease_s:.0f} s, scaled)")
    for n, v in report["lease_writes_per_min_default"].items():
        print(f"  {n:>4} running workflows: {v:6.1f} per cluster, {v / int(n):7.3f} per workflow")
    print("results:", write_results(f"recovery-{args.backend}", report))
    ray.shutdown()


def bench(settings) -> list[dict]:
    """The suite's run: manager kill -9 -> workflow RUNNING again, against a plain actor's restart.

    Also the manager's lease writes a minute with 1 and with 20 running workflows (default 30 s
    lease). Quick: 3 kills each and 4 s windows; full: 10 kills and 24 s windows (recovery.py: 20, 36 s).
    """
    from benchmarks._common import figure, sub_url

    kills, window, lease_s = (3, 4.0, 6.0) if settings.quick else (10, 24.0, 6.0)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            url = sub_url(settings.storage, f"recovery-{uuid.uuid4().hex[:8]}") if settings.storage \
                else f"file://{tmp}/store"
            workflow.init(url, lease_duration=lease_s)
            print(f"  {kills} kill -9s of a plain actor, then of the manager", flush=True)
            ray_times = ray_restart_times(kills)
            engine_times = engine_recovery_times(kills)
            print(f"  lease writes over {window:g} s windows", flush=True)
            per_min = {n: lease_writes(n, lease_s, window) for n in (1, 20)}
    finally:
        ray.shutdown()
    b, scale = "recovery", lease_s / DEFAULT_LEASE_S
    figures = [
        figure(b, "plain Ray actor restart after kill -9", "ms", [t * 1e3 for t in ray_times], better="lower",
               role="ray_restart"),
        figure(b, "manager kill -9 -> workflow RUNNING again", "ms", [t * 1e3 for t in engine_times],
               better="lower", summary=True, role="engine_recovery"),
        figure(b, "recovery / Ray actor restart", "x",
               [statistics.median(engine_times) / statistics.median(ray_times)], better="lower", summary=True,
               role="ratio"),
    ]
    for n, per in per_min.items():
        figures.append(figure(b, f"lease writes a minute, {n} running workflow{'s' if n > 1 else ''} "
                                 f"({DEFAULT_LEASE_S:.0f} s lease)", "writes/min", [per * scale], better="lower",
                              summary=n == 20, role="lease_writes", workflows=n))
    return figures


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    main()
