"""Where the CPU of many workflows at once goes, by phase: py-spy on the driver and the managers.

``throughput.py --profile`` samples the driver and every manager with ``py-spy record --gil``
(only threads holding the GIL: the Python work) while one-task workflows are submitted with
``run_async``, 1,000 at a time, and sorts each sampled stack into the phase of a workflow's
life it belongs to, by the first phase whose frames it contains. Shares are of each
process's samples; times spent waiting (fsync, sockets) hold no GIL and are not in them.
py-spy (a sampling profiler, https://github.com/benfred/py-spy) is in the ``bench`` extra.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable

# (phase, substrings of a frame, "function (file:line)"); the first phase that matches wins.
MANAGER_PHASES = [
    ("the run call arriving (Ray deserialises its arguments)", ["Worker.deserialize_objects"]),
    ("decoding the submission, unpickling the DAG, setting the run up",
     ["_submitted_state (", "WorkflowGraph.from_bytes", "WorkflowRun.__init__", "decode_event ("]),
    ("submitting the task to Ray", ["RemoteFunction._remote", "FuncWrapper.remote", "RemoteFunction.options"]),
    ("the status index", ["engine/store/_index.py"]),
    ("appends: encoding, writing, the I/O threads",
     ["storage_backends/", "engine/runtime/_log_writer.py", "encode_event ("]),
    ("the task's outcome: arrival, settling, the workflow's end",
     ["engine/runtime/_arrivals.py", "_outcome_arrived", "_settle", "_succeed"]),
    ("asyncio and thread hand-offs", ["asyncio/", "concurrent/futures/"]),
]
DRIVER_PHASES = [
    ("building the DAG and pickling it", ["build_graph (", "to_bytes (", "cloudpickle", "bind ("]),
    ("appending the submission", ["storage_backends/", "engine/store/_sync.py"]),
    ("the call to the manager (a Ray actor call)", ["ActorMethod", "_actor_method_call"]),
    ("asyncio and thread hand-offs", ["asyncio/", "concurrent/futures/"]),
]
OTHER = "the rest: Ray's own threads, native code"


def phases_of(raw_file: str, phases: list[tuple[str, list[str]]]) -> dict[str, float]:
    """Share of samples (0..1) per phase in a py-spy ``--format raw`` file (``stack count`` lines)."""
    counts: collections.Counter[str] = collections.Counter()
    for line in open(raw_file):
        stack, _, n = line.rstrip().rpartition(" ")
        if not stack:
            continue
        phase = next((name for name, keys in phases if any(k in stack for k in keys)), OTHER)
        counts[phase] += int(n)
    total = sum(counts.values()) or 1
    return {name: counts[name] / total for name in [p for p, _ in phases] + [OTHER]}


def profile(submit: Callable[[int], object], driver_pid: int, manager_pids: list[int],
            seconds: float = 8.0) -> dict:
    """Run ``submit(1000)`` over and over for ``seconds`` under py-spy on each process.

    Returns:
        {"driver": {phase: share}, "manager": {phase: share}, "workflows": how many ran}, or
        {"error": why not} when py-spy is missing or cannot attach (it needs ptrace).
    """
    spy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(spy):
        return {"error": "py-spy is not installed: pip install -e '.[bench]'"}
    out = tempfile.mkdtemp(prefix="rd-profile-")
    roles = [("driver", driver_pid)] + [("manager", pid) for pid in manager_pids]
    spies = []
    for i, (role, pid) in enumerate(roles):
        path = os.path.join(out, f"{role}-{i}.txt")
        spies.append((role, path, subprocess.Popen(
            [spy, "record", "-p", str(pid), "-r", "200", "-f", "raw", "-o", path, "--nonblocking", "--gil"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)))
    time.sleep(1.0)  # attached
    done, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        submit(1000)
        done += 1000
    result: dict = {"workflows": done}
    for role, path, process in spies:
        process.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
        _, err = process.communicate(timeout=60)
        if not os.path.exists(path):
            shutil.rmtree(out, ignore_errors=True)
            return {"error": f"py-spy could not profile the {role}: {err.decode(errors='replace')[-300:]}"}
    for role, phases in (("driver", DRIVER_PHASES), ("manager", MANAGER_PHASES)):
        files = [path for r, path, _ in spies if r == role]
        merged = os.path.join(out, f"{role}.txt")
        with open(merged, "w") as f:
            for path in files:
                f.write(open(path).read())
        result[role] = phases_of(merged, phases)
    shutil.rmtree(out, ignore_errors=True)
    return result


def print_profile(report: dict, cpu_ms: dict | None) -> None:
    """Each phase's share of the driver's and the managers' Python time; with the CPU ms per
    workflow measured in the same run, each share's estimate in ms."""
    if "error" in report:
        print(f"\nprofile not taken: {report['error']}")
        return
    print(f"\nwhere the CPU goes, {report['workflows']} one-task workflows 1,000 at a time (py-spy --gil, "
          "share of each process's Python time; ms: that share of its CPU ms per workflow):")
    for role, key in (("driver", "driver"), ("manager", "manager")):
        total = (cpu_ms or {}).get(key)
        print(f"  {role}" + (f" ({total:.2f} ms CPU per workflow)" if total else ""))
        for phase, share in report[role].items():
            ms = f"  ~{share * total:.2f} ms" if total else ""
            print(f"    {share * 100:5.1f}%{ms}  {phase}")
