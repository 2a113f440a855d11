"""The management actor: a named, detached async Ray actor per storage and cluster.

It owns every workflow being driven on this cluster (one asyncio task each), so "is anyone
here driving workflow X?" has one answer: ask it. Across clusters the lease answers
(``engine.store._leases``): claiming a workflow is an append to its log (WorkflowRunStarted at
the next seq, naming this manager as owner), made only while this manager's lease is held and
while no other owner's lease on it is live; so two clusters sharing a storage never both drive
one workflow.

It heals itself: Ray restarts it (``max_restarts=-1``) on a live node with the same
:class:`ManagerConfig`, so the same owner, and the new incarnation takes on at once every
workflow its predecessor drove. With ``recover`` (the default) a new manager also takes on the
workflows of its application whose owner's lease expired: a cluster that starts after a crash
or a ``ray stop`` picks up where the last one stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import time
from collections import OrderedDict
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import ray

from replay import (
    DEFAULT_SNAPSHOT_EVERY,
    WorkflowState,
    WorkflowStatus,
    WorkflowSubmitted,
    apply,
    decode_event,
    load_state,
)
from storage_backends import AppendConflictError, StorageError

from .._names import NAMESPACE, manager_name, seat, shard_of
from ..exceptions import (
    WorkflowCancellationError,
    WorkflowError,
    WorkflowNotResumableError,
    WorkflowQueueFullError,
    WorkflowRunningError,
)
from ..store._index import IndexWriter
from ..store._leases import DEFAULT_DURATION_S, read_lease
from ..store._outputs import output_from_state
from ..store._retention import Retention, collect
from ..store._spec import StorageSpec
from ._lease import LeaseKeeper
from ._recovery import Identity, expected_owner, find_orphans, held_elsewhere, orphaned, orphaned_at
from ._run import WorkflowRun
from ._storage_faults import storage_interruption

logger = logging.getLogger(__name__)
DEFAULT_APPLICATION = "default"
# How long a wait for output expects a hand-over that its driver sent (see wait_output): Ray
# delivers one in well under a second; minutes only on a manager buried in calls.
HANDOVER_WAIT_S = 60.0
_ARRIVALS_KEPT = 100_000  # ids of the latest hand-overs (a few MB at most)


@dataclass(frozen=True)
class ManagerConfig:
    """What the driver that creates a manager gives it; a restarted manager gets the same."""

    owner: str  # this manager's lease owner id (new for every manager, kept across restarts)
    application: str = DEFAULT_APPLICATION
    lease_duration_s: float = DEFAULT_DURATION_S
    recover: bool = True  # take on the expired workflows of this application at start
    limits: dict[str, int | None] = field(default_factory=dict)
    snapshot_every: int = DEFAULT_SNAPSHOT_EVERY  # compaction: events between snapshots (0: none)
    retention: Retention | None = None  # applied in the background by shard 0 (engine.store._retention)
    shards: int = 1  # manager actors per storage on the cluster; a workflow's is shard_of(id)
    shard: int = 0  # which of them this one is

    def for_shard(self, shard: int) -> ManagerConfig:
        """The config of shard ``shard`` of the managers this one belongs to: its own lease owner."""
        return dataclasses.replace(self, shard=shard, owner=self.owner if shard == 0 else f"{self.owner}.{shard}")

@ray.remote(num_cpus=0, max_concurrency=100_000)
class WorkflowManager:
    def __init__(self, spec: StorageSpec, config: ManagerConfig):
        # Runs poll finished outcomes with a ray.get of refs already known to be ready
        # (engine/_arrivals.py): it never blocks, so Ray's warning about blocking gets in
        # async actors would only mislead whoever reads this actor's log.
        os.environ["RAY_WARN_BLOCKING_GET_INSIDE_ASYNC"] = "0"
        # Everything alive now (Ray's and our modules) lives as long as this actor: moved out
        # of the collector's sight, a full collection takes ~5 ms instead of ~50 ms mid-run.
        gc.freeze()
        self.spec = spec
        self.storage_url = spec.url  # for messages
        self.config = config
        self.max_running = config.limits.get("max_running_workflows")
        self.max_pending = config.limits.get("max_pending_workflows")
        cluster = ray.get_runtime_context().gcs_address
        self.identity = Identity(config.owner, cluster, seat(cluster, spec.key, config.shard), config.application)
        self.name = manager_name(spec.key, config.shard)
        self._storage = None
        self._index = None
        self._lease: LeaseKeeper | None = None
        self.runs: dict[str, WorkflowRun] = {}
        self._claiming: set[str] = set()
        self._claim_waiters: dict[str, list[asyncio.Future]] = {}  # callers waiting out a claim
        self._finished: dict[str, WorkflowRun] = {}
        # Every workflow a start (or run) arrived for, latest last, whatever became of it
        # (queued, running, finished, refused): a wait that expects a hand-over (see
        # wait_output) ends once it is here. Bounded: ids only.
        self._arrived: OrderedDict[str, None] = OrderedDict()
        self._overdue_checks: set[str] = set()  # submissions handed here, awaited (_take_on_if_never_handed_over)
        self._queue: OrderedDict[str, asyncio.Future] = OrderedDict()  # PENDING, in submission order
        self._recovered = asyncio.Event()
        self._adopted: set[str] = set()  # being driven because this manager took them on by itself
        self._env_values: dict[str, dict] = {}  # queued workflow -> what its recorded runtime env left out
        self._retention_reports: list[dict] = []  # the latest retention passes that deleted anything
        # An async actor's constructor runs beside its event loop: take on orphans there.
        asyncio.get_event_loop().call_soon_threadsafe(lambda: asyncio.ensure_future(self._recover()))
        if config.retention is not None and config.shard == 0:  # one gc per storage and cluster
            asyncio.get_event_loop().call_soon_threadsafe(
                lambda: asyncio.ensure_future(self._apply_retention(config.retention)))

    def __repr__(self) -> str:
        # Ray prefixes this actor's log lines (on the driver's console too) with its repr.
        if self.config.shards > 1:
            return f"ray-durable manager of {self.storage_url}, shard {self.config.shard}/{self.config.shards}"
        return f"ray-durable manager of {self.storage_url}"

    @property
    def storage(self):
        if self._storage is None:
            self._storage = self.spec.open()
            self._index = IndexWriter(self._storage)
        return self._storage

    @property
    def lease(self) -> LeaseKeeper:
        if self._lease is None:
            me = self.identity
            self._lease = LeaseKeeper(self.storage, me.owner, me.cluster, me.seat, me.application,
                                      self.config.lease_duration_s, busy=self._busy, on_lost=self._fence)
        return self._lease

    def _busy(self) -> bool:
        return bool(self._claiming) or any(not run.result.done() for run in self.runs.values())

    async def _recover(self) -> None:
        """Take on this owner's workflows (a restart), its seat's predecessor's, and, with
        ``recover``, its application's whose lease expired, looking again whenever one of
        the leases it saw live on such a workflow expires. A submission handed here whose
        hand-over has not come yet is checked again alone once it is overdue. Calls that need
        a current view (start, wait_output) wait until the first claims are under way."""
        while True:
            next_look = None
            try:
                orphans, next_look, later = await find_orphans(self.storage, self.identity, self.config.recover)
                orphans = [wid for wid in orphans if self._mine(wid)]
                for workflow_id, at in later.items():
                    if self._mine(workflow_id) and workflow_id not in self._overdue_checks:
                        self._overdue_checks.add(workflow_id)
                        asyncio.ensure_future(self._take_on_if_never_handed_over(workflow_id, at))
                for workflow_id in orphans:
                    if self._live(workflow_id) is None:
                        self._claiming.add(workflow_id)  # live from now on, for callers that ask
                        self._adopted.add(workflow_id)  # (so a hand-over of it arriving now joins it)
                        asyncio.ensure_future(self._adopt(workflow_id))
                if orphans:
                    logger.info("manager %s takes on %d workflow(s): %s", self.identity.owner,
                                len(orphans), ", ".join(orphans[:20]))
            except Exception:
                logger.exception("finding the workflows to take on failed; `ray-durable resume-all` "
                                 "resumes them by hand")
            finally:
                self._recovered.set()
            if next_look is None:
                return
            await asyncio.sleep(max(0.2, next_look - time.time() + 0.2))

    async def _take_on_if_never_handed_over(self, workflow_id: str, overdue_at: float) -> None:
        """A submission handed to this manager, seen before its hand-over came: taken on at
        ``overdue_at`` if the hand-over has not come by then (its driver died first)."""
        try:
            await asyncio.sleep(max(0.0, overdue_at - time.time()))
            if workflow_id in self._arrived or self._live(workflow_id) is not None:
                return
            state = await load_state(self.storage, workflow_id)
            owner, _application = expected_owner(state)
            lease = await read_lease(self.storage, owner)
            if self._live(workflow_id) is None and workflow_id not in self._arrived and orphaned(
                    state, lease, self.identity, self.config.recover):
                logger.info("manager %s takes on %s: its hand-over never came", self.identity.owner, workflow_id)
                self._claiming.add(workflow_id)
                self._adopted.add(workflow_id)
                await self._adopt(workflow_id)
        except Exception:
            logger.exception("taking on %s, whose hand-over never came, failed; `ray-durable resume %s` "
                             "runs it", workflow_id, workflow_id)
        finally:
            self._overdue_checks.discard(workflow_id)

    async def _adopt(self, workflow_id: str) -> bool:
        """Take on an orphan (the caller put it in ``_claiming``); False if that failed. One
        never claimed (PENDING) waits for a slot under ``max_running``, as its hand-over would
        have; a RUNNING one is claimed at once."""
        self._adopted.add(workflow_id)
        try:
            try:  # (read only when the limit may be reached: _launch reads the log anyway)
                pending = self._full() and (await load_state(self.storage, workflow_id)).status is WorkflowStatus.PENDING
            finally:
                self._unclaim(workflow_id)
            if pending and self._full() and workflow_id not in self._queue:
                self._enqueue(workflow_id, None)
                self._drain_queue()  # (the other orphans' claims, counted just now, may be over)
                return True
            await self._launch(workflow_id)
            return True
        except WorkflowError as exc:  # e.g. another cluster claimed it first
            self._adopted.discard(workflow_id)
            logger.warning("not taking on %s: %s", workflow_id, exc)
        except Exception:
            self._adopted.discard(workflow_id)
            logger.exception("taking on %s failed", workflow_id)
        return False

    async def _apply_retention(self, policy: Retention) -> None:
        """``init(retention=...)``: a gc pass every ``policy.every`` seconds, for as long as this manager
        lives (every manager of a storage may run one: a gc is safe beside another)."""
        await self._recovered.wait()
        while True:
            try:
                report = await collect(self.storage, policy.statuses, policy.older_than, policy.keep_output)
                for item in report.items:
                    logger.info("retention: %s %s (%s; %d blob(s), %d bytes)", item.action, item.workflow_id,
                                item.status or "a delete cut short", len(item.blobs), item.bytes)
                if report.items:
                    self._retention_reports = [*self._retention_reports[-9:], {"at": time.time(), **report.to_dict()}]
            except Exception:
                logger.exception("a retention pass failed; the next one tries again in %.0fs", policy.every)
            await asyncio.sleep(policy.every)

    def retention_reports(self) -> list[dict]:
        """What the latest (up to 10) retention passes that deleted anything deleted, oldest first:
        ``GcReport.to_dict()`` plus ``at`` (Unix seconds). Empty without ``init(retention=...)``."""
        return list(self._retention_reports)

    def _mine(self, workflow_id: str) -> bool:
        """Whether this shard drives ``workflow_id`` (always, with one shard)."""
        return shard_of(workflow_id, self.config.shards) == self.config.shard

    def _fence(self, reason: str) -> None:
        """The lease may have lapsed: stop every run before another cluster may take one over."""
        logger.error("manager %s stops its %d run(s): %s", self.identity.owner, len(self.runs), reason)
        for run in list(self.runs.values()):
            run.fence(reason)

    def describe(self) -> dict[str, Any]:
        """Who and where this manager is: lease owner, cluster, seat, application, node id, pid."""
        me = self.identity
        return {"owner": me.owner, "cluster": me.cluster, "seat": me.seat, "application": me.application,
                "node_id": ray.get_runtime_context().get_node_id(), "pid": os.getpid(),
                "lease_duration_s": self.config.lease_duration_s,
                "shard": self.config.shard, "shards": self.config.shards,
                "lease_writes": self._lease.writes if self._lease is not None else 0}

    def storage_spec(self) -> StorageSpec:
        """The storage this manager serves: how a driver that gave none finds the cluster's."""
        return self.spec

    def limits(self) -> dict[str, int | None]:
        """The queueing limits this manager runs with (None: no limit); per shard, with shards."""
        return {"max_running_workflows": self.max_running, "max_pending_workflows": self.max_pending}

    def settings(self) -> dict[str, Any]:
        """What a driver joining this cluster must agree with: ``limits`` and ``shards``."""
        return {"limits": self.limits(), "shards": self.config.shards}

    async def start(self, workflow_id: str, submission: bytes | None = None,
                    env_values: dict | None = None, tail: bytes | None = None,
                    written: bool = True) -> str:
        """Claim and start driving a workflow, or queue it if ``max_running`` are running.

        Args:
            submission: the record a driver has just appended at seq 0 of a new workflow.
                Folded instead of reading the log back; if anything was appended after
                it meanwhile, the claim's append at seq 1 conflicts.
            written: False when the driver has not appended ``submission`` (``workflow.run``,
                which waits for the output anyway): it goes into the claim's own append, at
                seq 0, so a new workflow costs one append less (on S3 a PUT and a HEAD). If the
                id already has a log, that append conflicts and nothing is written
                (:class:`SubmissionConflict`: the driver resumes the workflow instead).
            env_values: what the recorded runtime env leaves out (env var values, URL
                credentials), from the driver's job: the run's tasks get them, the log never.
            tail: what the driver's storage knew of the new log's tail after appending
                ``submission`` (``Storage.tail_token``): the claim appends after it without
                looking the tail up (on S3, a LIST and a GET fewer).

        Returns:
            "started", "queued", or "finished" (it had already succeeded).

        Raises:
            WorkflowRunningError: it is being driven, here or (per its log) by another driver.
            WorkflowNotResumableError: it does not exist or was canceled.
            WorkflowQueueFullError: ``max_pending`` workflows are already queued.
            SubmissionConflict: ``written`` is False and the id already has a log.
        """
        self._arrived[workflow_id] = None  # (before any await: see _hand_over_arrives)
        while len(self._arrived) > _ARRIVALS_KEPT:
            self._arrived.popitem(last=False)
        await self._recovered.wait()
        state = _submitted_state(workflow_id, submission)
        if not written:
            return await self._start_new(workflow_id, submission, state, env_values)
        if self._live(workflow_id) is not None:
            if workflow_id in self._adopted:
                return "started"  # taken on by itself after a crash: a resume joins it
            raise WorkflowRunningError(workflow_id)
        if state is not None:
            self.storage.learn_tail(workflow_id, tail)
        if state is None:
            state = await load_state(self.storage, workflow_id)
            await self._refuse_if_held_elsewhere(workflow_id, state)
        if state.status is None:
            raise WorkflowNotResumableError(workflow_id, "it does not exist")
        if state.status is WorkflowStatus.CANCELED:
            raise WorkflowNotResumableError(workflow_id, "it was canceled")
        if state.status is WorkflowStatus.SUCCESSFUL:
            return "finished"
        if self._live(workflow_id) is not None:  # claimed while we read the log
            if workflow_id in self._adopted:
                return "started"
            raise WorkflowRunningError(workflow_id)
        if self._full():
            if self.max_pending is not None and len(self._queue) >= self.max_pending:
                raise WorkflowQueueFullError(workflow_id, self.max_pending)
            self._enqueue(workflow_id, env_values)
            return "queued"
        try:
            await self._launch(workflow_id, state, env_values)
        except _ClaimConflict:
            if submission is None:
                raise
            # The record was not the whole log: e.g. a retried call, after the first went
            # further before this manager restarted. Look at the log itself.
            return await self.start(workflow_id, None, env_values)
        return "started"

    async def _start_new(self, workflow_id: str, submission: bytes, state: WorkflowState | None,
                         env_values: dict | None) -> str:
        """:meth:`start` of a submission nobody has appended yet: written with the claim (or,
        to be queued, alone), at seq 0 of a log that must not exist."""
        if state is None:
            raise ValueError(f"the submission handed over for workflow {workflow_id!r} is not "
                             "a workflow.submitted event of that id")
        if self._live(workflow_id) is not None:
            raise SubmissionConflict(workflow_id)
        if self._full():
            try:
                if self.max_pending is not None and len(self._queue) >= self.max_pending:
                    if await self.storage.exists(workflow_id):  # a resume, which may need no slot
                        raise SubmissionConflict(workflow_id)
                    raise WorkflowQueueFullError(workflow_id, self.max_pending)  # nothing written
                await self.storage.append(workflow_id, [submission], 0)
            except AppendConflictError:
                raise SubmissionConflict(workflow_id) from None
            except StorageError as exc:
                raise SubmissionNotStored(workflow_id, exc) from None
            return await self.start(workflow_id, submission, env_values)
        try:
            await self._launch(workflow_id, state, env_values, unwritten=submission)
        except _ClaimConflict:
            raise SubmissionConflict(workflow_id) from None
        return "started"

    async def _refuse_if_held_elsewhere(self, workflow_id: str, state: WorkflowState) -> None:
        if state.status is WorkflowStatus.RUNNING and state.owner and state.owner != self.identity.owner:
            lease = await read_lease(self.storage, state.owner)
            if held_elsewhere(state, lease, self.identity):
                raise WorkflowRunningError(workflow_id, f"another cluster drives it: {lease.describe()}")

    def _active(self) -> int:
        return len(self._claiming) + sum(1 for run in self.runs.values() if not run.finished)

    def _full(self) -> bool:
        return self.max_running is not None and self._active() >= self.max_running

    async def _launch(self, workflow_id: str, state: WorkflowState | None = None,
                      env_values: dict | None = None, unwritten: bytes | None = None) -> None:
        """Claim and start ``workflow_id`` (``state`` folded from its log, else read here).

        Args:
            unwritten: the submission record ``state`` was folded from, if nobody appended it
                yet: the claim's append writes it first, at seq 0.
        """
        self._claiming.add(workflow_id)
        try:
            if state is None:
                state = await load_state(self.storage, workflow_id)
                await self._refuse_if_held_elsewhere(workflow_id, state)
            run = WorkflowRun(self.storage, self.spec, state, self.name, index=self._index,
                              owner=self.identity, env_values=env_values,
                              snapshot_every=self.config.snapshot_every,
                              unwritten=[unwritten] if unwritten is not None else ())
            try:
                await self.lease.ensure()  # held before the claim names this manager as owner
                await run.start()
            except AppendConflictError:
                raise _ClaimConflict(
                    workflow_id, "another driver appended to its log first (it is running elsewhere)"
                ) from None
            except StorageError as exc:  # the lease or the claim could not be written: nothing was
                if unwritten is not None:  # nor the submission: there is no workflow to resume
                    raise SubmissionNotStored(workflow_id, exc) from None
                raise storage_interruption(workflow_id, exc) or exc
            if not run.result.done():
                self.runs[workflow_id] = run
                run.result.add_done_callback(lambda _f: self._forget(workflow_id, run))
            else:
                self._finished[workflow_id] = run  # finished during start; keep its answer briefly
        finally:
            self._unclaim(workflow_id)
            self._drain_queue()

    def _unclaim(self, workflow_id: str) -> None:
        self._claiming.discard(workflow_id)
        for waiter in self._claim_waiters.pop(workflow_id, ()):
            if not waiter.done():
                waiter.set_result(None)

    async def _claimed(self, workflow_id: str) -> None:
        """Return once no claim of the workflow is under way here (it started, or failed to)."""
        while workflow_id in self._claiming:
            waiter = asyncio.get_running_loop().create_future()
            self._claim_waiters.setdefault(workflow_id, []).append(waiter)
            await waiter

    def _forget(self, workflow_id: str, run: WorkflowRun) -> None:
        if self.runs.get(workflow_id) is run:
            del self.runs[workflow_id]
            self._adopted.discard(workflow_id)
        self._drain_queue()

    def _enqueue(self, workflow_id: str, env_values: dict | None) -> None:
        self._queue[workflow_id] = asyncio.get_running_loop().create_future()
        self._queue[workflow_id].add_done_callback(lambda f: f.cancelled() or f.exception())
        self._env_values[workflow_id] = env_values or {}

    def _drain_queue(self) -> None:
        while self._queue and not self._full():
            workflow_id, started = self._queue.popitem(last=False)
            self._claiming.add(workflow_id)  # counts against max_running from now on
            asyncio.ensure_future(self._launch_queued(workflow_id, started))

    async def _launch_queued(self, workflow_id: str, started: asyncio.Future) -> None:
        self._unclaim(workflow_id)
        try:
            await self._launch(workflow_id, env_values=self._env_values.pop(workflow_id, None))
        except BaseException as exc:
            if not started.done():
                started.set_exception(exc)
            return
        if not started.done():
            started.set_result(None)

    async def run(self, workflow_id: str, submission: bytes | None = None,
                  env_values: dict | None = None, tail: bytes | None = None, written: bool = True) -> Any:
        """:meth:`start` then :meth:`wait_output`, in one call from the driver (``workflow.run``,
        and ``run_async`` without a ``max_pending_workflows`` limit)."""
        await self.start(workflow_id, submission, env_values, tail, written)
        return await self.wait_output(workflow_id)

    async def wait_output(self, workflow_id: str, task_id: str | None = None, expect_start: bool = False) -> Any:
        """The workflow's (or a task's) output, once the workflow ended.

        Awaited while it is queued or running here. While another cluster's lease holds it,
        its log is polled (that cluster's manager cannot be asked). An orphan (its owner is
        gone and this manager may take it on: see engine/runtime/_recovery.py), or a
        submission handed to this manager whose hand-over never came (its driver died first),
        is taken on here and then awaited. Otherwise the log says why there is no output.

        Args:
            expect_start: the caller handed this workflow over without waiting
                (``run_async``) and its log shows no claim yet: Ray may deliver this call
                first, so the hand-over is awaited (up to ``HANDOVER_WAIT_S``) before the log
                is taken to mean that nobody runs it.
        """
        await self._recovered.wait()
        delay = 0.1
        while True:
            queued = self._queue.get(workflow_id)
            if queued is not None:
                await asyncio.shield(queued)
            await self._claimed(workflow_id)
            run = self.runs.get(workflow_id) or self._finished.pop(workflow_id, None)
            if run is not None:
                result = run.result
                # An error raised here keeps this frame alive in its traceback, and the run holds
                # that error: a cycle that would keep the whole run (its ObjectRefs too) until the
                # collector's next full pass. So the frame must not hold the run.
                del run
                try:
                    value = await asyncio.shield(result)
                except WorkflowError:
                    if task_id is None:
                        raise
                else:
                    if task_id is None:
                        return value
            state = await load_state(self.storage, workflow_id)
            if expect_start and state.status is WorkflowStatus.PENDING and await self._hand_over_arrives(workflow_id):
                expect_start = False
                continue
            owner, _application = expected_owner(state)  # (a PENDING one's: its submission's manager)
            if owner and self._live(workflow_id) is None:
                lease = await read_lease(self.storage, owner)
                when = orphaned_at(state, lease, self.identity, adopt_expired=True)
                if held_elsewhere(state, lease, self.identity) or (when is not None and when > time.time()):
                    await asyncio.sleep(delay)  # held, or a hand-over to here may still come
                    delay = min(delay * 2, 2.0)
                    continue
                if when is not None:
                    self._claiming.add(workflow_id)
                    if await self._adopt(workflow_id):
                        continue
                    state = await load_state(self.storage, workflow_id)
            return await output_from_state(self.storage, workflow_id, state, task_id)

    async def _hand_over_arrives(self, workflow_id: str) -> bool:
        """True once a start of ``workflow_id`` got here, whatever became of it (queued,
        running, finished already, refused); False if none did within ``HANDOVER_WAIT_S``."""
        loop = asyncio.get_running_loop()
        deadline, delay = loop.time() + HANDOVER_WAIT_S, 0.005
        while True:
            if workflow_id in self._arrived:
                return True
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    def task_started(self, workflow_id: str, run_id: str, task_id: str, attempt: int,
                     ts: float, pid: int, node: str) -> None:
        run = self.runs.get(workflow_id)
        if run is not None and run.run_id == run_id:
            run.on_started(task_id, attempt, ts, pid, node)

    def notify_event(self, workflow_id: str) -> None:
        """A sender put an event in the workflow's mailbox: its open waits look now (else they
        see it at their next poll)."""
        if not self._mine(workflow_id):  # a sender that does not know the shards asks shard 0
            shard = shard_of(workflow_id, self.config.shards)
            with contextlib.suppress(Exception):  # (a nudge: the wait polls anyway)
                ray.get_actor(manager_name(self.spec.key, shard), namespace=NAMESPACE).notify_event.remote(workflow_id)
            return
        run = self.runs.get(workflow_id)
        if run is not None:
            run.waits.notify()

    async def live_status(self, workflow_id: str, expect_start: bool = False) -> str | None:
        """"RUNNING" if driven here, "PENDING" if queued here, None if this manager does not hold
        it (asked once the workflows it takes on at start are under way). ``expect_start``: as
        for :meth:`wait_output`, a hand-over the caller sent is awaited first."""
        await self._recovered.wait()
        if expect_start and self._live(workflow_id) is None:
            await self._hand_over_arrives(workflow_id)
        return self._live(workflow_id)

    def _live(self, workflow_id: str) -> str | None:
        if workflow_id in self._queue:
            return "PENDING"
        run = self.runs.get(workflow_id)
        # Until its result is set, not just until it stops running tasks: a run that has
        # finished is still appending its final events, and a caller told "not running here"
        # reads the log next, which must then hold the end.
        if workflow_id in self._claiming or (run is not None and not run.result.done()):
            return "RUNNING"
        return None

    async def live_statuses(self) -> dict[str, str]:
        """live_status of every workflow this manager holds."""
        await self._recovered.wait()
        live = {wid: "PENDING" for wid in self._queue}
        live.update((wid, "RUNNING") for wid in self._claiming)
        live.update((wid, "RUNNING") for wid, run in self.runs.items() if not run.result.done())
        return live

    async def cancel(self, workflow_id: str) -> bool:
        """Cancel a workflow driven here (True); False if this manager is not driving it.

        A queued workflow is taken off the queue (False: the caller records the cancel).
        """
        queued = self._queue.pop(workflow_id, None)
        self._env_values.pop(workflow_id, None)
        if queued is not None:
            queued.set_exception(WorkflowCancellationError(workflow_id))
            return False
        # A claim under way (run_async hands over without waiting for it): cancel the run it
        # starts, rather than race its claim with a cancel appended to the log from outside.
        await self._claimed(workflow_id)
        run = self.runs.get(workflow_id)
        if run is None or run.finished:
            return False
        await run.cancel()
        self.runs.pop(workflow_id, None)
        return True


class _ClaimConflict(WorkflowRunningError):
    """The claim's append lost: the log had grown past the state the claim was made on."""


class SubmissionConflict(WorkflowError):
    """A submission handed over unwritten (``start(..., written=False)``) found its id taken:
    nothing was written. The driver resumes that workflow instead, as ray.workflow 2.47's
    ``run`` of an existing id did."""

    def __init__(self, workflow_id: str):
        super().__init__(f"workflow {workflow_id!r} already exists")
        self.workflow_id = workflow_id

    def __reduce__(self):
        return type(self), (self.workflow_id,)


class SubmissionNotStored(WorkflowError):
    """A submission handed over unwritten could not be stored: the storage failed (``error``, the
    storage's own error) before or in the append at seq 0, so there is no workflow to resume. The
    driver raises ``error``, as its own append of the submission would have."""

    def __init__(self, workflow_id: str, error: BaseException):
        super().__init__(f"the submission of workflow {workflow_id!r} was not stored: {error}")
        self.workflow_id = workflow_id
        self.error = error

    def __reduce__(self):
        return type(self), (self.workflow_id, self.error)


def _submitted_state(workflow_id: str, submission: bytes | None) -> WorkflowState | None:
    """The fold of a new workflow's log holding only ``submission``; None if that is not what it is."""
    if submission is None:
        return None
    event = decode_event(submission)
    if not isinstance(event, WorkflowSubmitted) or event.workflow_id != workflow_id:
        return None  # not a submission of this workflow: read the log instead
    return apply(WorkflowState(), event, 0)
