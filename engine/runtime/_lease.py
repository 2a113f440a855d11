"""Holding this manager's lease: written before a claim, renewed while it drives, given up in time.

The manager drives workflows only while its lease (``engine.store._leases``) is live. It
writes the lease before its first claim and renews it every third of its duration while any
run is active. If renewing fails until the lease might look expired to other clusters (a
sixth of the duration before ``expires_at``, for clock skew), it *fences itself*: it stops
every run, so nobody else can take over a workflow this manager still drives. An idle
manager writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..store._leases import Lease, write_lease

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """The lease of one owner (this manager) in one storage.

    Args:
        busy: True while the owner drives something (then the lease is renewed).
        on_lost: called once the lease may have lapsed; it must stop every run.
    """

    def __init__(self, storage, owner: str, cluster: str, seat: str, application: str, duration_s: float,
                 busy: Callable[[], bool], on_lost: Callable[[str], None]):
        self.storage = storage
        self.owner = owner
        self.cluster = cluster
        self.seat = seat
        self.application = application
        self.duration_s = duration_s
        self._busy = busy
        self._on_lost = on_lost
        self.expires_at = 0.0  # of the last lease written (Unix seconds)
        self.writes = 0  # lease writes so far (benchmarks/recovery.py reports the rate)
        self._renewer: asyncio.Task | None = None
        self._writing: asyncio.Future | None = None

    @property
    def margin_s(self) -> float:
        return self.duration_s / 6

    def held(self, now: float | None = None) -> bool:
        """True while the lease is ours with the safety margin left."""
        return (time.time() if now is None else now) < self.expires_at - self.margin_s

    async def ensure(self) -> None:
        """Before a claim: the lease is durable and good for at least half its duration.

        Raises:
            the storage's error if the lease cannot be written (then nothing may be claimed).
        """
        if time.time() > self.expires_at - self.duration_s / 2:
            await self._write()
        if self._renewer is None or self._renewer.done():
            self._renewer = asyncio.ensure_future(self._renew())

    async def _write(self) -> None:
        if self._writing is not None:  # one write at a time; callers share it
            await asyncio.shield(self._writing)
            return
        self._writing = asyncio.ensure_future(self._put())
        try:
            await asyncio.shield(self._writing)
        finally:
            self._writing = None

    async def _put(self) -> None:
        now = time.time()
        lease = Lease(self.owner, self.cluster, self.application, now, now + self.duration_s, self.duration_s,
                      self.seat)
        await write_lease(self.storage, lease)
        self.expires_at = lease.expires_at
        self.writes += 1

    async def _renew(self) -> None:
        """Renew while busy; fence when the lease may have lapsed."""
        while self._busy():
            await asyncio.sleep(min(self.duration_s / 3, max(0.0, self.expires_at - self.margin_s - time.time())))
            if not self._busy():
                return
            if not self.held():  # the loop stalled past the margin: others may take over now
                self._on_lost("its lease lapsed before it could be renewed (this process stalled)")
                return
            try:
                await self._write()
                continue
            except Exception as exc:  # storage down: keep trying until the margin is reached
                if self.held():
                    logger.warning("renewing the lease of %s failed (%s: %s); retrying", self.owner,
                                   type(exc).__name__, exc)
                    await asyncio.sleep(min(1.0, self.duration_s / 10))
                    continue
                reason = f"its lease could not be renewed in time ({type(exc).__name__}: {exc})"
            self._on_lost(reason)
            return
