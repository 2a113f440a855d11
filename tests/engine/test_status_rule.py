"""The storage-only status rule (engine/store/_status.py) and how a lease is shown. No Ray.

The rule's cases against leases are in tests/engine/test_leases.py; here, how the CLI and the
UI show a status and the lease that holds it.
"""

from __future__ import annotations

import json
import re

from engine.cli import _format as fmt
from engine.store._leases import Lease
from engine.store._status import Description, WorkflowSummary, storage_status
from engine.ui import _pages
from replay import WorkflowStatus, fold, runs_of
from tests.replay.logs import running

RUNNING, PENDING, RESUMABLE = WorkflowStatus.RUNNING, WorkflowStatus.PENDING, WorkflowStatus.RESUMABLE


def _lease(expires_at, cluster="10.0.0.1:6379"):
    return Lease("cluster-a", cluster, "default", expires_at - 30, expires_at, 30.0, "seat-a")


def test_running_counts_only_with_a_lease_in_force():
    live, stale = _lease(200.0), _lease(50.0)
    assert storage_status(RUNNING, live, now=100.0) == (RUNNING, live)
    assert storage_status(PENDING, live, now=100.0) == (RESUMABLE, None)  # a PENDING log has no owner yet
    assert storage_status(RUNNING, stale, now=100.0) == (RESUMABLE, None)
    assert storage_status(RUNNING, None, now=100.0) == (RESUMABLE, None)
    for final in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.FAILED, WorkflowStatus.CANCELED):
        assert storage_status(final, live, now=100.0) == (final, None)
    assert storage_status(None) == (None, None)


def test_status_shows_the_lease_and_its_holder():
    b = running("wf")
    state = fold(b.events)
    lease = _lease(b.t + 30, cluster="head 10.0.0.1")
    status, held = storage_status(state.status, lease, now=b.t)
    found = Description(state, status, held, runs_of(b.events), [])
    text = fmt.status_text(found, "file:///s", now=b.t)
    fields = dict(re.split(r":\s+", line, maxsplit=1) for line in text.splitlines())
    assert fields["status"] == "RUNNING"
    assert re.fullmatch(r"held by head 10\.0\.0\.1 \(cluster-a\) until .* \(in 30\.00s\)", fields["lease"])
    doc = json.loads(fmt.status_json(found, "file:///s", now=b.t))
    assert doc["lease"] == lease.to_dict()
    assert doc["lease"]["owner"] == "cluster-a" and doc["lease"]["expires_at"] == b.t + 30
    # without it: RESUMABLE, and why
    status, held = storage_status(state.status, None, now=b.t)
    text = fmt.status_text(Description(state, status, held, runs_of(b.events), []), "file:///s", now=b.t)
    assert "lease:" not in text and "RESUMABLE  (the log says RUNNING, and no live lease shows a driver" in text


def test_the_list_page_shows_the_newest_rows_only():
    rows = [WorkflowSummary(f"w{i}", WorkflowStatus.SUCCESSFUL, float(1000 - i), float(1001 - i), None)
            for i in range(_pages.LIST_LIMIT + 1)]
    page = _pages.list_fragment(rows, "file:///s", [], "")
    assert page.count("<tr data-workflow=") == _pages.LIST_LIMIT
    assert f"{_pages.LIST_LIMIT + 1} workflows: {_pages.LIST_LIMIT + 1} SUCCESSFUL; the newest " \
           f"{_pages.LIST_LIMIT} are shown" in page
