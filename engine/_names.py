"""Names every part of the engine shares: the Ray namespace, the manager's and the listener
actor's names, workflow ids.

Below everything else in ``engine`` (it imports nothing of ours), so the API, the runtime and
the workers can all find the manager without importing one another.
"""

from __future__ import annotations

import functools
import hashlib
import zlib

from storage_backends import InvalidIdError, is_system_id, validate_log_id

NAMESPACE = "ray_durable"


# Bumped whenever what the manager must do for other code to stay correct changes, so that a
# driver never hands work to a detached manager still running an older engine on its cluster.
# 2: claim a FAILED workflow in the status index before resuming or canceling it.
# 3: start and run take the submission record a driver has just written.
# 4: a ManagerConfig (limits, lease owner); continuations renamed in the actor; task.caught; leases.
# 5: opened from a StorageSpec (the pickled storage), named by its key, answers storage_spec();
#    the status index and the leases live in system logs (system:status_index, system:leases).
# 6: timers and event waits (notify_event; the listener actor); start and run take the
#    runtime env values the log does not record (secrets).
# 7: manager shards (a workflow's shard by its id; settings()); start and run take the new
#    log's tail token; run_async hands over with run, without waiting.
# 8: forks: a log may start with task.forked events (completions taken over from another
#    workflow) and a PayloadRef may name another workflow's blob (PayloadRef.log); an older
#    manager would misread such a log, so it must never be handed one.
# 9: retention in the manager (ManagerConfig), workflow.snapshot events and snapshot blobs
#    (compaction), keep="output" in the submission: an older manager would ignore all three.
# 10: live_status / wait_output take expect_start (a run_async hand-over may come after them).
# 11: start / run take written=False (workflow.run): the manager appends the submission with
#     its claim; an older manager would claim a log that does not exist.
PROTOCOL = 11
MANAGER_PREFIX = "ray-durable-manager-"


@functools.lru_cache(maxsize=256)
def manager_name(storage_key: str, shard: int = 0) -> str:
    """The name (in :data:`NAMESPACE`) of a storage's (``StorageSpec.key``) manager actor, or
    of its shard ``shard`` (shard 0 keeps the name a single manager has)."""
    key = f"{storage_key}\nprotocol {PROTOCOL}"
    name = MANAGER_PREFIX + hashlib.sha1(key.encode()).hexdigest()[:16]
    return name if shard == 0 else f"{name}-shard-{shard}"


def seat(gcs_address: str, storage_key: str, shard: int = 0) -> str:
    """Where a storage's (``StorageSpec.key``) manager, or its shard, sits on the cluster at
    ``gcs_address`` (see Lease.seat)."""
    return f"{gcs_address}/{manager_name(storage_key, shard)}"


def shard_of(workflow_id: str, shards: int) -> int:
    """The manager shard (0 .. shards-1) that drives ``workflow_id``: by a stable hash of the
    id, the same in every process and Python version."""
    return zlib.crc32(workflow_id.encode()) % shards if shards > 1 else 0


def validate_workflow_id(workflow_id: object) -> str:
    """A storage-safe workflow id: letters, digits, '.', '_', '-', not starting with '.' or '-'.

    A leading '_' is fine (ray.workflow accepted ids like ``__function_chain_test``);
    ``system:<name>`` ids are the engine's own logs and are refused.

    Raises:
        InvalidIdError: (a ValueError) the id is not a str, is empty, too long, or unsafe as a file
            or key name, or it is a system log's id.
    """
    workflow_id = validate_log_id(workflow_id)
    if is_system_id(workflow_id):
        raise InvalidIdError(f"workflow id {workflow_id!r} is reserved: 'system:...' ids are "
                             "ray-durable's own logs; use letters, digits, '.', '_' and '-'")
    return workflow_id


def listener_host_name() -> str:
    """The shared actor that runs event listeners' polls (one per cluster and protocol)."""
    return f"ray-durable-listeners-p{PROTOCOL}"


HTTP_EVENT_PROVIDER_NAME = "WorkflowHttpEventProvider"  # the Serve application, as 2.47 named it
HTTP_EVENT_ROUTE_PREFIX = "/event"  # so the endpoint is 2.47's POST /event/send_event/{workflow_id}
