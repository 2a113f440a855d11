"""``workflow.send_event``: send an event to a workflow, whether or not it waits for it yet."""

from __future__ import annotations

import os
import socket
from typing import Any

from .._names import validate_workflow_id
from ..store._mailbox import post_event
from ..store._sync import run_sync
from ._init import context


def send_event(workflow_id: str, event_key: str, payload: Any = None) -> None:
    """Deliver an event to a workflow: it is durable in the workflow's mailbox when this returns.

    The workflow's wait on ``event_key`` (``workflow.wait_for_event(HTTPListener,
    event_key=...)``) takes it exactly once: at once if it waits already, else as soon as it
    does (peers call this a signal: Temporal's signals, DBOS's ``send``). The wait's value is
    ``(event_key, payload)``, as for an HTTP event. Same as ``POST
    /event/send_event/{workflow_id}`` and ``ray-durable send-event``.

    Args:
        workflow_id: the workflow (it must exist, and not have ended).
        event_key: any str of at most 1,024 characters; each key is delivered once.
        payload: any value cloudpickle can serialize.

    Raises:
        WorkflowNotFoundError: no such workflow.
        DuplicateEventError: an event with this key was already sent to it (nothing recorded).
        WorkflowEventError: it has ended (SUCCESSFUL or CANCELED), or the key is not a str.
        PayloadSerializationError: the payload cannot be serialized (a TypeError).
    """
    validate_workflow_id(workflow_id)
    ctx = context()
    sender = f"api {os.getpid()}@{socket.gethostname()}"
    run_sync(post_event(ctx.storage, workflow_id, event_key, payload, sender=sender))
    ctx.manager_for(workflow_id).notify_event.remote(workflow_id)  # a nudge: the wait would see it at its next poll

