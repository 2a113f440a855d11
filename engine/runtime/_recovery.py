"""Who may drive a workflow whose log says RUNNING: the lease rules a manager applies.

``identity`` is the manager asking. A workflow is *held elsewhere* while another owner's
lease on it is live, unless that owner sat in this manager's seat (same cluster, same named
actor: it is gone). It is *orphaned* (this manager should take it on by itself) if it was
this owner's (the manager restarted), or its seat's predecessor's, or, with start-up recovery,
its lease expired and it belongs to this manager's application.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from replay import WorkflowState, WorkflowStatus

from ..store import _index
from ..store._leases import Lease, in_force, read_leases


@dataclass(frozen=True)
class Identity:
    """The lease holder a manager is: what it writes in its lease and its run_started events."""

    owner: str
    cluster: str
    seat: str
    application: str


def held_elsewhere(state: WorkflowState, lease: Lease | None, me: Identity, now: float | None = None) -> bool:
    """True if a claim by ``me`` must be refused: another owner's live lease holds the workflow."""
    if state.status is not WorkflowStatus.RUNNING or not state.owner or state.owner == me.owner:
        return False
    if _same_seat(lease, me):
        return False  # its predecessor in this seat: gone, since a named actor is unique
    return in_force(lease, now) is not None


def _same_seat(lease: Lease | None, me: Identity) -> bool:
    return lease is not None and bool(lease.seat) and lease.seat == me.seat


def orphaned(state: WorkflowState, lease: Lease | None, me: Identity, adopt_expired: bool,
             now: float | None = None) -> bool:
    """True if ``me`` should take the workflow on by itself (see the module doc)."""
    if state.status is not WorkflowStatus.RUNNING or not state.owner:
        return False
    if state.owner == me.owner or _same_seat(lease, me):
        return True
    return adopt_expired and state.owner_application == me.application and in_force(lease, now) is None


async def find_orphans(storage, me: Identity, adopt_expired: bool) -> tuple[list[str], float | None]:
    """Workflow ids :func:`orphaned` says ``me`` should take on, in id order; and, with
    ``adopt_expired``, when the next live lease on a RUNNING workflow of ``me``'s application
    expires (Unix seconds; None if there is none), so the caller can look again then."""
    found = await _index.lookup(storage, await _index.list_workflow_ids(storage))
    running = {wid: s for wid, s in found.open_states.items()
               if s.status is WorkflowStatus.RUNNING and s.owner}
    leases = await read_leases(storage, (s.owner for s in running.values()))
    now = time.time()
    orphans = sorted(wid for wid, state in running.items()
                     if orphaned(state, leases.get(state.owner), me, adopt_expired, now))
    expiries = [leases[s.owner].expires_at for wid, s in running.items()
                if adopt_expired and wid not in orphans and s.owner_application == me.application
                and s.owner in leases and s.owner != me.owner and leases[s.owner].live(now)]
    return orphans, min(expiries, default=None)
