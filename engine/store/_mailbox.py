"""Sending an event to a workflow: a durable append to its mailbox (see :mod:`replay._mailbox`).

Used by ``workflow.send_event``, the HTTP provider and ``ray-durable send-event`` alike. Any
number of senders may append at once: the append is compare-and-append, retried on conflict
after re-reading what the others wrote, so each event key is accepted once, and an event is
accepted only once it is durable. The workflow's driver is told separately (a best-effort
nudge by whoever can reach it); it also polls the mailbox while a wait is open.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from typing import Any

from replay import EventSent, Mailbox, WorkflowStatus, encode_event, load_state, mailbox_log_id, read_mailbox
from storage_backends import AppendConflictError, Storage, is_system_id

from ..exceptions import DuplicateEventError, WorkflowEventError, WorkflowNotFoundError
from . import _payloads

MAX_EVENT_KEY_LENGTH = 1024
_ATTEMPTS = 50  # appends lost to other senders before giving up (each re-reads, then retries)


def check_event_key(workflow_id: str, event_key: Any) -> str:
    """An event key is any str of at most 1,024 characters ('' too: 2.47's examples use it)."""
    if not isinstance(event_key, str):
        raise WorkflowEventError(workflow_id, repr(event_key),
                                 f"an event key must be a str, got {type(event_key).__name__}")
    if len(event_key) > MAX_EVENT_KEY_LENGTH:
        raise WorkflowEventError(workflow_id, event_key[:40] + "...",
                                 f"an event key may have at most {MAX_EVENT_KEY_LENGTH} characters")
    return event_key


async def post_event(storage: Storage, workflow_id: str, event_key: str, payload: Any,
                     sender: str = "") -> int:
    """Append an event to the workflow's mailbox and return its mailbox seq once it is durable.

    Raises:
        WorkflowNotFoundError: no such workflow.
        WorkflowEventError: it has ended (SUCCESSFUL or CANCELED); or a bad key.
        DuplicateEventError: an event with this key was already sent to it.
        PayloadSerializationError: the payload cannot be serialized (a TypeError).
        StorageError: storage failed; nothing was accepted (the event may be sent again).
    """
    check_event_key(workflow_id, event_key)
    if is_system_id(workflow_id):  # (a system log, never a workflow)
        raise WorkflowNotFoundError(workflow_id, storage.url)
    data = _payloads.dumps(payload, f"the payload of event {event_key!r}")
    state = await load_state(storage, workflow_id)
    if state.status is None:
        raise WorkflowNotFoundError(workflow_id, storage.url)
    if event_key in state.event_keys:  # (the more telling answer, even once it has ended)
        raise DuplicateEventError(workflow_id, event_key, (
            f"task {state.event_keys[event_key]!r} already received the event with this key (it was "
            "already sent), and each key is delivered once; send it under another key"))
    if state.status in (WorkflowStatus.SUCCESSFUL, WorkflowStatus.CANCELED):
        raise WorkflowEventError(workflow_id, event_key,
                                 f"the workflow is {state.status}, so it waits for no more events")
    mailbox = await read_mailbox(storage, workflow_id)
    _check_new(mailbox, event_key)
    blob = None
    if len(data) > _payloads.INLINE_LIMIT:
        # Named by key and content: a sender that loses the race leaves only its own blob behind.
        key_digest = hashlib.blake2b(event_key.encode(), digest_size=8).hexdigest()
        blob = f"event-{key_digest}-{_payloads.digest(data)[:16]}"
        await storage.put_blob(workflow_id, blob, data)
    event = EventSent(ts=time.time(), workflow_id=workflow_id, event_key=event_key,
                      payload=_payloads.make_ref(data, payload, blob), sender=sender)
    log_id = mailbox_log_id(workflow_id)
    for attempt in range(_ATTEMPTS):
        seq = mailbox.next_seq
        try:
            await storage.append(log_id, [encode_event(event)], seq)
            return seq
        except AppendConflictError:  # another sender got there first: see what it sent
            await read_mailbox(storage, workflow_id, mailbox)
            _check_new(mailbox, event_key)
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))
    raise WorkflowEventError(workflow_id, event_key, f"its mailbox kept changing ({_ATTEMPTS} appends "
                             "lost to other senders); nothing was recorded, send it again")


def _check_new(mailbox: Mailbox, event_key: str) -> None:
    found = mailbox.events.get(event_key)
    if found is not None:
        seq, sent = found
        raise DuplicateEventError(mailbox.workflow_id, event_key, (
            f"an event with this key was already sent to it (mailbox seq {seq}, at {sent.ts:.3f}"
            f"{', by ' + sent.sender if sent.sender else ''}), and each key is delivered once; "
            "send it under another key"))
