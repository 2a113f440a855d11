"""The benchmark suite's entry point (``python -m benchmarks``), on one small real benchmark.

Runs ``--quick --only replay_speed`` as a subprocess from the repository root, the way a user
does, into a temp ``--out``: results.json's shape (machine, versions, figures with
min <= median <= max over their samples) and the PNG chart. Asserts no figure's value: figures
are measured, not tested. Plus the command line's bad input, which must fail fast and say why.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def suite(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="160")
    return subprocess.run([sys.executable, "-m", "benchmarks", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_quick_run_of_one_benchmark_writes_results_and_a_chart(tmp_path):
    out = tmp_path / "out"
    done = suite("--quick", "--only", "replay_speed", "--out", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "replay_speed" in done.stdout and "results.json" in done.stdout  # progress and the table

    report = json.loads((out / "results.json").read_text())
    assert report["quick"] is True
    assert report["machine"]["cpus"] == os.cpu_count()
    assert report["versions"]["ray-durable"] and report["versions"]["python"]
    assert list(report["benchmarks"]) == ["replay_speed"]
    run = report["benchmarks"]["replay_speed"]
    assert run["status"] == "ok" and run["chart"] == "replay_speed.png"

    figures = report["figures"]
    assert figures and {f["benchmark"] for f in figures} == {"replay_speed"}
    for fig in figures:
        assert fig["repeats"] == len(fig["samples"]) >= 1
        assert fig["min"] <= fig["median"] <= fig["max"], fig
        assert fig["min"] == min(fig["samples"]) and fig["max"] == max(fig["samples"])
        assert fig["unit"] and fig["name"]
    roles = {f["params"]["role"] for f in figures}
    assert {"load", "read", "ratio"} <= roles  # the engine's figure, its baseline, their ratio
    lengths = {f["params"]["events"] for f in figures if f["params"]["role"] == "load"}
    assert len(lengths) >= 2  # load time against log length
    assert any(f["summary"] for f in figures)

    chart = out / "replay_speed.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "logs" / "replay_speed.log").exists()


@pytest.mark.parametrize("args, message", [
    (["--only", "nosuch"], "unknown benchmark 'nosuch'"),
    (["--only", "peers"], "--only peers needs --peer"),
    (["--peer", "temporal"], "invalid choice: 'temporal'"),
    (["--storage", "ftp://host/x"], "unknown storage URL scheme 'ftp'"),
    (["--s3-latency-ms", "-5"], "--s3-latency-ms must be >= 0"),
])
def test_bad_command_lines_fail_fast_and_say_why(tmp_path, args, message):
    done = suite(*args, "--out", str(tmp_path / "out"), timeout=120)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "out").exists()  # nothing ran


def test_a_missing_peer_virtualenv_is_named_with_how_to_make_it(monkeypatch):
    sys.path.insert(0, ROOT)
    from benchmarks._common import Settings
    from benchmarks._peers import peer_python

    monkeypatch.setenv("RAY_DURABLE_DBOS_PYTHON", "/nonexistent/bin/python")
    with pytest.raises(FileNotFoundError) as caught:
        peer_python("dbos", Settings(peers=["dbos"]))
    assert "/nonexistent/bin/python" in str(caught.value)
    assert "pip install dbos" in str(caught.value) and "--dbos-python" in str(caught.value)
