"""Clean consoles: a driver sees its own output and nothing of the engine's internals.

A driver (``console_driver.py``) runs a workflow with continuations, one that fails (and is
caught), one whose worker crashes and is retried, and one that is canceled, with Ray's
``log_to_driver`` on (the default). Its console must hold the user's lines and, from Ray, only
its start-up line and the raylet's notes on its workers (the crashed one): no "Unhandled error", no
traceback, no engine-internal exception. Tasks carry the names a user recognizes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

import ray

import engine as workflow
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DRIVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "console_driver.py")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
RAY_OWN = (  # what Ray itself says about its own start and its worker processes
    re.compile(r"INFO worker\.py:\d+ -- Started a local Ray instance"),
    re.compile(r"^\(raylet\) A worker died or was killed while executing a task"),
    re.compile(r"^\(raylet\) WARNING: \d+ PYTHON worker processes have been started on node"),
)


def test_a_driver_sees_only_its_own_output(tmp_path):
    """On a local Ray of its own, as a user's script would start it."""
    env = dict(os.environ, RAY_AUTH_MODE="disabled", PYTHONPATH=ROOT)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run(
        [sys.executable, DRIVER, f"file://{tmp_path}/store", "local", str(tmp_path)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    lines = [_ANSI.sub("", line) for line in (proc.stdout + proc.stderr).splitlines() if line.strip()]
    assert proc.returncode == 0, "\n".join(lines)
    other = [line for line in lines if "USER" not in line and not any(p.search(line) for p in RAY_OWN)]
    assert other == [], "the console shows more than the user's output:\n" + "\n".join(lines)
    mine = [line for line in lines if line.startswith("USER")]
    assert mine == ["USER factorial 120",
                    "USER caught workflow 'bad' failed: task '__main__.boom' raised ValueError: kaput 1",
                    "USER crash 1", "USER canceled"]
    task_lines = [line for line in lines if "USER task" in line]
    # The tasks' own prints reach the console once each, prefixed with the function's name.
    assert sorted(task_lines) == sorted([
        *(line for line in task_lines if re.match(r"^\(shout pid=\d+\) USER task shout got 120$", line)),
        *(line for line in task_lines if re.match(r"^\(shout pid=\d+\) USER task shout got 1$", line)),
    ]) and len(task_lines) == 2, task_lines


@ray.remote
def my_name():
    return ray.get_runtime_context().get_task_name()


def test_tasks_carry_the_function_name(local, wid):
    """Not the workflow id: Ray keeps state per task name in the submitting process for good, so a
    name per workflow grew the manager by ~30 KB per workflow (benchmarks/throughput.py)."""
    assert workflow.run(my_name.bind(), workflow_id=wid) == "my_name"
    assert workflow.run(tasks.identity.options(name="custom").bind(1), workflow_id=wid + "-b") == 1
    own = workflow.run(workflow.options(task_id="x")(my_name).options(name="kept").bind(), workflow_id=wid + "-c")
    assert own == "kept"  # a name the user gave is theirs
