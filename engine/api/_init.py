"""Process-wide engine configuration: which storage, which Ray cluster, which manager."""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

import ray

from replay import DEFAULT_SNAPSHOT_EVERY
from storage_backends import STORAGE_ENV_VAR, Storage

from .._names import MANAGER_PREFIX, NAMESPACE, manager_name, seat, shard_of
from ..exceptions import WorkflowError
from ..runtime._manager import DEFAULT_APPLICATION, ManagerConfig
from ..store import _index
from ..store._leases import DEFAULT_DURATION_S
from ..store._retention import as_retention
from ..store._spec import StorageSpec
from ..store._sync import run_sync, storage_for
from ._manager_client import start_manager
from ._handovers import HandOvers
from ._ray_cluster import start_or_join

APPLICATION_ENV_VAR = "RAY_DURABLE_APPLICATION"
MAX_SHARDS = 64
logger = logging.getLogger(__name__)


@dataclass
class EngineContext:
    spec: StorageSpec
    storage: Storage
    managers: list[Any]  # ActorHandles, one per shard (index = shard)
    gcs_address: str
    config: ManagerConfig  # shard 0's; a manager made here (also to replace a dead one) runs with it
    placement: dict[str, Any]
    # The limits the manager runs with (it may have been made by another driver, with its own).
    manager_limits: dict[str, int | None] = field(default_factory=dict)
    # What this process handed over without waiting, until it sees the claim (api/_handovers.py).
    handed_over: HandOvers = field(default_factory=HandOvers)
    # Each shard's manager as it described itself at init (owner, seat, application): what a
    # submission records as the manager it is handed to. A manager replaced later sits in the
    # same seat, which is what recovery goes by when the recorded owner is gone.
    manager_identities: list[dict[str, Any]] = field(default_factory=list)

    @property
    def storage_url(self) -> str:
        return self.spec.url

    @property
    def manager(self) -> Any:
        """Shard 0's manager: the only one unless ``init(shards=...)``."""
        return self.managers[0]

    @property
    def manager_name(self) -> str:
        return manager_name(self.spec.key)

    @property
    def seats(self) -> frozenset[str]:
        """The seats (``Lease.seat``) of this cluster's managers of this storage, every shard's."""
        return frozenset(seat(self.gcs_address, self.spec.key, i) for i in range(len(self.managers)))

    def shard_for(self, workflow_id: str) -> int:
        return shard_of(workflow_id, len(self.managers))

    def manager_for(self, workflow_id: str) -> Any:
        """The manager (shard) that drives ``workflow_id``."""
        return self.managers[self.shard_for(workflow_id)]


_lock = threading.Lock()
_context: EngineContext | None = None


def init(storage: str | Storage | None = None, *, storage_options: dict[str, Any] | None = None,
         max_running_workflows: int | None = None, max_pending_workflows: int | None = None,
         application: str | None = None, lease_duration: float | None = None, recover: bool = True,
         manager_options: dict[str, Any] | None = None, shards: int | None = None, retention: Any = None,
         snapshot_every: int | None = None, **ray_init_kwargs: Any) -> None:
    """Choose the storage and connect to (or start) Ray, as ``ray.workflow.init`` did.

    Args:
        storage: a path, ``file://PATH``, ``s3://BUCKET/PREFIX[?region=...&endpoint_override=...]``,
            a URL of a scheme registered with ``storage_backends.register_scheme``, or a
            ``storage_backends.Storage`` instance (picklable; see ``engine.store._spec``).
            Unset: the storage this process already uses, if ``init`` ran before; else
            ``$RAY_DURABLE_STORAGE`` if set; else the storage the manager already running on
            this Ray cluster serves (ray.workflow's storage was cluster-wide), said in an INFO
            log line; else ``/tmp/ray/workflow_data``.
        storage_options: backend options, e.g. ``{"endpoint_url": ...}`` for S3 (not with an instance).
        max_running_workflows: how many workflows run at once (-1 or None: no limit); more
            are PENDING, and start in submission order.
        max_pending_workflows: how many may be PENDING (-1 or None: no limit); beyond
            that, run raises WorkflowQueueFullError.
        application: the name this cluster runs workflows under (default
            ``$RAY_DURABLE_APPLICATION``, else "default"); recorded with each run. A manager
            that starts takes on the workflows of its application whose lease expired.
        lease_duration: seconds a cluster's lease on the workflows it drives lasts unrenewed
            (default 30); another cluster may take a workflow over only after it expired. It
            is renewed every third of that while the cluster drives anything.
        recover: False: the manager this call creates does not take on expired workflows at
            start (``resume_all`` still does, by hand).
        manager_options: where the manager actor may run, as Ray actor options: ``resources``,
            ``scheduling_strategy``, ``label_selector`` (e.g. to keep it off spot nodes).
        retention: finished workflows to delete in the background (see ``engine.Retention``):
            None (default: keep everything), a duration (``"30d"``, seconds, a ``timedelta``:
            delete SUCCESSFUL, CANCELED and FAILED workflows that ended that long ago), a dict of
            ``Retention``'s fields, or a ``Retention``. Applied by the manager every
            ``Retention.every`` (default 1 hour), as ``ray-durable gc`` would.
        snapshot_every: compaction: the manager stores a snapshot of a workflow's fold every
            this many events of its log (default 10,000; 0: never), so that loading a long log
            reads the snapshot and the events after it.
        shards: how many manager actors drive this storage's workflows on this cluster (default 1;
            at most 64). A workflow belongs to one shard by a hash of its id; each shard has its
            own lease, and the limits above apply per shard. With more than one, and no
            ``scheduling_strategy`` given, they are spread over the cluster's nodes (Ray's
            "SPREAD"), so throughput grows with nodes. None: as many as the cluster runs already.
            These settings apply to the managers the first ``init`` against a storage creates
            on a cluster (retention is applied by shard 0 alone).
        **ray_init_kwargs: passed to ``ray.init`` when Ray is not running yet. Ray is joined
            only where asked (``address=``, ``$RAY_ADDRESS``, ``"auto"``) or where the cluster
            ``ray start`` recorded is alive; otherwise a local Ray starts.

    Raises:
        TypeError: a limit that is not an int. ValueError: a limit out of range, or one that
            differs from what the storage's manager on this cluster already runs with (as
            2.47's re-init raised; None keeps the manager's); the same for ``shards``;
            storage_options with an instance.
        TypeError, ValueError: a ``retention`` or ``snapshot_every`` out of shape (the message
            says which field and what it takes).
        UnknownSchemeError, StorageURLError: (ValueErrors) a URL no backend can open (before Ray starts).
        TypeError: a storage instance that cannot travel to other processes.
        WorkflowError: no storage was given and managers of several storages run on this cluster.
        RayClusterUnreachableError: (a ``ConnectionError``) the cluster asked for does not
            answer; the message names the address and how to clear a stale record.
    """
    limits = _limits(max_running_workflows, max_pending_workflows)
    config = _manager_config(limits, application, lease_duration, recover, retention, snapshot_every)
    shards = _shards(shards)
    placement = _placement(manager_options)
    spec = _chosen_storage(storage, storage_options)  # bad URL or instance: fails before Ray starts
    start_or_join(ray_init_kwargs)  # a dead address is a clear error here, within seconds
    if spec is None:
        spec = cluster_storage() or StorageSpec.from_url(None)
    _connect(spec, config, placement, shards)


def _shards(shards: Any) -> int | None:
    if shards is None:
        return None
    if isinstance(shards, bool) or not isinstance(shards, int) or not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards must be an int from 1 to {MAX_SHARDS} (manager actors per storage), "
                         f"got {shards!r}")
    return shards


def _chosen_storage(storage: str | Storage | None, options: dict[str, Any] | None) -> StorageSpec | None:
    """The storage this driver asked for; None if it asked for none (then the cluster's is used)."""
    if isinstance(storage, Storage):
        if options:
            raise ValueError("storage_options go with a storage URL; a Storage instance is configured "
                             f"already (got {sorted(options)})")
        return StorageSpec.of(storage)
    if storage is not None and not isinstance(storage, str):
        raise TypeError(f"storage must be a URL (str) or a storage_backends.Storage instance, "
                        f"got {type(storage).__name__}: {storage!r}")
    if storage is not None or options:  # "" or spaces: an error, never the default in disguise
        return StorageSpec.from_url(storage, options)
    if _context is not None:  # init() again, say for the limits: same storage, as in ray.workflow
        return _context.spec
    if os.environ.get(STORAGE_ENV_VAR):
        return StorageSpec.from_url(None)
    return None


def cluster_storage() -> StorageSpec | None:
    """The storage the ray-durable manager on this cluster serves; None if no manager runs.

    Lists the named actors of the ``ray_durable`` namespace and asks each manager for its
    storage (one round trip, all at once): this runs on the first API call of a driver that
    gave no storage. Managers of another protocol (an older engine) are ignored.

    Raises:
        WorkflowError: managers of several storages run on this cluster: choose one with init(storage).
    """
    names = [actor["name"] for actor in ray.util.list_named_actors(all_namespaces=True)
             if actor["namespace"] == NAMESPACE and actor["name"].startswith(MANAGER_PREFIX)]
    asked = {}
    for name in names:
        try:
            asked[name] = ray.get_actor(name, namespace=NAMESPACE).storage_spec.remote()
        except (ValueError, AttributeError):  # gone meanwhile, or an older manager
            continue
    found: dict[str, StorageSpec] = {}
    for name, ref in asked.items():
        try:
            spec = ray.get(ref, timeout=60)
        except Exception:  # died meanwhile, or too busy to answer: not one to hand work to
            continue
        if isinstance(spec, StorageSpec) and manager_name(spec.key) == name:
            found[name] = spec
    if not found:
        return None
    if len(found) > 1:
        urls = ", ".join(sorted(spec.url for spec in found.values()))
        raise WorkflowError(f"ray-durable managers of {len(found)} storages run on this Ray cluster ({urls}); "
                            "call workflow.init(storage=...) to choose one")
    spec = next(iter(found.values()))
    logger.info("no storage given: using %s, the storage of the ray-durable manager already running on "
                "this Ray cluster (call workflow.init(storage=...) to choose another)", spec.url)
    return spec


def _connect(spec: StorageSpec, config: ManagerConfig, placement: dict[str, Any], shards: int | None) -> None:
    global _context
    store = storage_for(spec)
    run_sync(store.check())  # fail fast: a root that is a file, read-only storage, missing bucket
    run_sync(_index.ensure_current(store))  # a store of ray-durable 0.1: move its index now
    config = dataclasses.replace(config, shards=shards or 1)
    if config.shards > 1 and "scheduling_strategy" not in placement:
        placement = {**placement, "scheduling_strategy": "SPREAD"}  # one shard per node, if it can
    first = start_manager(spec, config, placement)
    settings = ray.get(first.settings.remote())  # (the shards may have been made by another driver)
    if config.limits:
        _check_same_limits(spec.url, config.limits, settings["limits"])
    if shards is not None and shards != settings["shards"]:
        raise ValueError(f"workflow.init was called with shards={shards}, but this cluster's managers for "
                         f"storage {spec.url} run with shards={settings['shards']}; pass the same (or None "
                         "to keep them), or use another storage")
    config = dataclasses.replace(config, shards=settings["shards"])
    managers = [first] + [start_manager(spec, config.for_shard(i), placement) for i in range(1, config.shards)]
    identities = [{k: d[k] for k in ("owner", "seat", "application")}
                  for d in ray.get([m.describe.remote() for m in managers])]
    with _lock:
        _context = EngineContext(spec, store, managers, ray.get_runtime_context().gcs_address, config,
                                 placement, settings["limits"], manager_identities=identities)


def _manager_config(limits: dict[str, int | None], application: str | None, lease_duration: Any,
                    recover: bool, retention: Any = None, snapshot_every: Any = None) -> ManagerConfig:
    application = application or os.environ.get(APPLICATION_ENV_VAR) or DEFAULT_APPLICATION
    if not isinstance(application, str) or not application.isprintable() or len(application) > 200:
        raise ValueError(f"application must be a printable str of at most 200 characters, got {application!r}")
    if lease_duration is None:
        lease_duration = DEFAULT_DURATION_S
    if isinstance(lease_duration, bool) or not isinstance(lease_duration, (int, float)) or not (
            1.0 <= lease_duration <= 86_400):
        raise ValueError(f"lease_duration must be a number of seconds from 1 to 86400, got {lease_duration!r}")
    if not isinstance(recover, bool):
        raise TypeError(f"recover must be True or False, got {recover!r}")
    if snapshot_every is None:
        snapshot_every = DEFAULT_SNAPSHOT_EVERY
    if isinstance(snapshot_every, bool) or not isinstance(snapshot_every, int) or snapshot_every < 0:
        raise ValueError(f"snapshot_every must be an int of 0 (no snapshots) or more (events between "
                         f"snapshots), got {snapshot_every!r}")
    return ManagerConfig(owner=f"m-{uuid.uuid4().hex[:16]}", application=application,
                         lease_duration_s=float(lease_duration), recover=recover, limits=limits,
                         snapshot_every=snapshot_every, retention=as_retention(retention))


_PLACEMENT_OPTIONS = ("resources", "scheduling_strategy", "label_selector")


def _placement(manager_options: dict[str, Any] | None) -> dict[str, Any]:
    options = dict(manager_options or {})
    unknown = sorted(set(options) - set(_PLACEMENT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown manager option(s) {', '.join(map(repr, unknown))}; "
                         f"valid ones are {', '.join(_PLACEMENT_OPTIONS)}")
    return options


def _limits(max_running: Any, max_pending: Any) -> dict[str, int | None]:
    """The queueing limits given, checked as 2.47 checked them; -1 (no limit) becomes None."""
    limits: dict[str, int | None] = {}
    for name, value, minimum in (("max_running_workflows", max_running, 1),
                                 ("max_pending_workflows", max_pending, 0)):
        if value is None:
            continue
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"{name} must be None or an int, got {type(value).__name__} {value!r}")
        if value != -1 and value < minimum:
            raise ValueError(f"{name} must be -1 (no limit) or an int >= {minimum}, got {value}")
        limits[name] = None if value == -1 else value
    return limits


def _check_same_limits(url: str, asked: dict[str, int | None], current: dict[str, int | None]) -> None:
    """A re-init may not change the limits the storage's manager runs with (2.47 refused too)."""
    if all(current[name] == value for name, value in asked.items()):
        return

    def show(values: dict[str, int | None]) -> str:
        return ", ".join(f"{k}={-1 if v is None else v}" for k, v in values.items())

    raise ValueError(
        f"workflow.init was called with {show(asked)}, but this cluster's manager for storage {url} "
        f"runs with {show(current)}; pass the same limits (or None to keep them), or use another storage")


def context() -> EngineContext:
    """The current context, initializing with defaults (as ray.workflow did) if needed."""
    if _context is None or not ray.is_initialized():
        init()  # (the storage this process already uses, if any)
    return _context
