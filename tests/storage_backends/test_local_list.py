"""What only the local backend's list_logs sees: directories it did not make."""

import os

from storage_backends import open_storage


async def test_list_logs_skips_system_tombstone_and_foreign_directories(tmp_path):
    root = tmp_path / "store"
    storage = open_storage(str(root))
    await storage.append("wf-1", [b"x"], 0)
    await storage.append("system:status_index", [b"s"], 0)
    assert os.path.isfile(root / ".system" / "status_index" / "events.log")
    for foreign in (".deleted-wf-2-0123", ".hidden", "caf\u00e9", "has space"):
        os.makedirs(root / foreign)
        (root / foreign / "events.log").write_bytes(b"not empty")
    (root / "loose-file").write_bytes(b"?")
    os.makedirs(root / "blobs-only" / "blobs")
    os.makedirs(root / "empty-log")
    (root / "empty-log" / "events.log").write_bytes(b"")
    assert await storage.list_logs() == ["wf-1"]
    await storage.close()
