"""Compaction (replay/_snapshot.py): a snapshot never changes what the fold produces.

Over generated legal logs (the fold properties' model): a snapshot taken at any point where the
writer may take one, followed by the rest of the log, folds to exactly the state of folding the
whole log, in memory and through ``load_state`` from real local storage; a snapshot that does
not belong to the log it sits beside (stale, damaged, or its event missing) is never used.
"""

from __future__ import annotations

import asyncio
import tempfile

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay import (
    SNAPSHOT_BLOB,
    IllegalTransitionError,
    WorkflowSnapshotted,
    WorkflowStatus,
    fold,
    load_state,
    read_events,
    snapshot_due,
    take_snapshot,
)
from replay._snapshot import SnapshotError, decode_snapshot
from storage_backends import LocalStorage
from tests.replay.logs import T0, LogBuilder, write_log
from tests.replay.test_fold_properties import SETTINGS, legal_logs


def _with_snapshot(events, cut):
    """The log with a snapshot event after its first ``cut`` events, and the snapshot's blob."""
    event, blob = take_snapshot(fold(events[:cut]), ts=T0 + 1e5)
    return events[:cut] + [event] + events[cut:], blob


def _cuts(events):
    """Where a writer may take a snapshot: after an event that leaves the workflow not final."""
    return [k for k in range(1, len(events) + 1) if not fold(events[:k]).is_terminal]


@SETTINGS
@given(legal_logs(max_steps=80), st.data())
def test_fold_from_a_snapshot_and_its_tail_equals_the_fold_of_the_whole_log(events, data):
    cuts = _cuts(events)
    cut = data.draw(st.sampled_from(cuts))
    log, blob = _with_snapshot(events, cut)
    header, state = decode_snapshot(blob)
    assert header.upto_seq == cut - 1 and header.event_seq == cut
    whole = fold(log)
    assert fold(((seq, e) for seq, e in enumerate(log) if seq >= cut), state) == whole
    # the snapshot event changes nothing but where the latest snapshot is
    assert whole.last_snapshot_seq == cut
    plain = fold(events)
    plain.last_snapshot_seq = cut
    plain.last_seq, plain.last_ts = whole.last_seq, whole.last_ts
    assert plain == whole


async def _load(log, blob, sizes=None, blob_for=None):
    with tempfile.TemporaryDirectory() as root:
        await write_log(root, {}, "prop", log, sizes)
        storage = LocalStorage(root)
        try:
            if blob is not None:
                await storage.put_blob(blob_for or "prop", SNAPSHOT_BLOB, blob)
            return (await load_state(storage, "prop"), await load_state(storage, "prop", use_snapshot=False),
                    [e async for _s, e in read_events(storage, "prop")])
        finally:
            await storage.close()


@SETTINGS
@given(legal_logs(max_steps=80), st.data())
def test_load_state_with_a_snapshot_equals_load_state_without(events, data):
    cut = data.draw(st.sampled_from(_cuts(events)))
    log, blob = _with_snapshot(events, cut)
    sizes = data.draw(st.lists(st.integers(1, 7), min_size=1, max_size=len(log)))
    with_snapshot, without, stored = asyncio.run(_load(log, blob, sizes))
    assert with_snapshot == without == fold(log)
    assert stored == log  # the events the snapshot covers are all still there


def _long_running_log(tasks=30):
    b = LogBuilder("w").submit().run("r")
    for i in range(tasks):
        b.schedule(f"t{i}").start(f"t{i}").complete(f"t{i}", i)
    return b.events


def test_a_stale_snapshot_is_never_used():
    """A blob left by an earlier log of the same id (deleted, begun again) names a digest no event of
    this log names: the whole log is folded."""
    old, _ = _with_snapshot(_long_running_log(30), 50)
    _, stale_blob = _with_snapshot(old, 60)
    new = _long_running_log(40)  # longer than the stale snapshot covers, no snapshot event there
    with_snapshot, without, _ = asyncio.run(_load(new, stale_blob))
    assert with_snapshot == without == fold(new)
    assert with_snapshot.last_snapshot_seq == -1


def test_a_snapshot_beyond_the_end_of_the_log_is_never_used():
    log, blob = _with_snapshot(_long_running_log(30), 80)
    short = _long_running_log(10)
    with_snapshot, without, _ = asyncio.run(_load(short, blob))
    assert with_snapshot == without == fold(short)


def test_a_damaged_snapshot_is_refused_and_the_log_is_folded():
    log, blob = _with_snapshot(_long_running_log(30), 50)
    damaged = blob[:-10] + bytes(10)
    with pytest.raises(SnapshotError):
        decode_snapshot(damaged)
    with_snapshot, without, _ = asyncio.run(_load(log, damaged))
    assert with_snapshot == without == fold(log)


def test_the_snapshot_is_what_the_load_uses(monkeypatch):
    """Not just equal by accident: a load with a snapshot folds only the tail."""
    from replay import _log

    log, blob = _with_snapshot(_long_running_log(30), 80)
    applied = []
    real = _log._apply_batch
    monkeypatch.setattr(_log, "_apply_batch", lambda state, wid, batch: (applied.append(batch.first_seq),
                                                                        real(state, wid, batch)))
    with_snapshot, _without, _ = asyncio.run(_load(log, blob, [len(log)]))
    assert with_snapshot == fold(log)
    assert applied[0] == 80  # the snapshot event (seq 80), then the tail: nothing before it was folded


def test_a_snapshot_event_must_follow_the_last_event_it_covers():
    events = _long_running_log(3)
    state = fold(events)
    bad = WorkflowSnapshotted(ts=T0, upto_seq=state.last_seq - 1, digest="crc32:0", size=1)
    with pytest.raises(IllegalTransitionError, match="must follow the last event it covers"):
        fold(events + [bad])


def test_no_snapshot_after_the_end():
    b = LogBuilder("w").submit().run("r").schedule("a").start("a").complete("a", 1).succeed(1)
    state = fold(b.events)
    assert state.status is WorkflowStatus.SUCCESSFUL and not snapshot_due(state, 1)
    event, _blob = take_snapshot(state)
    with pytest.raises(IllegalTransitionError, match="already ended"):
        fold(b.events + [event])


def test_snapshot_due_counts_events_since_the_last_snapshot():
    events = _long_running_log(3)  # 11 events, RUNNING
    assert snapshot_due(fold(events), 11) and not snapshot_due(fold(events), 12)
    log, _ = _with_snapshot(events, len(events))
    assert not snapshot_due(fold(log), 1) or fold(log).last_seq - fold(log).last_snapshot_seq >= 1
    assert not snapshot_due(fold(log), 2)
    assert not snapshot_due(fold(events), 0)  # 0: never
