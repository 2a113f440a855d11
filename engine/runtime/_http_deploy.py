"""Deploying the HTTP event provider, in a Ray worker of its own, once per process that asks.

The driver asks when it submits a workflow that waits on an HTTPListener (so the endpoint
answers from the moment ``run_async`` returns); the driving actor asks when such a wait begins
(a resume, a continuation); ``start_http_event_provider`` asks explicitly. 2.47 deployed it
only once the wait ran, and answered 404 until then.

The deployment runs in a one-off worker (``max_calls=1``) because importing the provider runs
``serve.ingress``, which registers a process-wide Ray serializer that makes thread locks
picklable (as fresh locks): that must not leak into the driver, the manager, or a worker that
later runs tasks, where an unpicklable argument must stay an error. Without Ray Serve, or with
``RAY_DURABLE_HTTP_EVENTS=0``, nothing is deployed and events come through ``send_event``.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import ray

from ..store._spec import StorageSpec

logger = logging.getLogger(__name__)


def _deploy(spec: StorageSpec, http_options: dict[str, Any] | None, replace: bool) -> None:
    from ._http_provider import deploy

    deploy(spec, http_options, replace)


deploy_task = ray.remote(num_cpus=0, max_calls=1, max_retries=0)(_deploy)

_asked = False


def deploy_once(spec: StorageSpec) -> Any:
    """Start deploying the provider for the storage of ``spec`` (never in place of one serving
    another storage) unless this process asked already; returns the task's ObjectRef, or None."""
    global _asked
    if _asked or os.environ.get("RAY_DURABLE_HTTP_EVENTS", "1") == "0":
        return None
    _asked = True
    return deploy_task.remote(spec, None, False)


def report(error: BaseException) -> None:
    """Log why the provider was not deployed (the workflow runs on; events can come through send_event)."""
    cause = getattr(error, "cause", None) or error
    if isinstance(cause, ImportError):
        logger.info("Ray Serve is not installed (%s): no HTTP endpoint for events; they can be sent "
                    "with workflow.send_event or ray-durable send-event", cause)
    else:
        logger.warning("deploying the HTTP event provider failed (%s: %s); events can still be sent "
                       "with workflow.send_event or ray-durable send-event", type(cause).__name__, cause)
