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
# 4: queueing limits as one dict; continuations renamed in the actor; task.caught.
# 5: start and run take the runtime env values the log does not record (secrets).
PROTOCOL = 5


@functools.lru_cache(maxsize=64)
def manager_name(storage_url: str) -> str:
    key = f"{storage_url}\nprotocol {PROTOCOL}"
    return "ray-durable-manager-" + hashlib.sha1(key.encode()).hexdigest()[:16]
