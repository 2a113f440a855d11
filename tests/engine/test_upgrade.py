"""A store written by an earlier ray-durable still works after an upgrade.

``golden/store_v0_1`` was written by ray-durable 0.1 (see ``golden/make_store_v0_1.py``),
whose stored graphs name their classes by the module paths of that version
(``engine._graph``, ``engine._options``). A FAILED workflow from it must resume (unpickling
the old graph, reusing its checkpoints) and a finished one must answer from its log.
"""

import shutil
from pathlib import Path

import engine as workflow

GOLDEN = Path(__file__).parent / "golden" / "store_v0_1"


def test_a_workflow_stored_by_0_1_resumes_and_reads(ray_runtime, tmp_path):
    store = tmp_path / "store"
    shutil.copytree(GOLDEN, store)
    workflow.init(f"file://{store}")
    assert workflow.get_status("upgrade-done") == workflow.SUCCESSFUL
    assert workflow.get_output("upgrade-done") == 9
    assert workflow.get_status("upgrade-failed") == workflow.FAILED
    assert workflow.get_metadata("upgrade-failed", "first")["user_metadata"] == {"k": 1}
    # The resume loads the 0.1 graph; "first" and "add" are checkpointed and not run again.
    assert workflow.resume("upgrade-failed") == 9
    assert workflow.get_metadata("upgrade-failed", "first")["attempts"] == 1
    assert dict(workflow.list_all()) == {"upgrade-done": workflow.SUCCESSFUL,
                                         "upgrade-failed": workflow.SUCCESSFUL}
