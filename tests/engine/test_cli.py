"""The management CLI (``python -m engine`` = ``ray-durable``), run as subprocesses.

Workflows are made in this process; the CLI subprocesses join the session's
Ray cluster (``--address``) so each costs a second or two, not a Ray start.
Every test has a storage of its own, so ``list`` and ``resume-all`` see only
its workflows.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import time

import pytest
import ray

import engine as workflow
from tests.engine import tasks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BOOM = "tests.engine.tasks.boom"  # the task id of tasks.boom: <module>.<qualname>, as in ray.workflow


def _env() -> dict[str, str]:
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    env.pop("RAY_ADDRESS", None)
    env.pop("RAY_DURABLE_DEBUG", None)
    return env


def _popen(argv: list[str], stdin=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=_env(), stdin=stdin,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _finish(process: subprocess.Popen, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise AssertionError(f"the CLI did not finish in {timeout}s:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


class Cli:
    """Runs ``python -m engine COMMAND ... --storage URL [--address GCS]`` against one storage
    (``--address`` for the commands that may need a cluster)."""

    CLUSTER_COMMANDS = ("resume", "resume-all", "cancel", "delete")

    def __init__(self, url: str, address: str):
        self.url = url
        self.address = address

    def argv(self, *args: str) -> list[str]:
        address = ["--address", self.address] if args[0] in self.CLUSTER_COMMANDS else []
        return ["-m", "engine", *args, "--storage", self.url, *address]

    def __call__(self, *args: str, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
        return _finish(_popen(self.argv(*args), stdin=stdin))

    def many(self, *commands: tuple[str, ...]) -> list[subprocess.CompletedProcess]:
        """Several read-only commands at once (they do not depend on each other)."""
        return [_finish(p) for p in [_popen(self.argv(*c)) for c in commands]]


@pytest.fixture
def cli(ray_runtime, tmp_path) -> Cli:
    url = f"file://{tmp_path}/store"
    workflow.init(url)
    return Cli(url, ray.get_runtime_context().gcs_address)


def _one_clear_line(result: subprocess.CompletedProcess, code: int, pattern: str) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert re.search(pattern, lines[0]), lines[0]


def _failed(dag, workflow_id: str) -> None:
    with pytest.raises(workflow.WorkflowExecutionError):
        workflow.run(dag, workflow_id=workflow_id)


def _some_workflows() -> None:
    assert workflow.run(tasks.add.bind(1, 2), workflow_id="ok-1", metadata={"owner": "ada"}) == 3
    _failed(tasks.boom.bind("kaput"), "bad-1")
    _failed(tasks.boom.bind("never mind"), "gone-1")
    workflow.cancel("gone-1")


def test_replay_does_not_import_ray(cli):
    assert workflow.run(tasks.add.bind(2, 3), workflow_id="r-1") == 5
    code = ("import runpy, sys\n"
            "sys.argv = ['ray-durable', *sys.argv[1:]]\n"
            "try:\n"
            "    runpy.run_module('engine', run_name='__main__', alter_sys=True)\n"
            "except SystemExit as exc:\n"
            "    status = exc.code\n"
            "assert 'ray' not in sys.modules, 'ray-durable replay imported ray'\n"
            "sys.exit(status)\n")
    result = _finish(_popen(["-c", code, "replay", "show", "r-1", "--storage", cli.url]))
    assert result.returncode == 0, result.stderr
    assert "r-1" in result.stdout and "SUCCESSFUL" in result.stdout


def test_list(cli):
    _some_workflows()
    table, failed, two, by_id = cli.many(("list",), ("list", "--status", "FAILED", "--json"),
                                         ("list", "--status", "failed", "Successful", "--json"),
                                         ("list", "--sort", "id", "--limit", "2"))
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["WORKFLOW", "ID", "STATUS", "STARTED", "ENDED", "DURATION", "FAILED", "TASK"]
    rows = [re.split(r"\s{2,}", line) for line in lines[1:4]]
    # newest first; times to the second, local; the failed task of a FAILED one
    assert [(r[0], r[1], r[-1]) for r in rows] == [
        ("gone-1", "CANCELED", "-"), ("bad-1", "FAILED", BOOM), ("ok-1", "SUCCESSFUL", "-")]
    for row in rows:
        assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[2]) and re.fullmatch(r"[\d.]+s", row[4])
    assert lines[-1] == f"3 workflows in {cli.url} (1 CANCELED, 1 FAILED, 1 SUCCESSFUL)"

    assert failed.returncode == 0, failed.stderr
    [bad] = json.loads(failed.stdout)
    assert bad["workflow_id"] == "bad-1" and bad["status"] == "FAILED" and bad["failed_task"] == BOOM
    assert bad["start_time"] <= bad["end_time"] and bad["duration_s"] >= 0 and bad["lease"] is None
    assert two.returncode == 0, two.stderr
    assert [(r["workflow_id"], r["status"]) for r in json.loads(two.stdout)] == [
        ("bad-1", "FAILED"), ("ok-1", "SUCCESSFUL")]
    assert [line.split()[0] for line in by_id.stdout.splitlines()[1:3]] == ["bad-1", "gone-1"]
    assert by_id.stdout.splitlines()[-1] == (f"3 workflows in {cli.url}; showing the first 2 "
                                             "(1 CANCELED, 1 FAILED)")


def test_status(cli):
    _some_workflows()
    text, as_json, unknown, reserved = cli.many(("status", "ok-1"), ("status", "bad-1", "--json"),
                                                ("status", "nope"), ("status", "system:secret"))
    assert text.returncode == 0, text.stderr
    fields = dict(re.split(r":\s+", line, maxsplit=1) for line in text.stdout.splitlines())
    assert fields["workflow"] == "ok-1" and fields["status"] == "SUCCESSFUL"
    assert json.loads(fields["metadata"]) == {"owner": "ada"}
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", fields["started"])
    assert "took" in fields["ended"]
    assert fields["runs"] == "1" and re.search(r"-> .*\(.*s, succeeded\), on \S+:\d+$", fields["run 1"])
    assert fields["tasks"] == "1  (1 SUCCESSFUL)" and "lease" not in fields and "failure" not in fields

    assert as_json.returncode == 0, as_json.stderr
    doc = json.loads(as_json.stdout)
    assert doc["workflow_id"] == "bad-1" and doc["status"] == "FAILED"
    assert doc["stats"]["start_time"] <= doc["stats"]["end_time"]
    assert doc["user_metadata"] == {} and doc["storage"] == cli.url
    failure = doc["failure"]
    assert (failure["task_id"], failure["error_type"], failure["message"], failure["attempt"]) == (
        BOOM, "builtins.ValueError", "kaput", 1)
    assert "ValueError: kaput" in failure["traceback"]
    assert [run["outcome"] for run in doc["runs"]] == ["failed"] and doc["lease"] is None

    _one_clear_line(unknown, 1, rf"^error: workflow 'nope' does not exist in storage {re.escape(cli.url)}$")
    _one_clear_line(reserved, 2, r"workflow id 'system:secret' is .*(reserved|not allowed)")


def test_resume_a_failed_workflow(cli, tmp_path):
    marker = tmp_path / "marker"
    _failed(tasks.fails_until.bind(str(marker), "fixed"), "fx-1")
    marker.touch()
    result = cli("resume", "fx-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "'fixed'\n"
    assert "Traceback" not in result.stderr
    assert workflow.get_status("fx-1") == workflow.SUCCESSFUL


def test_results_stay_alone_on_stdout_while_ray_prints_warnings(cli, tmp_path):
    """Ray's driver prints raylet warnings ("N PYTHON worker processes have been started ...") to
    sys.stdout even with log_to_driver=False; CI once saw one land in front of ``--json`` output.
    Here the test publishes such a message to every driver while ``resume --json`` runs: it must
    reach the command's stderr, and stdout must hold the JSON alone."""
    from ray._private.utils import publish_error_to_driver

    marker, gate = tmp_path / "marker", tmp_path / "gate"
    _failed(tasks.gated.bind(tasks.fails_until.bind(str(marker), 7), str(gate)), "noisy-1")
    marker.touch()
    process = _popen(cli.argv("resume", "noisy-1", "--json"))
    try:
        _wait_for(lambda: workflow.get_status("noisy-1") == workflow.RUNNING, "the CLI's resume to start")
        gcs = ray._private.worker.global_worker.gcs_client
        for _ in range(20):  # the subscriber polls; a few messages over a second or two reach it
            publish_error_to_driver("test_warning", "WARNING: a raylet warning from the test", gcs)
            time.sleep(0.1)
    finally:
        gate.touch()
    result = _finish(process)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"workflow_id": "noisy-1", "status": "SUCCESSFUL", "output": "7"}
    assert "a raylet warning from the test" in result.stderr


def _wait_for(condition, what: str, bound: float = 120) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what} after {bound}s"
        time.sleep(0.05)


def test_resume_all_include_failed(cli, tmp_path):
    marker = tmp_path / "marker"
    _failed(tasks.fails_until.bind(str(marker), 1), "ra-1")
    _failed(tasks.fails_until.bind(str(marker), 2), "ra-2")
    _failed(tasks.boom.bind("still broken"), "ra-3")
    assert workflow.run(tasks.add.bind(1, 1), workflow_id="ra-ok") == 2
    marker.touch()

    result = cli("resume-all", "--include-failed")
    assert result.returncode == 1, result.stderr  # ra-3 failed again
    progress = [line for line in result.stderr.splitlines() if line.startswith("[")]
    assert [line.split(":")[0][:6] for line in progress] == ["[1/3] ", "[2/3] ", "[3/3] "]
    by_id = {line.split()[1].rstrip(":"): line.split(": ", 1)[1] for line in progress}
    assert by_id["ra-1"] == by_id["ra-2"] == "SUCCESSFUL"
    assert by_id["ra-3"].startswith(
        f"FAILED: workflow 'ra-3' failed: task '{tasks.tid('boom')}' raised ValueError: still broken")
    assert result.stdout == "resumed 3 workflows: 2 SUCCESSFUL, 1 FAILED\n"
    assert workflow.get_output("ra-2") == 2
    assert workflow.get_status("ra-3") == workflow.FAILED


def test_cancel_a_running_workflow(cli):
    ref = workflow.run_async(tasks.slow.bind(1, 60), workflow_id="c-1")
    deadline = time.monotonic() + 120
    while workflow.get_status("c-1") != workflow.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    result = cli("cancel", "c-1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "canceled workflow 'c-1' (was RUNNING)\n"
    assert workflow.get_status("c-1") == workflow.CANCELED
    with pytest.raises(workflow.WorkflowCancellationError):
        ray.get(ref)


def test_delete(cli):
    for wid in ("d-1", "d-2"):
        assert workflow.run(tasks.add.bind(1, 2), workflow_id=wid) == 3

    refused = cli("delete", "d-1")  # stdin is not a terminal, and no --yes
    _one_clear_line(refused, 2, r"refusing to delete workflow 'd-1' without confirmation: .*pass --yes")
    assert workflow.get_status("d-1") == workflow.SUCCESSFUL

    leader, follower = pty.openpty()  # a terminal: it asks, and we say yes
    try:
        asked = _popen(cli.argv("delete", "d-2"), stdin=follower)
        os.write(leader, b"y\n")
        asked = _finish(asked)
    finally:
        os.close(leader)
        os.close(follower)
    assert asked.returncode == 0, asked.stderr
    assert "delete workflow 'd-2' (SUCCESSFUL) and all its data" in asked.stderr
    assert asked.stdout == "deleted workflow 'd-2' (SUCCESSFUL)\n"

    result = cli("delete", "d-1", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "deleted workflow 'd-1' (SUCCESSFUL)\n"
    for wid in ("d-1", "d-2"):
        with pytest.raises(workflow.WorkflowNotFoundError):
            workflow.get_status(wid)


def test_reindex(cli):
    _some_workflows()
    result = cli("reindex")
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == "reindex: 3/3 (100%)"
    assert result.stdout.startswith(f"rebuilt the status index of {cli.url}: 3 workflows, 2 finished")
    assert sorted(workflow.list_all()) == [("bad-1", workflow.FAILED), ("gone-1", workflow.CANCELED),
                                           ("ok-1", workflow.SUCCESSFUL)]


def test_usage_errors_need_no_ray(cli):
    status, scheme = [_finish(p) for p in (
        _popen(cli.argv("list", "--status", "FAILED", "DONE")),
        _popen(["-m", "engine", "list", "--storage", "gs://bucket/wf"]),
    )]
    _one_clear_line(status, 2, r"unknown workflow status 'DONE'; use one of RUNNING, FAILED, RESUMABLE, "
                               r"CANCELED, SUCCESSFUL, PENDING$")
    _one_clear_line(scheme, 2, r"unknown storage URL scheme 'gs' in 'gs://bucket/wf'")


# --- no Ray where none is needed ----------------------------------------------------------------

def _run_watching_children(argv: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, set[str]]:
    """Run the CLI, and collect the names of every process it starts while it runs."""
    import psutil

    process = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen: set[str] = set()
    watched = psutil.Process(process.pid)
    while process.poll() is None:
        try:
            for child in watched.children(recursive=True):
                try:
                    seen.add(child.name())
                except psutil.Error:
                    pass
        except psutil.Error:
            break
        time.sleep(0.02)
    return _finish(process), seen


def test_reading_commands_start_no_ray(cli, tmp_path):
    _some_workflows()
    ray_tmp = tmp_path / "ray-tmp"  # where a Ray started by mistake would put its session
    ray_tmp.mkdir()
    env = dict(_env(), RAY_TMPDIR=str(ray_tmp))
    commands = [("list",), ("list", "--status", "FAILED", "--json"), ("status", "bad-1"),
                ("status", "ok-1", "--json"), ("show", "bad-1"), ("show", "ok-1", "--json"),
                ("replay", "timeline", "bad-1"), ("reindex",)]
    for command in commands:
        argv = ["-m", "engine", *command, "--storage", cli.url]
        result, started = _run_watching_children(argv, env)
        assert result.returncode == 0, (command, result.stderr)
        assert not started & {"raylet", "gcs_server"}, f"{command} started {started}"
        assert not started, f"{command} started processes: {started}"
    assert list(ray_tmp.iterdir()) == []
    show = json.loads(_finish(_popen(["-m", "engine", "show", "bad-1", "--json", "--storage", cli.url])).stdout)
    assert show["status"] == "FAILED" and show["failure"]["task_id"] == BOOM
    assert show["tasks"][0]["attempts"] == 1


def test_the_reading_commands_never_import_ray(cli):
    _some_workflows()
    code = ("import runpy, sys\n"
            "status, url = 0, sys.argv[1]\n"
            "for argv in (['list'], ['status', 'bad-1'], ['list', '--json']):\n"
            "    sys.argv = ['ray-durable', *argv, '--storage', url]\n"
            "    try:\n"
            "        runpy.run_module('engine', run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as exc:\n"
            "        status = status or exc.code\n"
            "assert 'ray' not in sys.modules, 'a reading command imported ray'\n"
            "sys.exit(status)\n")
    result = _finish(_popen(["-c", code, cli.url]))
    assert result.returncode == 0, result.stderr


def _dead_address() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


def test_what_storage_can_answer_needs_no_cluster(cli):
    """With an address where nothing answers, each of these succeeds: none tried to connect."""
    _some_workflows()
    dead = _dead_address()

    def run(*args: str) -> subprocess.CompletedProcess:
        return _finish(_popen(["-m", "engine", *args, "--storage", cli.url, "--address", dead]))

    done = run("resume", "ok-1", "--json")  # finished: its stored output
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"workflow_id": "ok-1", "status": "SUCCESSFUL", "output": "3"}
    again = run("cancel", "ok-1")
    assert again.stdout == "workflow 'ok-1' is already SUCCESSFUL; nothing to cancel\n"
    canceled = run("cancel", "bad-1", "--json")  # FAILED: nobody drives it
    assert canceled.returncode == 0, canceled.stderr
    assert json.loads(canceled.stdout) == {"workflow_id": "bad-1", "before": "FAILED", "status": "CANCELED"}
    assert workflow.get_status("bad-1") == workflow.CANCELED
    deleted = run("delete", "gone-1", "--yes")
    assert deleted.stdout == "deleted workflow 'gone-1' (CANCELED)\n", deleted.stderr
    nothing = run("resume-all")
    assert nothing.stdout == f"no RESUMABLE workflows to resume in {cli.url}\n", nothing.stderr
    _one_clear_line(run("resume", "nope"), 1, r"^error: workflow 'nope' does not exist in storage")
    _one_clear_line(run("resume", "gone-1"), 1, r"^error: workflow 'gone-1' does not exist")
    _one_clear_line(run("resume", "bad-1"), 1, r"^error: workflow 'bad-1' cannot be resumed: it was canceled$")
    with pytest.raises(workflow.WorkflowNotFoundError):
        workflow.get_status("gone-1")


def test_version_and_completion(tmp_path):
    version = _finish(_popen(["-m", "engine", "--version"]))
    assert version.returncode == 0 and re.fullmatch(r"ray-durable \d+\.\d+\.\d+\S*\n", version.stdout)
    out = tmp_path / "completions"
    env = dict(_env(), _ARGCOMPLETE="1", COMP_LINE="ray-durable li", COMP_POINT="14",
               _ARGCOMPLETE_STDOUT_FILENAME=str(out), _ARGCOMPLETE_IFS="\n")
    subprocess.run([sys.executable, "-m", "engine"], cwd=ROOT, env=env, timeout=60, capture_output=True)
    assert out.read_text().split() == ["list"]


def test_list_since_and_bad_input(cli):
    _some_workflows()
    recent, future, bad_since, bad_limit = cli.many(
        ("list", "--since", "1h", "--json"), ("list", "--since", "2999-01-01", "--json"),
        ("list", "--since", "yesterday"), ("list", "--limit", "0"))
    assert {r["workflow_id"] for r in json.loads(recent.stdout)} == {"ok-1", "bad-1", "gone-1"}
    assert json.loads(future.stdout) == []
    assert bad_since.returncode == 2 and "not a duration or a date: 'yesterday'" in bad_since.stderr
    assert bad_limit.returncode == 2 and "must be at least 1" in bad_limit.stderr
