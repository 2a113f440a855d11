"""The shared listener actor: every custom ``EventListener`` poll, as a coroutine, in one place.

ray.workflow 2.47 ran each ``poll_for_event`` in a Ray task of its own, holding a worker (and
a CPU) for as long as the event took to come. Here all polls of the cluster run as coroutines
of one async, detached actor that asks for no CPU, so a thousand open waits cost a thousand
coroutines. The driving actor calls it; it sends back the event pickled (the driving actor
checkpoints it without unpickling it), or what the listener raised.
"""

from __future__ import annotations

import traceback
from typing import Any

import cloudpickle
import msgspec
import ray

from .._names import NAMESPACE, listener_host_name
from ..graph import _pickle
from ..store import _payloads
from ._worker import _arguments


class ListenerResult(msgspec.Struct, array_like=True):
    """What a poll or a commit came to, as msgpack bytes for the driving actor."""

    ok: bool
    data: bytes = b""  # the pickled event (a poll that returned); the pickled exception, if it pickles
    type_name: str = ""  # the event's type
    error_type: str = ""
    message: str = ""
    traceback: str = ""
    retryable: bool = False  # an exception the wait's retry_exceptions covers

    def to_bytes(self) -> bytes:
        return _encode(self)


_encode = msgspec.msgpack.Encoder().encode
decode_result = msgspec.msgpack.Decoder(ListenerResult).decode


def _failure(exc: BaseException, retry_types: Any) -> ListenerResult:
    try:
        data = cloudpickle.dumps(exc)
    except Exception:
        data = b""
    return ListenerResult(
        False, data, error_type=f"{type(exc).__module__}.{type(exc).__qualname__}", message=str(exc),
        traceback="".join(traceback.format_exception(exc)),
        retryable=retry_types is not None and isinstance(exc, retry_types))


@ray.remote(num_cpus=0, max_concurrency=100_000)
class ListenerHost:
    """Runs listeners' coroutines (see the module). Stateless: a listener is built per call."""

    async def poll(self, call: bytes, value_deps: tuple[int, ...], ref_deps: tuple[int, ...],
                   *deps: Any) -> bytes:
        """``ListenerType().poll_for_event(*args, **kwargs)`` for a wait task's call (the listener
        type is its first argument; dependencies come as in ``run_task``)."""
        retry_types = None
        try:
            args, kwargs, retry_types = _arguments(call, value_deps, ref_deps, deps)
            listener_type, *args = args
            event = await listener_type().poll_for_event(*args, **kwargs)
            data = _payloads.dumps(event, f"the event {listener_type.__name__}.poll_for_event returned")
        except Exception as exc:
            return _failure(exc, retry_types).to_bytes()
        return ListenerResult(True, data, _payloads.type_name(event)).to_bytes()

    async def checkpointed(self, call: bytes, event: bytes) -> bytes:
        """``ListenerType().event_checkpointed(event)``, once the event is durable."""
        retry_types = None
        try:
            args, _kwargs, retry_types = _pickle.loads(call)
            await args[0]().event_checkpointed(_payloads.loads(event))
        except Exception as exc:
            return _failure(exc, retry_types).to_bytes()
        return ListenerResult(True).to_bytes()


_host: Any = None


def listener_host() -> Any:
    """The cluster's listener actor (created on first use; detached, like the manager)."""
    global _host
    if _host is None:
        _host = ListenerHost.options(name=listener_host_name(), namespace=NAMESPACE, lifetime="detached",
                                     get_if_exists=True).remote()
    return _host


def forget_host() -> None:
    """Drop the cached handle (the actor died); the next call finds or makes a new one."""
    global _host
    _host = None
