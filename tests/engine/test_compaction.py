"""Compaction on the engine: the manager's runs snapshot a long log, loads read the snapshot and
the tail, and the history stays inspectable (``replay events`` shows every event it covers).

The property that a snapshot never changes the fold is tests/replay/test_snapshot.py; the load
time of a 1,000,000-event log is benchmarks/replay_speed.py (too slow for ``make test``).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid

import pytest

import engine as workflow
from engine.api._init import context
from engine.runtime._log_writer import LogWriter
from engine.store._sync import run_sync
from replay import (
    SNAPSHOT_BLOB,
    WorkflowSnapshotted,
    WorkflowStatus,
    encode_event,
    fold,
    load_state,
    read_events,
)
from storage_backends import LocalStorage
from tests.engine import tasks
from tests.replay.logs import LogBuilder


@pytest.fixture
def compacting(own_storage):
    """A storage of its own whose manager snapshots every 25 events."""
    url, options = own_storage
    workflow.init(url, storage_options=options, snapshot_every=25)
    return url, options


def test_a_long_continuation_chain_is_snapshotted_and_loads_the_same(compacting):
    url, options = compacting
    wid = f"chain-{uuid.uuid4().hex[:6]}"
    assert workflow.run(tasks.countdown.bind(40, 0), workflow_id=wid) == 40
    storage = context().storage
    events = run_sync(_events(storage, wid))
    snapshots = [seq for seq, e in events if isinstance(e, WorkflowSnapshotted)]
    assert len(snapshots) >= 4
    assert all(events[seq][1].upto_seq == seq - 1 for seq in snapshots)
    assert [seq for seq, _ in events] == list(range(len(events)))  # nothing the snapshots cover went
    assert run_sync(storage.blob_exists(wid, SNAPSHOT_BLOB))
    with_snapshot = run_sync(load_state(storage, wid))
    assert with_snapshot == run_sync(load_state(storage, wid, use_snapshot=False)) == fold(events)
    assert with_snapshot.status is WorkflowStatus.SUCCESSFUL and with_snapshot.last_snapshot_seq == snapshots[-1]
    assert workflow.get_output(wid) == 40 and workflow.get_status(wid) == workflow.SUCCESSFUL
    # replay events still shows everything the snapshot covers, and the snapshot events
    command = [sys.executable, "-m", "replay", "events", wid, "--storage", url]
    if options:
        command += ["--endpoint-url", options["endpoint_url"]]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    shown = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert len([line for line in lines if "workflow.snapshot" in line]) == len(snapshots)
    assert "workflow.submitted" in lines[0] and len(lines) == len(events)


def test_no_snapshots_when_turned_off(ray_runtime, tmp_path):
    workflow.init(f"file://{tmp_path}/off", snapshot_every=0)
    wid = f"chain-{uuid.uuid4().hex[:6]}"
    assert workflow.run(tasks.countdown.bind(15, 0), workflow_id=wid) == 15
    events = run_sync(_events(context().storage, wid))
    assert not any(isinstance(e, WorkflowSnapshotted) for _, e in events)
    assert not run_sync(context().storage.blob_exists(wid, SNAPSHOT_BLOB))


async def _events(storage, wid):
    return [pair async for pair in read_events(storage, wid)]


async def test_a_long_log_written_by_the_run_writer_loads_from_its_last_snapshot(tmp_path, monkeypatch):
    """17,000 events through the writer the manager's runs use (snapshot every 1,000): the load
    folds only the events after the last snapshot, and gets the fold of the whole log."""
    from replay import _log

    storage = LocalStorage(str(tmp_path))
    b = LogBuilder("long").submit().run("r")
    for i in range(5000):
        b.schedule(f"t{i}").start(f"t{i}")
        if i % 7 == 3:
            b.fail(f"t{i}").retry(f"t{i}", 2).start(f"t{i}", attempt=2).complete(f"t{i}", i, attempt=2)
        else:
            b.complete(f"t{i}", i)
    await storage.append("long", [encode_event(b.events[0])], 0)
    writer = LogWriter(storage, "long", fold(b.events[:1]), snapshot_every=1000)
    for start in range(1, len(b.events), 50):
        writer.add(*b.events[start:start + 50])
        await asyncio.sleep(0)
    await writer.drain()
    state = writer.state
    assert state.last_seq > 17_000 and state.last_snapshot_seq > state.last_seq - 1100
    first_seqs = []
    real = _log._apply_batch
    monkeypatch.setattr(_log, "_apply_batch", lambda st, w, batch: (first_seqs.append(batch.first_seq),
                                                                    real(st, w, batch)))
    loaded = await load_state(storage, "long")
    assert first_seqs[0] == state.last_snapshot_seq  # the snapshot's own event, then the tail
    assert len(first_seqs) < 40  # batches of 50 events: about 1,000 / 50 of them, not 400
    monkeypatch.setattr(_log, "_apply_batch", real)
    assert loaded == await load_state(storage, "long", use_snapshot=False) == state
    await storage.close()
