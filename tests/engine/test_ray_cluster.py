"""Joining or starting Ray on purpose (engine/api/_ray_cluster.py).

A dead address must be a clear error within seconds, and a stale ``ray_current_cluster`` record
(left by a crashed ``ray start``) must not stop a driver from starting its own local Ray. Every
test points Ray's temp directory (``$RAY_TMPDIR``) at a short directory of its own, never at
/tmp/ray, which other drivers on this machine use.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile

import pytest
import ray

from engine.api._ray_cluster import RayClusterUnreachableError, choose_address

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _dead_address() -> str:
    """host:port where nothing listens (a port just released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def ray_tmp():
    """``$RAY_TMPDIR`` for a subprocess: short (Ray's socket paths must fit in 107 bytes)."""
    path = tempfile.mkdtemp(prefix="rdc-", dir="/tmp")
    os.makedirs(os.path.join(path, "ray"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _record(ray_tmp: str, address: str) -> str:
    path = os.path.join(ray_tmp, "ray", "ray_current_cluster")
    with open(path, "w") as f:
        f.write(address + "\n")
    return path


def _env(ray_tmp: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=ray_tmp, PYTHONPATH=ROOT, **extra)
    if "RAY_ADDRESS" not in extra:
        env.pop("RAY_ADDRESS", None)
    return env


# --- the choice, without starting anything ----------------------------------------------------

def test_nothing_asked_and_nothing_recorded_starts_a_local_ray(ray_tmp, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert choose_address(None, os.path.join(ray_tmp, "ray")) == "local"


def test_a_stale_record_is_ignored_when_nothing_was_asked(ray_tmp, monkeypatch, caplog):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    dead = _dead_address()
    record = _record(ray_tmp, dead)
    with caplog.at_level("INFO", logger="engine"):
        assert choose_address(None, os.path.join(ray_tmp, "ray")) == "local"
    [message] = [r for r in caplog.records if r.name == "engine.api._ray_cluster"]
    assert record in message.getMessage() and dead in message.getMessage()


def test_a_live_record_is_joined(ray_runtime, ray_tmp, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    live = ray.get_runtime_context().gcs_address
    _record(ray_tmp, live)
    assert choose_address(None, os.path.join(ray_tmp, "ray")) == live
    assert choose_address("auto", os.path.join(ray_tmp, "ray")) == live


def test_a_dead_address_asked_for_is_a_clear_error(ray_tmp, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    dead = _dead_address()
    with pytest.raises(RayClusterUnreachableError, match=rf"no Ray cluster answers at {dead} \(from address=\)"):
        choose_address(dead, os.path.join(ray_tmp, "ray"))
    monkeypatch.setenv("RAY_ADDRESS", dead)
    with pytest.raises(RayClusterUnreachableError, match=r"\(from \$RAY_ADDRESS\).*unset RAY_ADDRESS") as caught:
        choose_address(None, os.path.join(ray_tmp, "ray"))
    assert isinstance(caught.value, ConnectionError)


def test_auto_with_a_stale_record_names_the_file_and_how_to_clear_it(ray_tmp, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    dead = _dead_address()
    record = _record(ray_tmp, dead)
    with pytest.raises(RayClusterUnreachableError) as caught:
        choose_address("auto", os.path.join(ray_tmp, "ray"))
    text = str(caught.value)
    assert dead in text and record in text and "ray stop" in text and "delete that file" in text
    os.remove(record)
    with pytest.raises(RayClusterUnreachableError, match="no cluster was recorded there"):
        choose_address("auto", os.path.join(ray_tmp, "ray"))


def test_local_and_ray_client_addresses_pass_through(ray_tmp, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", _dead_address())
    assert choose_address("local", os.path.join(ray_tmp, "ray")) == "local"
    assert choose_address("ray://head:10001", os.path.join(ray_tmp, "ray")) == "ray://head:10001"


# --- for real, in fresh processes -----------------------------------------------------------

def test_the_demo_runs_with_a_stale_cluster_record(ray_tmp, tmp_path):
    """``make demo`` (``python -m engine.demo``) starts its own Ray instead of hanging on the record."""
    _record(ray_tmp, _dead_address())
    proc = subprocess.run([sys.executable, "-m", "engine.demo", "demo-stale"], cwd=ROOT,
                          env=_env(ray_tmp, RAY_DURABLE_STORAGE=str(tmp_path / "store")),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "workflow 'demo-stale'" in proc.stdout and "SUCCESSFUL" in proc.stdout
    assert "Started a local Ray instance" in proc.stderr
    assert "Unhandled error" not in proc.stderr and "Traceback" not in proc.stderr


def test_init_with_a_dead_ray_address_fails_fast_and_clearly(ray_tmp, tmp_path):
    dead = _dead_address()
    code = ("import engine as workflow\n"
            f"workflow.init({str(tmp_path / 'store')!r})\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(ray_tmp, RAY_ADDRESS=dead),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("engine.api._ray_cluster.RayClusterUnreachableError: no Ray cluster answers at "
                           f"{dead} (from $RAY_ADDRESS)"), proc.stderr


def test_cli_resume_with_a_dead_address_is_one_clear_line(ray_tmp, tmp_path):
    """A FAILED workflow must run again, so resume joins the cluster: the dead address says so."""
    import asyncio

    from tests.replay.logs import failed, write_log

    dead = _dead_address()
    store = tmp_path / "store"
    asyncio.run(write_log(str(store), {}, "w1", failed("w1").events))
    proc = subprocess.run([sys.executable, "-m", "engine", "resume", "w1", "--storage", str(store),
                           "--address", dead], cwd=ROOT, env=_env(ray_tmp),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: no Ray cluster answers at {dead} (from address=) within 3s: check the address, "
        "or leave it unset to start a local Ray"]
