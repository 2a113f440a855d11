"""A workflow's mailbox: the events sent to it, in a log of their own.

Anyone may send a workflow an event (``workflow.send_event``, the HTTP provider, the CLI),
whether or not the workflow waits for it yet, while only the workflow's driver appends to the
workflow's own log (one writer per log). So senders append to the workflow's *mailbox*, a
system log beside its log, with compare-and-append: ``mailbox.event_sent`` records, at most
one per event key (the first accepted wins). The driver reads the mailbox and moves the event
into the workflow's log (``event.received``) when a wait takes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from storage_backends import Storage, system_id

from ._codec import EventDecodeError, decode_event
from ._events import EventSent

def mailbox_log_id(workflow_id: str) -> str:
    """The id of the system log that holds ``workflow_id``'s mailbox.

    The one place that names it: ``system:mailbox-<digest of the id>`` (a workflow id may
    already use all 128 characters a log id may have). System logs are never listed, and no
    workflow id can be one.
    """
    return system_id("mailbox-" + hashlib.blake2b(workflow_id.encode(), digest_size=16).hexdigest())


@dataclass
class Mailbox:
    """The events in a workflow's mailbox, read up to ``next_seq``."""

    workflow_id: str
    events: dict[str, tuple[int, EventSent]] = field(default_factory=dict)  # key -> (seq, event)
    next_seq: int = 0

    def add(self, seq: int, event: EventSent) -> None:
        # The first record of a key is the event; a later one could only come from a sender
        # that did not check (senders check under compare-and-append), and is ignored.
        self.events.setdefault(event.event_key, (seq, event))
        self.next_seq = seq + 1


async def read_mailbox(storage: Storage, workflow_id: str, mailbox: Mailbox | None = None) -> Mailbox:
    """Read ``workflow_id``'s mailbox (or what was appended to ``mailbox`` since it was read).

    Raises:
        EventDecodeError: a record that is not a mailbox event of a known format.
    """
    mailbox = mailbox if mailbox is not None else Mailbox(workflow_id)
    async for record in storage.read(mailbox_log_id(workflow_id), mailbox.next_seq):
        event = decode_event(record.data)
        if not isinstance(event, EventSent) or event.workflow_id != workflow_id:
            raise EventDecodeError(f"mailbox of workflow {workflow_id!r}, seq {record.seq}: "
                             f"not an event sent to it ({type(event).__name__})")
        mailbox.add(record.seq, event)
    return mailbox
