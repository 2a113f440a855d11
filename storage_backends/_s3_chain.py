"""Key layout and batch-chain checks of the S3 backend (pure: no I/O).

Logs and blobs live under two separate top-level prefixes:

    <prefix>/logs/<log_id>/<first seq, 20 digits>    one object per batch: one frame of :mod:`._framing`
    <prefix>/blobs/<log_id>/<name>                   blob bytes
    <prefix>/system/{logs,blobs}/<name>/...          the same, for system log ``system:<name>``

so that ``list_logs`` is a single delimited listing of ``<prefix>/logs/``
(one request per 1000 logs): a log id shows up there only if the log has at
least one batch object, and blobs never do.

A log is a *chain* of batch objects. It starts at key 0 and each batch's
successor is keyed by the batch's first seq plus its record count. The
fixed-width key makes S3's lexicographic listing order equal to seq order, so
a listing is the chain in order; anything else under the log's prefix (a key
off the chain, a gap, an unparseable name) is damage that a reader reports
after yielding every record before it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from . import _framing
from ._errors import LogCorruptedError
from ._framing import HEADER_SIZE, Batch, scan

SEQ_DIGITS = 20  # enough for any 64-bit seq
LOGS_ROOT = "logs/"    # <prefix>/logs/<log_id>/<seq>
BLOBS_ROOT = "blobs/"  # <prefix>/blobs/<log_id>/<name>
SYSTEM_ROOT = "system/"  # <prefix>/system/logs/<name>/..., <prefix>/system/blobs/<name>/...
_HEADER = _framing._HEADER  # one source of truth for the frame header layout


def seq_name(seq: int) -> str:
    """The key suffix of the batch starting at ``seq``."""
    return f"{seq:0{SEQ_DIGITS}d}"


def parse_seq_name(name: str) -> int | None:
    """The seq encoded by a key suffix, or None if it is not a batch name."""
    if len(name) == SEQ_DIGITS and name.isascii() and name.isdigit():
        return int(name)
    return None


@dataclass
class BatchListing:
    """The keys found under one log's prefix (``<prefix>/logs/<log_id>/``).

    Attributes:
        seqs: first seqs of the batch objects, ascending (parallel to ``keys``).
        keys: the batch objects' keys.
        etags: the batch objects' ETags (parallel to ``keys``; None if the listing had none).
        strays: keys under the log's prefix that are not named like a batch.
    """

    seqs: list[int] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    etags: list[str | None] = field(default_factory=list)
    strays: list[str] = field(default_factory=list)

    def add(self, key: str, name: str, etag: str | None = None) -> None:
        """Record ``key`` (whose suffix after the log's prefix is ``name``); listings arrive in order."""
        seq = parse_seq_name(name)
        if seq is None:
            self.strays.append(key)
        else:
            self.seqs.append(seq)
            self.keys.append(key)
            self.etags.append(etag)

    def first_needed(self, from_seq: int) -> int:
        """Index of the first batch that can hold records >= ``from_seq``.

        Batches before it are wholly below ``from_seq`` as long as the chain is
        intact (batch i ends where batch i+1 starts), so a reader need not fetch them.
        """
        return max(bisect.bisect_right(self.seqs, from_seq) - 1, 0)


def decode_batch(
    log_id: str, key: str, body: bytes, expected_seq: int, keep_from_seq: int
) -> tuple[Batch | None, int]:
    """Check one batch object; return its records >= ``keep_from_seq`` (None: none) and its end seq.

    An S3 PUT is atomic, so unlike a local file there is no torn tail: the
    object must hold exactly one whole, valid frame starting at ``expected_seq``.

    Raises:
        LogCorruptedError: naming ``log_id``, ``key`` and the byte offset in the object.
    """
    if len(body) < HEADER_SIZE:
        raise LogCorruptedError(
            log_id, 0, f"object is {len(body)} bytes, shorter than a frame header", key
        )
    result = scan(body, expected_seq=expected_seq, keep_from_seq=keep_from_seq, at_end_of_log=False)
    if result.error is not None:
        raise LogCorruptedError(log_id, result.error.offset, result.error.reason, key)
    _magic, length, _first, count, _crc = _HEADER.unpack_from(body)
    if HEADER_SIZE + length != len(body):
        raise LogCorruptedError(log_id, HEADER_SIZE + length, "object holds more than one frame", key)
    if count == 0:
        raise LogCorruptedError(log_id, 0, "frame holds no records", key)
    return (result.batches[0] if result.batches else None), result.next_seq


def gap_error(log_id: str, expected_seq: int, key: str, seq: int) -> LogCorruptedError:
    """The error for a batch object that is not where the chain continues."""
    if seq < expected_seq:
        what = f"object starts at seq {seq}, inside the batch before it (off the chain)"
    else:
        what = f"no object starts at seq {expected_seq}; the next one starts at seq {seq}"
    return LogCorruptedError(log_id, 0, f"sequence gap: expected seq {expected_seq}, {what}", key)


def stray_error(log_id: str, strays: list[str]) -> LogCorruptedError:
    """The error for objects under a log's prefix that are not named like batches."""
    more = f" and {len(strays) - 1} more" if len(strays) > 1 else ""
    return LogCorruptedError(
        log_id, 0, f"object is not named like a batch ({SEQ_DIGITS}-digit first seq){more}", strays[0]
    )
