"""A fork's log in the replay layer: the fold's rules for task.forked, show/diff of a fork and
its source, and where a shared output's bytes are read from (no Ray)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from replay import ForkOrigin, IllegalTransitionError, TaskStatus, fold, read_blob
from replay._diff import diff_states, render_diff
from storage_backends import BlobNotFoundError, open_storage
from tests.replay.logs import LogBuilder, failed, forked, payload, write_log
from tests.replay.test_golden import REPO


def test_forked_completions_fold_as_durable_ones():
    state = fold(forked().events)
    assert state.status.value == "SUCCESSFUL"
    assert state.submission.forked_from == ForkOrigin(workflow_id="golden-failed", seq=14, from_task="flaky")
    assert [t for t, task in state.tasks.items() if task.forked] == ["ok", "big"]
    assert state.tasks["big"].status is TaskStatus.SUCCESSFUL and state.tasks["big"].output.log == "golden-failed"
    assert not state.tasks["flaky"].forked


@pytest.mark.parametrize("build, reason", [
    (lambda b: b.submit().forked("a"), "belongs in a fork's log"),
    (lambda b: b.submit(forked_from=ForkOrigin(workflow_id="s", seq=1)).run("r").forked("a"),
     "before the fork's first run"),
    (lambda b: b.submit(forked_from=ForkOrigin(workflow_id="s", seq=1)).forked("a").forked("a"),
     "already forked"),
])
def test_task_forked_anywhere_else_is_illegal(build, reason):
    with pytest.raises(IllegalTransitionError, match=reason):
        fold(build(LogBuilder("w")).events)


def test_diff_says_what_the_fork_reused_and_ran():
    d = diff_states(fold(failed().events), fold(forked().events))
    text = render_diff(d)
    assert "golden-forked forks golden-failed at seq 14, re-run from task flaky" in text
    assert "reused (2): ok, big" in text and "ran in the fork (1): flaky" in text
    assert d.differs  # the statuses differ (FAILED -> SUCCESSFUL)
    assert diff_states(fold(forked().events), fold(failed().events)).fork == d.fork  # either order


async def test_the_cli_diffs_a_fork_with_its_source(tmp_path):
    root = str(tmp_path / "store")
    for builder in (failed(), forked()):
        await write_log(root, {}, builder.workflow_id, builder.events)
    proc = subprocess.run([sys.executable, "-m", "replay", "diff", "golden-failed", "golden-forked",
                           "--storage", root], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 1, proc.stderr  # they differ
    assert "reused (2): ok, big" in proc.stdout


async def test_a_shared_blob_is_read_from_its_owner_then_from_the_forks_copy(tmp_path):
    storage = open_storage(str(tmp_path / "store"))
    try:
        ref = payload("x", blob="out-1")
        ref.log = "owner"
        await storage.put_blob("owner", "out-1", b"from the owner")
        assert await read_blob(storage, "fork", ref) == b"from the owner"
        await storage.delete_blob("owner", "out-1")
        with pytest.raises(BlobNotFoundError):
            await read_blob(storage, "fork", ref)
        await storage.put_blob("fork", "out-1", b"the fork's copy")
        assert await read_blob(storage, "fork", ref) == b"the fork's copy"
    finally:
        await storage.close()
