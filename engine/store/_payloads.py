"""Serializing values into payloads (inline or blob) and loading them back.

cloudpickle, because task arguments and outputs are arbitrary Python objects;
the PayloadRef records the type name, size and digest so the replay tool can
describe a payload without unpickling it.
"""

from __future__ import annotations

import hashlib
from typing import Any

import cloudpickle

from replay import PayloadRef, read_blob

INLINE_LIMIT = 16 * 1024  # bytes; larger payloads go to blobs beside the log


class PayloadSerializationError(TypeError):
    """A value that cloudpickle cannot serialize; the message names what it belongs to."""


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def type_name(value: Any) -> str:
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"


def dumps(value: Any, what: str) -> bytes:
    """cloudpickle ``value``; a clear error naming ``what`` if it cannot be."""
    try:
        return cloudpickle.dumps(value)
    except Exception as exc:
        raise PayloadSerializationError(
            f"{what} is not serializable ({type_name(value)}): {type(exc).__name__}: {exc}; "
            "return or pass only values that cloudpickle can serialize"
        ) from None


def make_ref(data: bytes, value: Any, blob_name: str | None) -> PayloadRef:
    """A PayloadRef for serialized ``data``: inline if ``blob_name`` is None."""
    ref = PayloadRef(size=len(data), digest=digest(data), type_name=type_name(value))
    if blob_name is None:
        ref.inline = data
    else:
        ref.blob = blob_name
    return ref


def blob_name(kind: str, task_id: str, attempt: int = 0) -> str:
    """A storage-safe blob name for a task's payload (task ids may hold any printable text)."""
    return f"{kind}-{hashlib.blake2b(task_id.encode(), digest_size=10).hexdigest()}-{attempt}"


async def load_bytes(storage, workflow_id: str, ref: PayloadRef) -> bytes:
    """The payload's bytes: inline, a blob of ``workflow_id``, or (a fork's shared output) a blob
    of the workflow ``ref.log`` names, else the copy a delete of that workflow left in
    ``workflow_id``'s own blobs (see :mod:`engine.store._forks`)."""
    if ref.inline is not None:
        return ref.inline
    if ref.blob is None:
        raise ValueError(f"payload of workflow {workflow_id!r} was not checkpointed")
    return await read_blob(storage, workflow_id, ref)


def loads(data: bytes) -> Any:
    """Unpickle a payload (cloudpickle's format is pickle's)."""
    return cloudpickle.loads(data)


async def load_value(storage, workflow_id: str, ref: PayloadRef) -> Any:
    return loads(await load_bytes(storage, workflow_id, ref))


class Pickled:
    """A value kept pickled until it is unpickled where it is used (a worker, or the driver),
    so the driving actor can hand values on without importing the modules they need."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self):
        return (loads, (self.data,))
