"""Outputs a fork shares with the workflow that made them, and how a delete keeps them.

A fork (``workflow.fork``) does not copy the outputs it reuses: its ``task.forked`` events
point at the blobs where they are (``PayloadRef.log``, the *owner*: the workflow whose run
wrote them). Whoever deletes an owner must not take them away from a live fork, so:

* before a fork's log is written, the fork is *registered* in each owner's forks log (a system
  log, ``system:forks-<digest>``), with the names of the blobs it shares, by compare-and-append;
* ``delete`` of an owner first appends a ``closed`` record there (so no registration can slip
  in behind it), then **copies** each blob a registered fork shares into that fork's own blobs,
  and only then removes its log; a fork's reads try the owner first, then its own copy
  (:func:`engine.store._payloads.load_bytes`). Deleting a fork appends ``gone`` for it to its
  owners' forks logs, so a later delete of the owner copies nothing for it.

So a delete costs nothing extra for a workflow nobody forked (one small append), copies only
what live forks share, and is safe to run again after a crash: copies are idempotent, and a
fork of an owner whose delete was interrupted is refused until that delete is run again.
Anything else that removes an owner's output blobs (dropping a finished workflow's
intermediate outputs) calls :func:`hand_over` first, with ``reason="drop"``.
"""

from __future__ import annotations

import hashlib
import time

import msgspec

from storage_backends import AppendConflictError, Storage, system_id

from ..exceptions import WorkflowError

_ATTEMPTS = 20


class ForkRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str  # "fork" (registered), "gone" (that fork was deleted), "closed" (no more forks share)
    ts: float
    fork: str = ""
    blobs: list[str] = []  # the owner's blob names the fork shares
    reason: str = ""  # closed: "delete", or "drop" (the owner's intermediate outputs are dropped)


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(ForkRecord).decode


def forks_log_id(owner: str) -> str:
    """The system log listing the forks that share ``owner``'s outputs (ids may use 128 characters)."""
    return system_id("forks-" + hashlib.blake2b(owner.encode(), digest_size=16).hexdigest())


async def _records(storage: Storage, owner: str) -> tuple[int, list[ForkRecord]]:
    records = await storage.read_all(forks_log_id(owner))
    return (records[-1].seq + 1 if records else 0), [_decode(r.data) for r in records]


async def _append(storage: Storage, owner: str, record: ForkRecord, refuse_closed: bool) -> bool:
    """Compare-and-append ``record``; False (nothing written) if the log is closed and that is
    acceptable to the caller, else raise for a closed log."""
    for _ in range(_ATTEMPTS):
        seq, records = await _records(storage, owner)
        closed = next((r for r in records if r.kind == "closed"), None)
        if closed is not None:
            if not refuse_closed:
                return False
            if closed.reason == "drop":
                raise WorkflowError(
                    f"workflow {owner!r} dropped its intermediate outputs (keep='output'), so a fork cannot "
                    "reuse them; fork from an earlier workflow, or run the DAG anew")
            raise WorkflowError(
                f"workflow {owner!r}, whose outputs this fork would share, is being deleted (or a delete of it "
                f"was interrupted); run `ray-durable delete {owner}` again to finish it, then fork again")
        try:
            await storage.append(forks_log_id(owner), [_encode(record)], seq)
            return True
        except AppendConflictError:
            continue
    raise WorkflowError(f"could not register a fork of {owner!r}: its forks log kept changing; try again")


async def owner_of(storage: Storage, ref_log: str | None, source_id: str) -> str:
    """Whose blob a fork of ``source_id`` shares for an output ``source_id`` refers to.

    ``ref_log`` None is the source's own blob. A source that is itself a fork refers to its
    owner's; once that owner was deleted, its delete copied the blob into the source.
    """
    if ref_log is None or ref_log == source_id:
        return source_id
    if await storage.exists(ref_log):
        return ref_log
    return source_id


async def register(storage: Storage, owner: str, fork_id: str, blobs: list[str]) -> None:
    """Record that ``fork_id`` shares ``blobs`` of ``owner``, before the fork's log is written.

    Raises:
        WorkflowError: ``owner`` is being deleted (a registration now could lose the race).
    """
    await _append(storage, owner, ForkRecord(kind="fork", ts=time.time(), fork=fork_id, blobs=sorted(blobs)),
                  refuse_closed=True)


async def unregister(storage: Storage, owner: str, fork_id: str) -> None:
    """``fork_id`` no longer shares ``owner``'s outputs (it was deleted, or never written)."""
    if await storage.exists(forks_log_id(owner)):
        await _append(storage, owner, ForkRecord(kind="gone", ts=time.time(), fork=fork_id), refuse_closed=False)


async def hand_over(storage: Storage, owner: str, reason: str = "delete") -> dict[str, int]:
    """Before ``owner``'s blobs go: close its forks log and copy every blob a live fork shares
    into that fork. Returns ``{fork id: blobs shared}``. Safe to run again.

    Args:
        reason: "delete" (``owner`` is deleted), or "drop" (its intermediate outputs are dropped,
            ``keep="output"``): what a later fork of ``owner`` is told when it is refused.
    """
    while True:
        seq, records = await _records(storage, owner)
        if any(r.kind == "closed" for r in records):
            break
        closed = ForkRecord(kind="closed", ts=time.time(), reason=reason)
        try:
            await storage.append(forks_log_id(owner), [_encode(closed)], seq)
            records.append(closed)
            break
        except AppendConflictError:
            continue
    shared: dict[str, set[str]] = {}
    for record in records:
        if record.kind == "fork":
            shared.setdefault(record.fork, set()).update(record.blobs)
        elif record.kind == "gone":
            shared.pop(record.fork, None)
    copied = {}
    for fork_id, blobs in shared.items():
        for name in sorted(blobs):
            if not await storage.blob_exists(fork_id, name):
                await storage.put_blob(fork_id, name, await storage.get_blob(owner, name))
        copied[fork_id] = len(blobs)
    return copied


async def forget(storage: Storage, owner: str) -> None:
    """After ``owner``'s log is gone: its forks log goes too."""
    await storage.delete(forks_log_id(owner))
