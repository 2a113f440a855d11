"""Events to record bytes and back: one version byte, then msgpack.

The version byte lets a future format be told apart from this one without
guessing; an event type this reader does not know raises UnknownEventError
with its tag, so an old engine never drives a log it cannot understand.
"""

from __future__ import annotations

import struct
from typing import Union

import msgspec

from ._events import EVENT_TAGS, EVENT_TYPES, AnyEvent, Event

FORMAT_VERSION = 1
_VERSION_BYTE = bytes([FORMAT_VERSION])

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(AnyEvent)
_raw_decoder = msgspec.msgpack.Decoder()
_decode = _decoder.decode
# Records back to back read as one msgpack array [1, event, 1, event, ...]: the
# version byte 0x01 is itself msgpack for the integer 1.
_run_decode = msgspec.msgpack.Decoder(list[Union[(int, *EVENT_TYPES)]]).decode
_ARRAY32 = struct.Struct(">BI")  # msgpack array32 header
_EVENT_TYPE_SET = frozenset(EVENT_TYPES)


class EventDecodeError(ValueError):
    """A record that is not a valid event of a known format version."""


class UnknownEventError(EventDecodeError):
    """An event type written by a newer ray-durable (or a foreign writer)."""

    def __init__(self, tag: str):
        self.tag = tag
        super().__init__(
            f"unknown event type {tag!r}: this log was written by a newer ray-durable; "
            "upgrade ray-durable to read it (known types: " + ", ".join(sorted(EVENT_TAGS)) + ")"
        )


def encode_event(event: Event) -> bytes:
    """The record bytes of ``event``."""
    return _VERSION_BYTE + _encoder.encode(event)


def decode_event(data: bytes) -> AnyEvent:
    """The event in record bytes ``data``.

    Raises:
        UnknownEventError: the event's tag is not one this version knows.
        EventDecodeError: anything else wrong with the bytes.
    """
    if not data:
        raise EventDecodeError("empty record")
    if data[0] != FORMAT_VERSION:
        raise EventDecodeError(
            f"event format version {data[0]} is not supported (this reader knows {FORMAT_VERSION})"
        )
    try:
        return _decode(data[1:])  # a bytes slice: cheaper than a memoryview for event-sized records
    except msgspec.ValidationError as exc:
        tag = _tag_of(data)
        if tag is not None and tag not in EVENT_TAGS:
            raise UnknownEventError(tag) from None
        raise EventDecodeError(f"invalid {tag or 'event'} record: {exc}") from None
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # (msgspec reports a string that is not UTF-8, or nesting deeper than the
        # recursion limit, with these plain Python errors rather than DecodeError.)
        raise EventDecodeError(f"record is not valid msgpack: {exc}") from None


def decode_concatenated(data: bytes, count: int) -> list[AnyEvent] | None:
    """The events of ``count`` records stored back to back in ``data``, in one decode call.

    The fast path of a replay (a stored batch is exactly this); per record it
    skips a Python call and a slice. Returns None when anything is off (a
    version other than this one, bytes that are not events), so the caller
    decodes record by record and reports exactly which record and why. (It
    cannot check the record boundaries themselves: a record holding two events
    beside an empty one in the same checksummed batch would pass here, where
    ``decode_event`` rejects both. Only a broken writer makes such a batch,
    and ``ray-durable replay verify``, record by record, reports it.)
    """
    try:
        items = _run_decode(_ARRAY32.pack(0xDD, 2 * count) + data)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError, RecursionError):
        return None
    events = items[1::2]
    if items[0::2].count(FORMAT_VERSION) != count or not _EVENT_TYPE_SET.issuperset(map(type, events)):
        return None
    return events


def decode_raw(data: bytes) -> object:
    """The record as plain msgpack data (dicts, lists, ...), for tools that show any event.

    Raises:
        EventDecodeError: not a record of this format version, or not valid msgpack.
    """
    if not data or data[0] != FORMAT_VERSION:
        raise EventDecodeError("not an event record of a supported format version")
    try:
        return _raw_decoder.decode(memoryview(data)[1:])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise EventDecodeError(f"record is not valid msgpack: {exc}") from None


def _tag_of(data: bytes) -> str | None:
    try:
        raw = _raw_decoder.decode(memoryview(data)[1:])
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    tag = raw.get("type") if isinstance(raw, dict) else None
    return tag if isinstance(tag, str) else None
