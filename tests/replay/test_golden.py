"""Golden output: fixed hand-written logs -> the exact text of ``show``.

The logs (tests/replay/logs.py) have fixed timestamps, so the output is
stable to the byte. A change to the fold, the schema or the renderer that
changes what users see fails here. To accept an intended change:

    REPLAY_UPDATE_GOLDEN=1 .venv/bin/pytest tests/replay/test_golden.py

and review the diff of tests/replay/golden/.
"""

import os
import subprocess
import sys

import pytest

from tests.replay.logs import SCENARIOS, write_log

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_show_matches_golden_file(name, tmp_path):
    root = str(tmp_path / "store")
    builder = SCENARIOS[name](f"golden-{name.replace('_', '-')}")
    await write_log(root, {}, builder.workflow_id, builder.events)
    proc = subprocess.run([sys.executable, "-m", "replay", "show", builder.workflow_id, "--storage", root],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    path = os.path.join(GOLDEN, f"show_{name}.txt")
    if os.environ.get("REPLAY_UPDATE_GOLDEN"):
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w") as f:
            f.write(proc.stdout)
    with open(path) as f:
        expected = f.read()
    assert proc.stdout == expected, f"`show` output differs from {path} (REPLAY_UPDATE_GOLDEN=1 to accept)"
