"""``ray-durable fork`` (one workflow, and bulk) and ``ray-durable replay check``, as subprocesses.

The fork commands join the session's Ray cluster (``--address``); ``replay check`` needs none.
"""

from __future__ import annotations

import json
import os

import pytest
import ray

import engine as workflow
from tests.engine import fork_tasks as ft
from tests.engine.test_cli import Cli


class ForkCli(Cli):
    CLUSTER_COMMANDS = (*Cli.CLUSTER_COMMANDS, "fork")


@pytest.fixture
def cli(ray_runtime, tmp_path, monkeypatch) -> ForkCli:
    url = f"file://{tmp_path}/store"
    workflow.init(url)
    log_dir = tmp_path / "runs"
    log_dir.mkdir()
    monkeypatch.setenv("FORK_TEST_LOG_DIR", str(log_dir))
    return ForkCli(url, ray.get_runtime_context().gcs_address)


def _fail(wid: str) -> None:
    log_dir = os.environ["FORK_TEST_LOG_DIR"]
    open(os.path.join(log_dir, "fail-c"), "w").close()
    try:
        with pytest.raises(workflow.WorkflowExecutionError):
            workflow.run(ft.cli_pipeline(), workflow_id=wid)
    finally:
        os.remove(os.path.join(log_dir, "fail-c"))


def test_fork_one_workflow_and_its_errors(cli):
    _fail("src")
    result = cli("fork", "src", "src-2", "--from-task", "b")
    assert result.returncode == 0, result.stderr
    assert "'name': 'd'" in result.stdout and "forking workflow 'src' into 'src-2' from task 'b'" in result.stderr
    assert ft.ran(os.environ["FORK_TEST_LOG_DIR"], "b") == 2

    exists = cli("fork", "src", "src-2")
    assert exists.returncode == 2 and "a workflow 'src-2' already exists" in exists.stderr
    unknown = cli("fork", "nope", "nope-2")
    assert unknown.returncode == 1 and "workflow 'nope' does not exist" in unknown.stderr
    task = cli("fork", "src", "src-3", "--from-task", "zz")
    assert task.returncode == 1 and "has no task 'zz'" in task.stderr and "Traceback" not in task.stderr
    assert cli("fork").returncode == 2
    assert cli("fork", "src", "--status", "FAILED").returncode == 2
    dag = cli("fork", "src", "src-4", "--dag", "tests.engine.fork_tasks:nothing_here")
    assert dag.returncode == 2 and "has no 'nothing_here'" in dag.stderr
    assert "src-3" not in dict(workflow.list_all())  # a refused fork writes nothing


def test_bulk_fork_of_failed_workflows(cli):
    _fail("bad-1")
    _fail("bad-2")
    workflow.run(ft.cli_pipeline(), workflow_id="fine")
    result = cli("fork", "--status", "FAILED", "--since", "1h", "--json")
    assert result.returncode == 0, result.stderr
    forks = json.loads(result.stdout)["forks"]
    assert sorted((f["source"], f["workflow_id"], f["outcome"]) for f in forks) == [
        ("bad-1", "bad-1.fork-1", "SUCCESSFUL"), ("bad-2", "bad-2.fork-1", "SUCCESSFUL")]
    assert workflow.get_status("bad-1.fork-1") == workflow.SUCCESSFUL
    assert workflow.get_status("bad-1") == workflow.FAILED  # sources are left as they were
    # Each fork re-ran from the failed task: c and d, never a, b or e again.
    runs = open(os.path.join(os.environ["FORK_TEST_LOG_DIR"], "runs")).read().splitlines()
    assert runs.count("a") == 3 and runs.count("c") == 3 + 2  # 3 sources + the 2 forks

    again = cli("fork", "--status", "FAILED")  # the sources are still FAILED: next free numbers
    assert again.returncode == 0, again.stderr
    assert "bad-1 -> bad-1.fork-2: SUCCESSFUL" in again.stdout
    none = cli("fork", "--status", "FAILED", "--since", "2000-01-01T00:00", "--json")
    assert none.returncode == 0
    assert cli("fork", "--status", "SOMETIMES").returncode == 2


def test_replay_check_exit_codes(cli):
    workflow.run(ft.cli_pipeline(), workflow_id="golden-1")
    _fail("golden-2")
    ok = cli("replay", "check", "golden-1", "golden-2", "--dag", "tests.engine.fork_tasks:cli_pipeline")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "check golden-1: OK" in ok.stdout and "run   c: not completed in the log (it is FAILED)" in ok.stdout

    renamed = cli("replay", "check", "--all", "--dag", "tests.engine.fork_tasks:cli_pipeline_renamed", "--json")
    assert renamed.returncode == 1, renamed.stderr
    plans = {p["workflow_id"]: p for p in json.loads(renamed.stdout)}
    assert not plans["golden-1"]["ok"] and plans["golden-2"]["ok"]  # golden-2 had not completed c
    assert plans["golden-1"]["rerun"]["c"].startswith("function renamed")

    unknown = cli("replay", "check", "nope", "--dag", "tests.engine.fork_tasks:cli_pipeline")
    assert unknown.returncode == 2 and "'nope' does not exist" in unknown.stderr
    assert cli("replay", "check", "golden-1", "--dag", "no_such_module:f").returncode == 2
    assert cli("replay", "check", "golden-1", "--dag", "nocolon").returncode == 2
    assert cli("replay", "check", "--dag", "tests.engine.fork_tasks:cli_pipeline").returncode == 2
