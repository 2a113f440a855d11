"""The one rule for a workflow's status as a person or program sees it.

The fold of the log gives PENDING, RUNNING, FAILED, CANCELED or SUCCESSFUL. What the log
cannot say is whether anybody is still driving it; two witnesses can:

* ``live``: what this cluster's manager says ("RUNNING" or "PENDING" if it holds the
  workflow, else None). Only known with Ray; storage-only readers pass None.
* ``lease``: the lease of the workflow's owner (:mod:`engine.store._leases`), from storage.

A RUNNING log whose owner's lease is in force (not expired, its cluster not known to be
gone) is RUNNING, whoever asks, with or without Ray.
Otherwise RUNNING or PENDING in the log with nobody holding it reads RESUMABLE (the driver,
the manager or the cluster died). A final status is final.
"""

from __future__ import annotations

import time

from replay import WorkflowState, WorkflowStatus

from ._leases import Lease, in_force, read_leases

_FINAL = (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED)
_OPEN = (WorkflowStatus.RUNNING, WorkflowStatus.PENDING)


def status_of(logged: WorkflowStatus | None, live: str | None = None, lease: Lease | None = None,
              now: float | None = None, asked_seat: str | None = None) -> WorkflowStatus | None:
    """The status to report, from the logged status and the two witnesses (see the module doc).

    Args:
        asked_seat: the seat (``Lease.seat``) of the manager that answered ``live``, if one
            did: a lease held from that seat is no evidence, the manager said what it drives.
    """
    if logged in _FINAL:
        return logged
    if live is not None:
        return WorkflowStatus(live)
    if lease is not None and asked_seat is not None and lease.seat == asked_seat:
        lease = None
    if logged is WorkflowStatus.RUNNING and in_force(lease, now) is not None:
        return WorkflowStatus.RUNNING
    if logged in _OPEN:
        return WorkflowStatus.RESUMABLE
    return logged


def needs_lease(state: WorkflowState) -> bool:
    """True if the status depends on the owner's lease (RUNNING in the log, with an owner)."""
    return state.status is WorkflowStatus.RUNNING and bool(state.owner)


async def statuses_from_storage(storage, states: dict[str, WorkflowState], live: dict[str, str] | None = None,
                                asked_seat: str | None = None
                                ) -> dict[str, tuple[WorkflowStatus | None, Lease | None]]:
    """``{workflow_id: (status, lease or None)}`` for folded states; one lease read per owner.

    ``live`` and ``asked_seat`` as for :func:`status_of` (storage-only readers pass neither)."""
    live = live or {}
    owners = [s.owner for wid, s in states.items() if needs_lease(s) and wid not in live]
    leases = await read_leases(storage, owners)
    now = time.time()
    out = {}
    for workflow_id, state in states.items():
        lease = leases.get(state.owner) if needs_lease(state) else None
        out[workflow_id] = (status_of(state.status, live.get(workflow_id), lease, now, asked_seat), lease)
    return out
