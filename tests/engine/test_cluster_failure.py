"""Cluster failure: `ray start --head`, a driver, the cluster stopped mid-run, and a fresh cluster
takes the workflow on by itself once the dead cluster's lease expired (no resume_all)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import psutil
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RAY = os.path.join(os.path.dirname(sys.executable), "ray")


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HeadNode:
    """A Ray cluster of its own (its own temp dir), so stopping it leaves the test session's alone."""

    def __init__(self, name):
        self.port = _free_port()
        # short: Ray's socket paths under it must stay within AF_UNIX's 107 bytes
        self.temp_dir = tempfile.mkdtemp(prefix=f"rd-{name}-", dir="/tmp")
        env = dict(os.environ, RAY_AUTH_MODE="disabled")
        env.pop("RAY_ADDRESS", None)
        subprocess.run([RAY, "start", "--head", f"--port={self.port}", "--num-cpus=2",
                        "--include-dashboard=false", f"--temp-dir={self.temp_dir}", "--disable-usage-stats"],
                       check=True, env=env, capture_output=True, timeout=120)
        self.address = f"127.0.0.1:{self.port}"

    def processes(self):
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or [])
            if self.temp_dir in cmdline or f"--gcs-address=127.0.0.1:{self.port}" in cmdline \
                    or f"127.0.0.1:{self.port}" in cmdline:
                found.append(proc)
        return found

    def stop(self):
        """What `ray stop` does, for this cluster only: every one of its processes ends."""
        procs = self.processes()
        for proc in procs:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(procs, timeout=30)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _driver(mode, address, storage, counter, **popen):
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_ADDRESS=address)
    return subprocess.Popen([sys.executable, "-m", "tests.engine.cluster_driver", mode, storage, counter],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen)


def test_cluster_stopped_mid_run_is_taken_on_by_a_fresh_cluster(tmp_path):
    storage, counter = f"file://{tmp_path}/store", str(tmp_path / "counter")
    first = HeadNode("c1")
    driver = _driver("run", first.address, storage, counter)
    try:
        deadline = time.monotonic() + 120
        while not (os.path.exists(counter) and len(open(counter).read().split()) >= 3):
            assert time.monotonic() < deadline and driver.poll() is None, driver.stderr.read()[-2000:]
            time.sleep(0.1)
        first.stop()
        driver.kill()  # its cluster is gone; do not wait for it to notice
        driver.wait(timeout=30)
    finally:
        first.stop()
        if driver.poll() is None:
            driver.kill()
    assert "RESULT" not in driver.stdout.read()
    ran_before = open(counter).read().split()
    assert len(ran_before) < 8

    second = HeadNode("c2")
    try:
        resumer = _driver("resume", second.address, storage, counter)
        out, err = resumer.communicate(timeout=180)
    finally:
        second.stop()
    assert resumer.returncode == 0, err[-3000:]
    assert "STATUS RUNNING" in out or "STATUS RESUMABLE" in out  # lease live / expired
    assert "RESULT 8" in out
    runs = open(counter).read().split()
    finished_before = len(ran_before) - 1  # the last one was in flight when the cluster stopped
    for index in range(finished_before):
        assert runs.count(str(index)) == 1, runs
