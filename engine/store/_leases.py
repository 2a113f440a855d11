"""Leases: which cluster drives a workflow, and until when, readable from storage alone.

A workflow's lease has two halves, each written the way it must be:

* **who** holds it: the ``owner`` of the workflow's latest ``workflow.run_started`` event. A
  run claims its log with compare-and-append at the next seq, so of two clusters that race
  for one workflow exactly one gets it (storage decides), and a takeover is a claim too.
* **until when**: the owner's expiry, in one small record per owner (a blob under the system
  log :data:`LEASES_LOG`, named by the owner), renewed by that owner while it drives
  anything. Only the owner ever writes its record, so a plain atomic put is enough.

Renewing per owner rather than per workflow makes the cost one write per renewal period per
cluster, whatever the number of workflows it drives (a per-workflow record would cost the
same write for each of them). A workflow is RUNNING while its owner's lease is live; once
the lease expired it is RESUMABLE and another cluster may claim it. An owner whose lease
might have expired (it could not renew in time) stops driving before others may take over
(see ``engine.runtime._lease``). As with every lease, this assumes clocks that agree to
well within the lease's duration.
"""

from __future__ import annotations

import socket
import time

import msgspec

from storage_backends import BlobNotFoundError, Storage, system_id

LEASES_LOG = system_id("leases")  # a system log: never listed as a workflow, no workflow id reaches it
# Where the engine before system logs kept them: still read, so that a workflow an engine of that
# version drives keeps its lease while a cluster running this one comes up beside it.
LEGACY_LEASES_LOG = "_leases"
DEFAULT_DURATION_S = 30.0


class Lease(msgspec.Struct, frozen=True):
    """One owner's lease: it drives its workflows until ``expires_at`` (Unix seconds)."""

    owner: str  # the lease holder: one manager of one cluster, for one storage
    cluster: str  # a label a person recognizes: the cluster's address
    application: str
    renewed_at: float
    expires_at: float
    duration_s: float = DEFAULT_DURATION_S
    # Where the owner sits: its cluster and named actor. A named actor is unique on its
    # cluster, so a new owner in the same seat knows the old one is gone, lease or not.
    seat: str = ""

    def live(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.expires_at

    def to_dict(self) -> dict[str, object]:
        """JSON-ready (times in Unix seconds)."""
        return {"owner": self.owner, "cluster": self.cluster, "application": self.application,
                "renewed_at": self.renewed_at, "expires_at": self.expires_at, "duration_s": self.duration_s,
                "seat": self.seat}

    def describe(self) -> str:
        left = self.expires_at - time.time()
        when = f"expires in {left:.0f}s" if left >= 0 else f"expired {-left:.0f}s ago"
        return f"owner {self.owner} ({self.cluster}), {when}"


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(Lease).decode


async def read_lease(storage: Storage, owner: str) -> Lease | None:
    """The owner's lease record, or None if it never wrote one (or it was removed)."""
    if not owner:
        return None
    for log_id in (LEASES_LOG, LEGACY_LEASES_LOG):
        try:
            return _decode(await storage.get_blob(log_id, owner))
        except BlobNotFoundError:
            continue
    return None


def in_force(lease: Lease | None, now: float | None = None) -> Lease | None:
    """``lease`` if it still holds: not expired, and its cluster not known to be gone."""
    if lease is None or not lease.live(now) or cluster_gone(lease):
        return None
    return lease


def cluster_gone(lease: Lease) -> bool:
    """True if the lease's cluster is certainly gone: its address is on this machine and nothing
    listens there any more (its GCS died, and with it every process of that cluster).

    So the common case, a driver whose own local cluster died with it, can be resumed at once
    rather than after the lease runs out. A cluster on another machine is never judged from
    here: unreachable is not gone (a network partition), so its lease must expire.
    """
    return address_gone(lease.cluster)


def address_gone(address: str) -> bool:
    """:func:`cluster_gone` of the cluster whose GCS is at ``address`` ("host:port")."""
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit() or not _is_local_address(host):
        return False
    try:
        socket.create_connection((host, int(port)), timeout=0.5).close()
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
    return False


def _is_local_address(host: str) -> bool:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))  # only an address of this machine can be bound
        return True
    except OSError:
        return False


async def write_lease(storage: Storage, lease: Lease) -> None:
    """Store the owner's lease (an atomic put: durable when this returns)."""
    await storage.put_blob(LEASES_LOG, lease.owner, _encode(lease))


async def read_leases(storage: Storage, owners) -> dict[str, Lease]:
    """The lease records of ``owners`` that have one (one read per distinct owner)."""
    found = {}
    for owner in dict.fromkeys(o for o in owners if o):
        lease = await read_lease(storage, owner)
        if lease is not None:
            found[owner] = lease
    return found
