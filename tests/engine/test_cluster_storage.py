"""A driver that gives no storage uses the cluster's, as ray.workflow's cluster-wide storage did.

In ray.workflow 2.47 the storage belonged to the cluster (``ray.init(storage=...)`` or
``ray start --head --storage=...``), so a second driver that joined the cluster and called the
workflow API without configuring anything used it. Here each storage has its own manager
actor on the cluster; a driver that gives no storage (no ``init(storage)``, no
``$RAY_DURABLE_STORAGE``) asks the managers running on its cluster which storage they serve,
uses it if there is exactly one, and says so in an INFO log line. With managers of two
storages on one cluster it refuses to guess, and names both.

Real drivers (separate processes) on a cluster of their own (``ray start --head``), on local
storage and on S3 (moto_server), whose URL carries its endpoint as ray.workflow's did.
"""

import os
import subprocess
import sys
from urllib.parse import urlsplit

import pytest

from tests.engine.test_cluster_failure import ROOT, HeadNode


def _drive(address, *args, env=None):
    base = {k: v for k, v in os.environ.items() if k != "RAY_DURABLE_STORAGE"}
    env = dict(base, RAY_AUTH_MODE="disabled", RAY_ADDRESS=address, **(env or {}))
    done = subprocess.run([sys.executable, "-m", "tests.engine.storage_driver", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    return lines, done.stderr


@pytest.fixture
def cluster(moto_server):  # (moto first: the cluster's workers inherit its fake credentials)
    head = HeadNode("storage")
    yield head.address
    head.stop()


@pytest.mark.slow
def test_a_driver_without_init_uses_the_clusters_storage(cluster, tmp_path, moto_server, s3_url):
    local = f"file://{tmp_path}/store"
    out, _ = _drive(cluster, "explicit", local, "first")
    assert out["RESULT"] == "3" and out["LISTED"] == "first"

    out, log = _drive(cluster, "implicit", "second")
    assert out["STORAGE"] == local and out["RESULT"] == "3"
    assert out["LISTED"] == "first second"  # the same storage as the first driver's
    assert f"no storage given: using {local}" in log

    # Getting Started, "Mixing workflow tasks with Ray tasks and actors": a workflow launched
    # from inside a Ray task (whose process never called workflow.init) lands there too.
    out, _ = _drive(cluster, "in-task", "from-a-task")
    assert out["RESULT"] == "3" and out["LISTED"] == "first from-a-task second"

    # A second storage on the same cluster (S3, its endpoint in the URL as ray.workflow took it).
    s3 = f"{s3_url}?endpoint_override={urlsplit(moto_server).netloc}&scheme=http"
    out, _ = _drive(cluster, "explicit", s3, "third")
    assert out["STORAGE"] == s3_url and out["LISTED"] == "third"

    out, _ = _drive(cluster, "implicit", "fourth")  # two storages: no guessing
    assert out["ERROR"].startswith("WorkflowError: ray-durable managers of 2 storages run on this Ray cluster")
    assert local in out["ERROR"] and s3_url in out["ERROR"] and "workflow.init(storage=...)" in out["ERROR"]

    # $RAY_DURABLE_STORAGE is the driver's own choice: no question asked.
    out, log = _drive(cluster, "implicit", "fifth", env={"RAY_DURABLE_STORAGE": local})
    assert out["STORAGE"] == local and out["LISTED"] == "fifth first from-a-task second"
    assert "no storage given" not in log

    # One manager left: the S3 one is found, with the endpoint its driver gave.
    _drive(cluster, "kill", local)
    out, log = _drive(cluster, "implicit", "sixth")
    assert out["STORAGE"] == s3_url and out["LISTED"] == "sixth third"
    assert f"no storage given: using {s3_url}" in log
