"""HTTP events, as ``ray.workflow.http_event_provider`` (2.47): ``HTTPListener`` and the provider.

A workflow waits with ``workflow.wait_for_event(HTTPListener, event_key="approval")``; its
value becomes ``(event_key, event_payload)``. Someone sends the event with::

    POST http://127.0.0.1:8000/event/send_event/<workflow_id>
    {"event_key": "approval", "event_payload": <any JSON>}

on Ray Serve's HTTP proxy (2.47's endpoint), or with ``workflow.send_event(workflow_id,
event_key, payload)``, or ``ray-durable send-event WID KEY --json PAYLOAD``. All three put the
event in the workflow's mailbox (see :mod:`replay._mailbox`), durably, before or after the
wait starts; the wait takes it exactly once.

The endpoint answers 200 once the event is durable (2.47 answered once the workflow had
checkpointed it, and 404 if the wait had not started yet), 400 for a malformed body, 404 for
an unknown workflow, 409 for an event key already delivered or a workflow that has ended,
and 500 if storage failed (nothing was accepted then; send it again).

The provider is deployed when a workflow first waits on an HTTPListener (as 2.47 did), or
when :func:`start_http_event_provider` is called. Serve must be installed
(``pip install 'ray-durable[http]'``); ``HTTPListener`` and ``send_event`` work without it.
"""

from __future__ import annotations

from typing import Any

from ._names import HTTP_EVENT_PROVIDER_NAME, HTTP_EVENT_ROUTE_PREFIX
from .event_listener import Event, EventListener, _durable_wait
from .exceptions import WorkflowEventError

__all__ = ["HTTP_EVENT_PROVIDER_NAME", "HTTP_EVENT_ROUTE_PREFIX", "HTTPEventProvider", "HTTPListener",
           "WorkflowEventHandleError", "start_http_event_provider"]

WorkflowEventHandleError = WorkflowEventError  # 2.47's name for the provider's errors


class HTTPListener(EventListener):
    """Waits for an HTTP event (or one from ``workflow.send_event``) to this workflow.

    ``poll_for_event(event_key=None)``: the key defaults to the waiting task's id, as in 2.47
    (ray-durable's wait tasks are named ``engine.wait_for_event``, ``engine.wait_for_event_1``,
    ...). Returns ``(event_key, event_payload)``.
    """

    @_durable_wait("mailbox")
    async def poll_for_event(self, event_key: str | None = None) -> Event:
        raise RuntimeError(
            "HTTPListener waits on a workflow's mailbox, which only a workflow has: use "
            "workflow.wait_for_event(HTTPListener, event_key=...) inside a workflow")


def start_http_event_provider(http_options: dict[str, Any] | None = None) -> None:
    """Deploy the HTTP event provider on Ray Serve for the storage ``workflow.init`` chose, and
    return once it answers.

    A cluster has one provider (its route is ``/event``). If it runs for another storage, this
    storage's replaces it; a provider deployed by a workflow's first HTTPListener wait never
    replaces another.

    Args:
        http_options: Serve's HTTP options (``{"host": ..., "port": ...}``), used only if Serve
            is not running on the cluster yet; Serve's defaults are 127.0.0.1:8000.

    Raises:
        ImportError: Ray Serve is not installed (``pip install 'ray-durable[http]'``).
    """
    import ray

    from .api._init import context
    from .runtime._http_deploy import deploy_task

    ctx = context()
    try:
        ray.get(deploy_task.remote(ctx.spec, http_options, True))
    except ray.exceptions.RayTaskError as exc:
        raise exc.cause if isinstance(exc.cause, ImportError) else exc


def __getattr__(name: str) -> Any:
    if name == "HTTPEventProvider":  # the Serve deployment; imports Serve, so only on demand
        from .runtime._http_provider import HTTPEventProvider

        return HTTPEventProvider
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
