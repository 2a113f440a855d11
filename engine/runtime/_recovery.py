"""Who may drive a workflow whose log says RUNNING: the lease rules a manager applies.

``identity`` is the manager asking. A workflow is *held elsewhere* while another owner's
lease on it is live, unless that owner sat in this manager's seat (same cluster, same named
actor: it is gone). It is *orphaned* (this manager should take it on by itself) if it was
this owner's (the manager restarted), or its seat's predecessor's, or, with start-up recovery,
its lease expired and it belongs to this manager's application (the seat rule too: a new cluster
on the same port sits in the same seat). A PENDING workflow (never
claimed) is, by the same rules, the manager's its submission was handed to: a driver that died
before its ``run_async`` hand-over reached the manager, or a cluster that died with it queued,
leaves it to that manager's successor, or to the next cluster of its application.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from replay import WorkflowState, WorkflowStatus

from ..store import _index
from ..store._leases import Lease, address_gone, in_force, read_leases


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


def expected_owner(state: WorkflowState) -> tuple[str, str]:
    """(owner, application) of the manager that holds the workflow or is to: a RUNNING one's
    latest run's, or the manager a PENDING one's submission was handed to; ("", "") if none."""
    if state.status is WorkflowStatus.RUNNING:
        return state.owner, state.owner_application
    if state.status is WorkflowStatus.PENDING and state.submission is not None:
        return state.submission.owner, state.submission.application
    return "", ""


# How long after its submission a hand-over may still reach the manager it names: Ray delivers
# one in well under a second, a manager buried in calls takes minutes (wait_output's bound too),
# and Ray sends it again to that manager restarted. Until then that manager does not take the
# workflow on by itself: the hand-over carries what the log does not (the runtime env's secret
# values). A new manager in its seat need not wait: nothing sent to the old one arrives.
HANDOVER_GRACE_S = 60.0


def orphaned_at(state: WorkflowState, lease: Lease | None, me: Identity, adopt_expired: bool,
                now: float | None = None) -> float | None:
    """From when ``me`` should take the workflow on by itself (see the module doc): ``now``, a
    later time, or None (not, as things stand).

    A PENDING workflow (its submission only, or queued) counts as its submission's manager's:
    its hand-over was lost (the driver died first), or the queue with it (the cluster died).
    If that manager is ``me`` (restarted), not before :data:`HANDOVER_GRACE_S` after the
    submission, since its hand-over may still be on its way. A seat (an address and an actor
    name) is taken again by a new cluster started on the same port, whatever its application:
    the seat rules apply only within one application.
    """
    now = time.time() if now is None else now
    owner, application = expected_owner(state)
    if not owner:
        return None
    pending = state.status is WorkflowStatus.PENDING
    if owner == me.owner:  # a restart: Ray sends the calls in flight again, a hand-over too
        return max(now, state.submission.ts + HANDOVER_GRACE_S) if pending else now
    if application != me.application:  # never another application's code, whatever the seat
        return None
    if _same_seat(lease, me) or (pending and state.submission.seat == me.seat):
        return now  # its predecessor in this seat is gone, with any hand-over sent to it
    if not adopt_expired:
        return None
    if pending and lease is None:  # its manager never claimed anything: gone only if its cluster is
        return now if address_gone(state.submission.seat.partition("/")[0]) else None
    return now if in_force(lease, now) is None else None


def orphaned(state: WorkflowState, lease: Lease | None, me: Identity, adopt_expired: bool,
             now: float | None = None) -> bool:
    """True if ``me`` should take the workflow on by itself now (see :func:`orphaned_at`)."""
    now = time.time() if now is None else now
    when = orphaned_at(state, lease, me, adopt_expired, now)
    return when is not None and when <= now


async def find_orphans(storage, me: Identity, adopt_expired: bool
                       ) -> tuple[list[str], float | None, dict[str, float]]:
    """Workflow ids :func:`orphaned` says ``me`` should take on, in id order; with
    ``adopt_expired``, when the next live lease on a workflow of ``me``'s application expires
    (Unix seconds; None if none), so the caller can look again then; and the submissions handed
    to ``me`` whose hand-over is not overdue yet, with when it will be (the caller checks just
    those then, rather than listing every log again)."""
    found = await _index.lookup(storage, await _index.list_workflow_ids(storage))
    held = {wid: (s, *expected_owner(s)) for wid, s in found.open_states.items()}
    held = {wid: h for wid, h in held.items() if h[1]}
    leases = await read_leases(storage, {owner for _s, owner, _a in held.values()})
    now = time.time()
    when = {wid: orphaned_at(state, leases.get(owner), me, adopt_expired, now)
            for wid, (state, owner, _a) in held.items()}
    orphans = sorted(wid for wid, at in when.items() if at is not None and at <= now)
    expiries = [leases[owner].expires_at for wid, (_s, owner, application) in held.items()
                if adopt_expired and wid not in orphans and application == me.application
                and owner in leases and owner != me.owner and leases[owner].live(now)]
    return orphans, min(expiries, default=None), {wid: at for wid, at in when.items() if at is not None and at > now}
