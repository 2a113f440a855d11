"""Names every part of the engine shares: the Ray namespace, the manager's and the listener
actor's names, workflow ids.

Below everything else in ``engine`` (it imports nothing of ours), so the API, the runtime and
the workers can all find the manager without importing one another.
"""

from __future__ import annotations

import functools
import hashlib

from storage_backends import InvalidIdError, validate_log_id

NAMESPACE = "ray_durable"


# Bumped whenever what the manager must do for other code to stay correct changes, so that a
# driver never hands work to a detached manager still running an older engine on its cluster.
# 2: claim a FAILED workflow in the status index before resuming or canceling it.
# 3: start and run take the submission record a driver has just written.
# 4: a ManagerConfig (limits, lease owner); continuations renamed in the actor; task.caught; leases.
# 5: timers and event waits (notify_event; the listener actor).
PROTOCOL = 5


@functools.lru_cache(maxsize=64)
def manager_name(storage_url: str) -> str:
    key = f"{storage_url}\nprotocol {PROTOCOL}"
    return "ray-durable-manager-" + hashlib.sha1(key.encode()).hexdigest()[:16]


def seat(gcs_address: str, storage_url: str) -> str:
    """Where the manager for ``storage_url`` sits on the cluster at ``gcs_address`` (see Lease.seat)."""
    return f"{gcs_address}/{manager_name(storage_url)}"


def validate_workflow_id(workflow_id: object) -> str:
    """A storage-safe id that is not one of the reserved system names (leading '_')."""
    workflow_id = validate_log_id(workflow_id)
    if workflow_id.startswith("_"):
        raise InvalidIdError(f"workflow id {workflow_id!r} is reserved: ids starting with '_' are "
                             "ray-durable's own system logs; start it with a letter or digit")
    return workflow_id


def listener_host_name() -> str:
    """The shared actor that runs event listeners' polls (one per cluster and protocol)."""
    return f"ray-durable-listeners-p{PROTOCOL}"


HTTP_EVENT_PROVIDER_NAME = "WorkflowHttpEventProvider"  # the Serve application, as 2.47 named it
HTTP_EVENT_ROUTE_PREFIX = "/event"  # so the endpoint is 2.47's POST /event/send_event/{workflow_id}
