"""Self-healing on a real 3-node Ray cluster (``ray.cluster_utils.Cluster``), with no user action.

Each scenario runs in a process of its own (``tests/engine/multinode_driver.py`` says what
each does): a worker node removed mid-run, the manager's node removed mid-run, the manager
process ``kill -9``ed, the whole cluster shut down and a new one started on the same storage.
In every case the driver gets the right output, ``replay verify`` finds the log clean, and each
step's side effect appears at most once more than its durable completion (only what was in
flight runs again).

``make test`` runs a reduced set (marked ``multinode_smoke``); ``make test-multinode`` all of
them, on local storage and on S3 (moto).
"""

import json
import os
import subprocess
import sys

import pytest

from replay import TaskStatus, load_state
from storage_backends import open_storage
from engine.store._sync import run_sync
from tests.engine.tasks import tid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCENARIOS = ["worker-node", "manager-node", "manager-kill", "whole-cluster"]
# The one make test runs: a whole cluster stopped is test_cluster_failure's, a lost node test_shards's kind.
SMOKE = {("manager-kill", "local")}


def _params():
    for scenario in SCENARIOS:
        for backend in ("local", "s3"):
            marks = [pytest.mark.multinode]
            if (scenario, backend) in SMOKE:
                marks.append(pytest.mark.multinode_smoke)
            yield pytest.param(scenario, backend, id=f"{scenario}-{backend}", marks=marks)


@pytest.mark.parametrize("scenario,backend", list(_params()))
def test_the_workflow_survives(scenario, backend, tmp_path, request):
    if backend == "local":
        url, options = f"file://{tmp_path}/store", {}
    else:
        admin = request.getfixturevalue("s3_admin")
        bucket = f"mn-{tmp_path.name[-12:].lower().replace('_', '-')}"
        admin.create_bucket(Bucket=bucket)
        url, options = f"s3://{bucket}/wf", {"endpoint_url": request.getfixturevalue("moto_server")}
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    done = subprocess.run([sys.executable, "-m", "tests.engine.multinode_driver", scenario, url, str(tmp_path),
                           json.dumps(options)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    assert done.returncode == 0 and lines, done.stdout[-2000:] + done.stderr[-4000:]
    out = json.loads(lines[-1])
    assert "error" not in out, out["error"] + "\n" + done.stderr[-4000:]
    assert out["result"] == 12 and out["status"] == "SUCCESSFUL", out
    if scenario == "manager-node":
        assert out["moved"], "the manager did not move to another node"

    wid = f"mn-{scenario}"
    state = run_sync(load_state(open_storage(url, **options), wid))
    runs = open(tmp_path / "counter").read().split()
    for index in range(12):
        # each step completed durably once; its side effect ran at most once more (in flight)
        assert state.tasks[tid("counted_slow_step", index)].status is TaskStatus.SUCCESSFUL
        assert 1 <= runs.count(str(index)) <= 2, runs
    verify = subprocess.run([sys.executable, "-m", "replay", "verify", wid, "--storage", url,
                             *(["--endpoint-url", options["endpoint_url"]] if options else [])],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
