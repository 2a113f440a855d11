"""Event listeners, as ``ray.workflow.event_listener`` (2.47) defined them.

``workflow.wait_for_event(ListenerType, *args, **kwargs)`` makes a task that finishes when
``ListenerType().poll_for_event(*args, **kwargs)`` returns; its value is what that returned.
Once the event is durable in the workflow's log, ``event_checkpointed(event)`` runs, so a
listener can commit it at its source (a queue offset, say).

How ray-durable runs them (nothing holds a Ray worker while waiting):

* :class:`TimerListener` (and ``workflow.sleep``) is a durable timer: its deadline is in the
  log and the engine fires it; no ``poll_for_event`` runs.
* ``engine.http_event_provider.HTTPListener`` waits on the workflow's mailbox, which
  ``workflow.send_event``, the HTTP endpoint and ``ray-durable send-event`` fill.
* Any other listener's coroutines run in one shared async actor, as many at once as there
  are waits; a listener must not block its event loop (use ``await``, not ``time.sleep``).

A subclass that overrides ``poll_for_event`` is a listener of its own, even if it derives
from TimerListener or HTTPListener.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

Event = Any  # what a listener returns (ray.workflow.common.Event was Any too)
EventListenerType = Callable[[], "EventListener"]

__all__ = ["Event", "EventListener", "EventListenerType", "TimerListener"]


class EventListener:
    """Base class of event listeners (ray.workflow 2.47's interface, same names).

    Listeners are constructed with no arguments wherever a wait runs (an instance is never
    serialized), so they should be stateless; the class itself must be serializable.
    """

    def __init__(self):
        pass

    async def poll_for_event(self, *args, **kwargs) -> Event:
        """Return the event once it happened; gets ``wait_for_event``'s extra arguments."""
        raise NotImplementedError

    async def event_checkpointed(self, event: Event) -> None:
        """Optional: called once ``event`` is durable in the workflow's log (commit it here).

        At least once: after a crash between the checkpoint and the end of this call, a
        resume calls it again with the same event (the event itself is not received again).
        """


def _durable_wait(kind: str) -> Callable[[Callable], Callable]:
    """Mark a built-in ``poll_for_event`` as one the engine replaces by a durable wait of ``kind``."""
    def mark(func: Callable) -> Callable:
        func.__ray_durable_wait__ = kind
        return func
    return mark


class TimerListener(EventListener):
    """An event at a given time: ``wait_for_event(TimerListener, timestamp)`` (Unix seconds).

    Its value is None, as in 2.47. In a workflow it is a durable timer (see the module).
    """

    @_durable_wait("timer")
    async def poll_for_event(self, timestamp: float) -> None:
        await asyncio.sleep(max(0.0, timestamp - time.time()))


def durable_wait_kind(listener_type: type) -> str | None:
    """"timer" or "mailbox" if ``listener_type`` polls with a built-in the engine replaces; else None."""
    return getattr(listener_type.poll_for_event, "__ray_durable_wait__", None)


def commits(listener_type: type) -> bool:
    """Whether ``listener_type`` overrides ``event_checkpointed`` (else it need not be called)."""
    return listener_type.event_checkpointed is not EventListener.event_checkpointed
