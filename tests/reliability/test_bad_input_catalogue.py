"""The bad-input catalogue: every public call, fed what a user gets wrong.

Promise: each bad input is a clear error of a documented type, whose message names the thing
that is wrong, and it loses nothing: the store holds exactly what it held before (no log, no
blob, no index entry written or removed).
"""

from __future__ import annotations

import os

import pytest

import engine as workflow
from storage_backends import InvalidIdError, StorageURLError, UnknownSchemeError
from tests.engine import tasks
from tests.reliability._figures import count


def _snapshot(root: str) -> dict[str, bytes]:
    out = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, root)] = f.read()
    return out


DAG = tasks.add.bind(1, 2)

# (what, call, the error it must raise, a pattern its message must match)
CATALOGUE = [
    ("workflow id with a slash", lambda: workflow.run(DAG, workflow_id="a/b"), InvalidIdError, "a/b"),
    ("workflow id '..'", lambda: workflow.run(DAG, workflow_id=".."), InvalidIdError, r"\.\."),
    ("empty workflow id", lambda: workflow.run(DAG, workflow_id=""), InvalidIdError, "empty"),
    ("workflow id not a string", lambda: workflow.run(DAG, workflow_id=42), InvalidIdError, "42"),
    ("status of an id with a slash", lambda: workflow.get_status("../x"), InvalidIdError, r"\.\./x"),
    ("status of an unknown workflow", lambda: workflow.get_status("nope"), workflow.WorkflowNotFoundError, "nope"),
    ("output of an unknown workflow", lambda: workflow.get_output("nope"), workflow.WorkflowNotFoundError, "nope"),
    ("metadata of an unknown workflow", lambda: workflow.get_metadata("nope"), workflow.WorkflowNotFoundError,
     "nope"),
    ("resume of an unknown workflow", lambda: workflow.resume("nope"), workflow.WorkflowNotResumableError,
     "does not exist"),
    ("cancel of an unknown workflow", lambda: workflow.cancel("nope"), workflow.WorkflowNotFoundError, "nope"),
    ("delete of an unknown workflow", lambda: workflow.delete("nope"), workflow.WorkflowNotFoundError, "nope"),
    ("run of something not a DAG", lambda: workflow.run(tasks.add, workflow_id="x1"), TypeError, "f.bind"),
    ("run of a plain value", lambda: workflow.run(42, workflow_id="x2"), TypeError, "int"),
    ("metadata not a dict", lambda: workflow.run(DAG, workflow_id="x3", metadata=["a"]), ValueError, "metadata"),
    ("metadata not JSON", lambda: workflow.run(DAG, workflow_id="x4", metadata={"f": object()}), ValueError,
     "metadata"),
    ("unknown workflow.options key", lambda: workflow.options(task_idd="x"), ValueError, "task_idd"),
    ("list_all with an unknown status", lambda: workflow.list_all("NOPE"), ValueError, "NOPE"),
    ("list_all with a non-status", lambda: workflow.list_all(3), TypeError, "status"),
    ("blank storage URL", lambda: workflow.init(""), StorageURLError, "blank"),
    ("storage URL of spaces", lambda: workflow.init("   "), StorageURLError, "blank"),
    ("file:// naming nothing", lambda: workflow.init("file://"), StorageURLError, "names no directory"),
    ("unknown storage scheme", lambda: workflow.init("gs://bucket/x"), UnknownSchemeError, "gs"),
    ("S3 URL without a bucket", lambda: workflow.init("s3://"), Exception, "bucket"),
    ("negative max_running_workflows", lambda: workflow.init(max_running_workflows=-5), ValueError,
     "max_running_workflows"),
    ("zero max_running_workflows", lambda: workflow.init(max_running_workflows=0), ValueError,
     "max_running_workflows"),
    ("max_pending_workflows not an int", lambda: workflow.init(max_pending_workflows="3"), TypeError,
     "max_pending_workflows"),
]


@pytest.fixture(scope="module")
def store(ray_runtime, tmp_path_factory):
    """One store for the catalogue, holding one finished workflow that must survive every input."""
    root = str(tmp_path_factory.mktemp("catalogue") / "store")
    workflow.init(f"file://{root}")
    assert workflow.run(tasks.add.bind(2, 3), workflow_id="keep") == 5
    return root


@pytest.mark.parametrize("what,call,error,pattern", CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_is_a_clear_error_and_loses_nothing(store, what, call, error, pattern):
    root = store
    workflow.init(f"file://{root}")
    before = _snapshot(root)
    with pytest.raises(error, match=pattern):
        call()
    assert _snapshot(root) == before, f"{what}: the store changed"
    assert workflow.get_output("keep") == 5
    count("bad inputs tried")


def test_a_file_as_the_storage_root(ray_runtime, tmp_path):
    a_file = tmp_path / "not-a-dir"
    a_file.write_bytes(b"precious")
    with pytest.raises(StorageURLError, match=f"{a_file} is a file, not a directory"):
        workflow.init(str(a_file))
    assert a_file.read_bytes() == b"precious"
    count("bad inputs tried")
