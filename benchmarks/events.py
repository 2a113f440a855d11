"""Durable timers and HTTP events: what waiting costs, and how fast a wait ends.

    .venv/bin/python benchmarks/events.py [--quick] [--sleepers N] [--events M]

1. **Sleepers.** N workflows (1,000; --quick 100) each ``stamp.bind(workflow.sleep(d))``, all
   asleep at once, their deadlines spread evenly over ``--spread`` seconds (10: 100 wakes a
   second for 1,000) after the last one started. While
   they sleep it counts the cluster's Ray worker processes (the raylet's children) and free
   CPUs, against a baseline taken after warm-up in the same run. After they wake, each log
   gives how late its timer fired (``task.completed`` of the timer minus the deadline in its
   ``timer.set``), and ``stamp`` gives when the task after it started. The same lateness of
   N plain ``asyncio.sleep`` timers in one async Ray actor, measured right after, is the
   baseline ratio.
2. **HTTP events.** M workflows (50; --quick 20), one at a time, each
   ``stamp.bind(wait_for_event(HTTPListener, event_key=...))``: once it waits, one real
   ``POST /event/send_event/{id}`` through Ray Serve's HTTP proxy; the latency is from the
   request to the moment ``stamp`` (the resumed task) starts. The baseline is the round trip
   of a plain Serve deployment on the same proxy (a trivial POST handler), measured
   interleaved with the events.

Ray is started here (``address="local"``, 2 CPUs) with Serve on a free port. Prints a table and
writes JSON to benchmarks/results/events.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import time

os.environ.setdefault("RAY_AUTH_MODE", "disabled")

import ray  # noqa: E402
import requests  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import engine as workflow  # noqa: E402
from _common import free_port, write_results  # noqa: E402
from engine.api._init import context  # noqa: E402
from engine.http_event_provider import HTTPListener, start_http_event_provider  # noqa: E402
from engine.store._sync import run_sync  # noqa: E402
from replay import EventAwaited, TaskCompleted, TimerSet, load_state, read_events  # noqa: E402


@ray.remote
def stamp(_value):
    """When the task after a wait started (Unix seconds)."""
    return time.time()


@ray.remote(num_cpus=0)
class PlainTimers:
    """N asyncio timers on one actor's loop: the baseline for how late a timer can fire."""

    async def lateness(self, deadlines):
        async def one(deadline):
            await asyncio.sleep(max(0.0, deadline - time.time()))
            return time.time() - deadline
        return list(await asyncio.gather(*(one(d) for d in deadlines)))


def _children(pid: int) -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                parent = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(parent, []).append(int(entry))
    return tree


def ray_workers() -> int:
    """Worker processes (tasks' and actors') under this cluster's raylet."""
    raylet = ray._private.worker._global_node.all_processes["raylet"][0].process.pid
    tree, count, todo = _children(raylet), 0, [raylet]
    while todo:
        for child in tree.get(todo.pop(), []):
            todo.append(child)
            try:
                with open(f"/proc/{child}/cmdline", "rb") as f:
                    title = f.read()
                # a worker names itself ray::IDLE, ray::<task> or ray::<Actor> (not its agents)
                if title.startswith(b"ray::") and b"Agent" not in title.split(b"\0")[0]:
                    count += 1
            except OSError:
                pass
    return count


def _log(workflow_id):
    async def read():
        return [e async for _s, e in read_events(context().storage, workflow_id)]
    return run_sync(read())


def pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def sleepers(n: int, spread: float, budget: float | None = None) -> dict:
    """``budget``: seconds to start them all before the first deadline (default max(10, 0.03 n))."""
    tag = time.strftime("%H%M%S")
    ray.get(stamp.remote(0))
    workflow.run(stamp.bind(workflow.sleep(0.01)), workflow_id=f"warm-{tag}")
    time.sleep(2)  # let warm-up workers settle
    base_workers, total_cpu = ray_workers(), ray.cluster_resources()["CPU"]
    budget = budget or max(10.0, n * 0.03)
    start = time.time()
    first_deadline = start + budget
    refs, ids = [], []
    for i in range(n):
        deadline = first_deadline + spread * i / n
        wid = f"sleep-{tag}-{i}"
        refs.append(workflow.run_async(stamp.bind(workflow.sleep(max(0.0, deadline - time.time()))),
                                       workflow_id=wid))
        ids.append(wid)
    started = time.time()
    print(f"  started {n} sleeping workflows in {started - start:.1f}s", flush=True)
    samples = []
    while time.time() < first_deadline - 0.5:
        samples.append((ray_workers(), ray.available_resources().get("CPU", 0.0)))
        time.sleep(0.5)
    stamps = ray.get(refs)
    fire, resumed, late_starts = [], [], 0
    for wid, at in zip(ids, stamps):
        log = _log(wid)
        timer = next(e for e in log if isinstance(e, TimerSet))
        if timer.ts > timer.deadline:
            late_starts += 1  # started after its deadline (submission overran): not a wake
            continue
        fired = next(e for e in log if isinstance(e, TaskCompleted) and e.task_id == timer.task_id)
        fire.append(fired.ts - timer.deadline)
        resumed.append(at - timer.deadline)
    deadlines = [time.time() + 3 + spread * i / n for i in range(n)]
    plain = ray.get(PlainTimers.remote().lateness.remote(deadlines))
    return {
        "workflows": n, "spread_seconds": spread, "start_seconds": started - start, "baseline_workers": base_workers,
        "max_workers_while_sleeping": max(w for w, _ in samples) if samples else None,
        "extra_workers": (max(w for w, _ in samples) - base_workers) if samples else None,
        "cpus": total_cpu, "min_free_cpus_while_sleeping": min(c for _, c in samples) if samples else None,
        "samples": len(samples), "measured": len(fire), "started_after_deadline": late_starts,
        "fire_late_ms_median": statistics.median(fire) * 1e3, "fire_late_ms_p90": pct(fire, 0.9) * 1e3,
        "fire_late_ms_max": max(fire) * 1e3,
        "next_task_late_ms_median": statistics.median(resumed) * 1e3,
        "next_task_late_ms_p90": pct(resumed, 0.9) * 1e3,
        "plain_timer_late_ms_median": statistics.median(plain) * 1e3,
        "plain_timer_late_ms_p90": pct(plain, 0.9) * 1e3,
        # every timer, for the suite's min/median/max
        "fire_late_ms_all": [v * 1e3 for v in fire], "next_task_late_ms_all": [v * 1e3 for v in resumed],
        "plain_timer_late_ms_all": [v * 1e3 for v in plain],
    }


def http_events(m: int, base: str) -> dict:
    from ray import serve
    from starlette.requests import Request

    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Echo:
        async def __call__(self, request: Request):
            return await request.json()

    serve.run(Echo.bind(), name="bench-echo", route_prefix="/echo")
    start_http_event_provider()
    session = requests.Session()
    for _ in range(10):  # warm both routes
        session.post(f"{base}/echo", json={"event_key": "w", "event_payload": 0}, timeout=60)
    tag = time.strftime("%H%M%S")
    plain, post_rtt, to_task = [], [], []
    for i in range(m):
        t0 = time.perf_counter()
        session.post(f"{base}/echo", json={"event_key": "k", "event_payload": i}, timeout=60).raise_for_status()
        plain.append(time.perf_counter() - t0)
        wid = f"http-{tag}-{i}"
        ref = workflow.run_async(stamp.bind(workflow.wait_for_event(HTTPListener, event_key="k")), workflow_id=wid)
        while not [e for e in _log(wid) if isinstance(e, EventAwaited)]:
            time.sleep(0.005)
        sent = time.time()
        t0 = time.perf_counter()
        response = session.post(f"{base}/event/send_event/{wid}", json={"event_key": "k", "event_payload": i},
                                timeout=60)
        post_rtt.append(time.perf_counter() - t0)
        response.raise_for_status()
        to_task.append(ray.get(ref) - sent)
    state = run_sync(load_state(context().storage, f"http-{tag}-0"))
    assert state.tasks["engine.wait_for_event"].wait.received is not None
    p, e, t = statistics.median(plain), statistics.median(post_rtt), statistics.median(to_task)
    return {"events": m, "plain_serve_rtt_ms_median": p * 1e3, "event_post_rtt_ms_median": e * 1e3,
            "event_to_task_ms_median": t * 1e3, "event_to_task_ms_p90": pct(to_task, 0.9) * 1e3,
            "event_to_task_vs_plain_rtt": t / p, "event_post_vs_plain_rtt": e / p,
            # every event, for the suite's min/median/max
            "plain_serve_rtt_ms_all": [v * 1e3 for v in plain], "event_to_task_ms_all": [v * 1e3 for v in to_task]}


def bench(settings) -> list[dict]:
    """The suite's run: how late timers fire (vs plain asyncio timers in an actor), the Ray workers
    that 1,000 sleeping workflows hold (vs the idle cluster), and HTTP event -> task (vs a plain
    Serve round trip). Quick: 100 sleepers over 3 s, 10 events."""
    from ray import serve

    from benchmarks._common import figure, sub_url

    n, spread, m = (100, 3.0, 10) if settings.quick else (1000, 10.0, 50)
    tmp = tempfile.mkdtemp(prefix="rd-bench-events-")
    storage = sub_url(settings.storage, f"events-{time.strftime('%H%M%S')}") if settings.storage else tmp
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        workflow.init(storage)
        print(f"  {n} sleepers, deadlines over {spread:g} s", flush=True)
        s = sleepers(n, spread, budget=5.0 if settings.quick else None)
        port = free_port()
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        print(f"  {m} HTTP events", flush=True)
        try:
            h, note = http_events(m, f"http://127.0.0.1:{port}"), None
        except Exception as exc:  # the timers' figures still stand; say what is missing and why
            h, note = None, f"HTTP events: {type(exc).__name__}: {exc}"
            print(f"  {note}", flush=True)
        serve.shutdown()
    finally:
        ray.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)
    b = "events"
    timers = [
        figure(b, f"timer fires after its deadline ({n} asleep, {n / spread:.0f} wakes/s)", "ms",
               s["fire_late_ms_all"], better="lower", summary=True, role="timer_late"),
        figure(b, "the task after a timer starts after the deadline", "ms", s["next_task_late_ms_all"],
               better="lower", role="next_task_late"),
        figure(b, f"plain asyncio timer in one actor fires late ({n})", "ms", s["plain_timer_late_ms_all"],
               better="lower", role="plain_timer_late"),
        figure(b, f"extra Ray workers while {n} workflows sleep", "workers", [s["extra_workers"] or 0],
               better="lower", summary=True, role="extra_workers"),
    ]
    if h is None:
        return {"figures": timers, "notes": [note]}
    return timers + [
        figure(b, "HTTP event POST -> resumed task starts", "ms", h["event_to_task_ms_all"], better="lower",
               summary=True, role="event_to_task"),
        figure(b, "plain Serve POST round trip", "ms", h["plain_serve_rtt_ms_all"], better="lower",
               role="plain_serve_rtt"),
        figure(b, "HTTP event -> task / plain Serve round trip", "x", [h["event_to_task_vs_plain_rtt"]],
               better="lower", summary=True, role="ratio"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 sleepers, 20 events")
    parser.add_argument("--sleepers", type=int, default=None)
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--spread", type=float, default=10.0, help="seconds the deadlines are spread over")
    parser.add_argument("--storage", default=None, help="local storage dir (default: a fresh temp dir)")
    args = parser.parse_args()
    n = args.sleepers or (100 if args.quick else 1000)
    m = args.events or (20 if args.quick else 50)
    storage = args.storage or tempfile.mkdtemp(prefix="rd-bench-events-")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    port = free_port()
    from ray import serve

    workflow.init(storage)
    print(f"events benchmark: {os.cpu_count()} cores, ray {ray.__version__}, storage {storage}", flush=True)
    s = sleepers(n, args.spread)
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    h = http_events(m, f"http://127.0.0.1:{port}")
    print(f"\n{n} sleeping workflows (started in {s['start_seconds']:.1f}s; deadlines over {args.spread:g}s, "
          f"{n / args.spread:.0f} wakes/s; {s['started_after_deadline']} started after their deadline, not counted)")
    print(f"  Ray workers: baseline {s['baseline_workers']}, at most {s['max_workers_while_sleeping']} while "
          f"they slept ({s['extra_workers']:+d}); free CPUs at least {s['min_free_cpus_while_sleeping']} of "
          f"{s['cpus']}  (target: +0 workers)")
    print(f"  timer fired after its deadline: median {s['fire_late_ms_median']:.1f} ms, p90 "
          f"{s['fire_late_ms_p90']:.1f} ms, max {s['fire_late_ms_max']:.1f} ms  (target: median <= 100 ms)")
    print(f"  next task started after the deadline: median {s['next_task_late_ms_median']:.1f} ms, "
          f"p90 {s['next_task_late_ms_p90']:.1f} ms")
    print(f"  for scale, {n} plain asyncio timers in one actor, nothing after them: median "
          f"{s['plain_timer_late_ms_median']:.2f} ms, p90 {s['plain_timer_late_ms_p90']:.2f} ms")
    print(f"\nHTTP events ({m}, one at a time)")
    print(f"  plain Serve POST round trip: median {h['plain_serve_rtt_ms_median']:.1f} ms")
    print(f"  event POST round trip (200 once durable): median {h['event_post_rtt_ms_median']:.1f} ms "
          f"({h['event_post_vs_plain_rtt']:.2f}x plain)")
    print(f"  event sent -> resumed task started: median {h['event_to_task_ms_median']:.1f} ms, p90 "
          f"{h['event_to_task_ms_p90']:.1f} ms ({h['event_to_task_vs_plain_rtt']:.2f}x plain round trip)")
    path = write_results("events", {"ray_version": ray.__version__, "cpus": os.cpu_count(), "sleepers": s,
                                    "http": h})
    print(f"\nJSON written to {path}")
    serve.shutdown()
    ray.shutdown()


if __name__ == "__main__":
    main()
