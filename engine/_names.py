"""Names every part of the engine shares: the Ray namespace and the manager actor's name.

Below everything else in ``engine`` (it imports nothing of ours), so the API, the runtime and
the workers can all find the manager without importing one another.
"""

from __future__ import annotations

import functools
import hashlib

NAMESPACE = "ray_durable"


# Bumped whenever what the manager must do for other code to stay correct changes, so that a
# driver never hands work to a detached manager still running an older engine on its cluster.
# 2: claim a FAILED workflow in the status index before resuming or canceling it.
# 3: start and run take the submission record a driver has just written.
# 4: opened from a StorageSpec (the pickled storage), named by its key, answers storage_spec();
#    the status index lives at system:status_index.
PROTOCOL = 4
MANAGER_PREFIX = "ray-durable-manager-"


@functools.lru_cache(maxsize=64)
def manager_name(storage_key: str) -> str:
    """The manager actor's name (in :data:`NAMESPACE`) for a storage (``StorageSpec.key``)."""
    key = f"{storage_key}\nprotocol {PROTOCOL}"
    return MANAGER_PREFIX + hashlib.sha1(key.encode()).hexdigest()[:16]
