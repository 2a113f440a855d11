"""Reading a workflow's log for the replay tool: every record, damage and all.

The engine reads a log with :func:`replay.load_state`, which stops at the
first problem. The tool must do better for a person debugging a run: keep
every record it can read (with its seq and byte offset), decode what decodes,
fold as far as the fold allows, and say exactly where and why it stopped.
The meaning of events still comes from the one fold (:func:`replay.apply`).
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from typing import Any

from storage_backends import (
    InvalidIdError,
    LogCorruptedError,
    Storage,
    StorageError,
    TornTail,
    UnknownSchemeError,
    open_storage,
    validate_log_id,
)

from ._codec import EventDecodeError, UnknownEventError, decode_event, decode_raw
from . import _runtime_env
from ._events import Event, PayloadRef, TaskScheduled, WorkflowSubmitted
from ._fold import IllegalTransitionError, apply
from ._format import tag_of
from ._log import read_blob
from ._state import WorkflowState


class ToolError(Exception):
    """A problem the tool reports in one line on stderr, exiting with status 2."""


@dataclass(slots=True)
class Entry:
    """One record of a log: the event, or why it is not one."""

    seq: int
    offset: int
    event: Event | None
    raw: Any = None  # the record as plain msgpack data, when it is not a known event
    error: EventDecodeError | None = None

    @property
    def tag(self) -> str:
        if self.event is not None:
            return tag_of(self.event)
        if isinstance(self.raw, dict) and isinstance(self.raw.get("type"), str):
            return self.raw["type"]
        return "?"

    @property
    def unknown(self) -> bool:
        """A well-formed record of an event type this version does not know."""
        return isinstance(self.error, UnknownEventError)


@dataclass(slots=True)
class Problem:
    """Something wrong with a log, located as precisely as the damage allows."""

    workflow_id: str
    kind: str  # "corrupted" | "torn-tail" | "undecodable" | "unknown-event" | "illegal-transition" | "misplaced"
    message: str
    seq: int | None = None
    offset: int | None = None
    location: str = ""

    def where(self) -> str:
        parts = [f"workflow {self.workflow_id!r}"]
        if self.seq is not None:
            parts.append(f"seq {self.seq}")
        if self.offset is not None:
            parts.append(f"byte offset {self.offset}")
        text = ", ".join(parts)
        return f"{text} ({self.location})" if self.location else text

    def __str__(self) -> str:
        return f"{self.where()}: {self.kind}: {self.message}"


@dataclass(slots=True)
class Log:
    """Everything readable in one workflow's log."""

    workflow_id: str
    entries: list[Entry] = field(default_factory=list)
    damage: Problem | None = None  # storage could not read past this point
    torn_tail: Problem | None = None  # bytes after the last whole batch (read as not written)

    @property
    def next_seq(self) -> int:
        return self.entries[-1].seq + 1 if self.entries else 0

    def decode_problems(self) -> list[Problem]:
        return [entry_problem(self.workflow_id, e) for e in self.entries if e.event is None]


def entry_problem(workflow_id: str, entry: Entry) -> Problem:
    kind = "unknown-event" if entry.unknown else "undecodable"
    return Problem(workflow_id, kind, str(entry.error), entry.seq, entry.offset)


@dataclass(slots=True)
class Folded:
    """A log folded as far as it goes."""

    state: WorkflowState
    problem: Problem | None  # a record the fold stopped at (storage damage is Log.damage)
    applied: int  # events applied


# --- storage ----------------------------------------------------------------------------

def open_tool_storage(url: str, endpoint_url: str | None = None, region: str | None = None) -> Storage:
    """Open ``url`` with the S3 options given on the command line; ToolError if it cannot be."""
    options = {}
    if endpoint_url:
        options["endpoint_url"] = endpoint_url
    if region:
        options["region_name"] = region
    try:
        return open_storage(url, **options)
    except UnknownSchemeError as exc:
        raise ToolError(str(exc)) from None
    except TypeError as exc:
        if options:
            raise ToolError(f"--endpoint-url and --region apply to s3:// storage only, not {url!r}") from None
        raise ToolError(f"cannot open storage {url!r}: {exc}") from None
    except StorageError as exc:
        raise ToolError(f"cannot open storage {url!r}: {exc}") from None


async def read_log(storage: Storage, workflow_id: str) -> Log:
    """Every readable record of the log; damage is recorded, never raised."""
    try:
        validate_log_id(workflow_id)
    except InvalidIdError as exc:
        raise ToolError(str(exc)) from None
    log = Log(workflow_id)
    try:
        async for record in storage.read(workflow_id):
            log.entries.append(_entry(record.seq, record.offset, record.data))
    except LogCorruptedError as exc:  # the seq it names is the first one that could not be read
        log.damage = Problem(workflow_id, "corrupted", exc.reason, log.next_seq, exc.offset, exc.location)
    else:
        tail = await storage.torn_tail(workflow_id)
        if tail is not None:
            log.torn_tail = torn_tail_problem(workflow_id, tail)
    return log


def torn_tail_problem(workflow_id: str, tail: TornTail) -> Problem:
    """A torn tail as a finding: its bytes, where, why, and the events it still held."""
    message = (f"{tail.size} bytes after the last whole batch ({tail.reason}): they read as not "
               "written, so the workflow's state ends before them, and its next append (a resume) "
               "replaces them")
    if tail.records:
        held = []
        for i, data in enumerate(tail.records):
            entry = _entry(tail.first_seq + i, tail.offset, data)
            task = getattr(entry.event, "task_id", None)
            held.append(f"seq {entry.seq} {entry.tag}" + (f" (task {task!r})" if task else ""))
        message += f"; they held {len(held)} whole event{'s' if len(held) != 1 else ''}, unverified: " \
                   + ", ".join(held)
    else:
        message += "; no whole event can be made out in them"
    return Problem(workflow_id, "torn-tail", message, tail.first_seq, tail.offset)


def _entry(seq: int, offset: int, data: bytes) -> Entry:
    try:
        event = decode_event(data)
    except EventDecodeError as exc:
        try:
            raw = decode_raw(data)
        except Exception:  # not msgpack at all: nothing more to show than the error
            raw = None
        if isinstance(raw, dict) and isinstance(raw.get("runtime_env"), dict):
            raw["runtime_env"] = _runtime_env.recorded(raw["runtime_env"])
        return Entry(seq, offset, None, raw, exc)
    if isinstance(event, WorkflowSubmitted):  # a log from before secrets were left out: never show them
        event.runtime_env = _runtime_env.recorded(event.runtime_env)
    elif isinstance(event, TaskScheduled):
        event.task_options = _runtime_env.recorded_task_options(event.task_options)
    return Entry(seq, offset, event)


async def require_log(storage: Storage, workflow_id: str) -> Log:
    """:func:`read_log`, or ToolError naming close matches if the workflow has no log."""
    log = await read_log(storage, workflow_id)
    if log.entries or log.damage is not None or log.torn_tail is not None:
        return log
    raise ToolError(await unknown_workflow_message(storage, workflow_id))


async def unknown_workflow_message(storage: Storage, workflow_id: str) -> str:
    known = await storage.list_logs()
    message = f"no workflow {workflow_id!r} in {storage.url}"
    if not known:
        return message + " (it holds no workflows: check --storage / $RAY_DURABLE_STORAGE)"
    close = difflib.get_close_matches(workflow_id, known, n=5, cutoff=0.5)
    if close:
        return message + "; did you mean: " + ", ".join(close)
    return message + f" ({len(known)} workflow{'s' if len(known) != 1 else ''} there; none is close)"


# --- folding ----------------------------------------------------------------------------

def fold_log(log: Log, upto_seq: int | None = None) -> Folded:
    """Apply the log's events in order up to ``upto_seq`` (inclusive), stopping at the first problem."""
    state = WorkflowState()
    applied = 0
    problem = None
    for entry in log.entries:
        if upto_seq is not None and entry.seq > upto_seq:
            break
        if entry.event is None:
            problem = entry_problem(log.workflow_id, entry)
            break
        try:
            apply(state, entry.event, entry.seq)
        except IllegalTransitionError as exc:
            problem = Problem(log.workflow_id, "illegal-transition", exc.reason, exc.seq, entry.offset)
            break
        applied += 1
    if not state.workflow_id:  # nothing applied: still say which log this is
        state.workflow_id = log.workflow_id
    return Folded(state, problem, applied)


def check_log(log: Log) -> list[Problem]:
    """Every problem in the log: storage damage, each undecodable record, the first illegal transition."""
    problems = log.decode_problems()
    folded = fold_log(log)
    if folded.problem is not None and folded.problem.kind == "illegal-transition":
        problems.append(folded.problem)
    submission = folded.state.submission
    if submission is not None and submission.workflow_id != log.workflow_id:
        problems.append(Problem(log.workflow_id, "misplaced",
                                f"the submission names workflow {submission.workflow_id!r}, "
                                f"but the log is {log.workflow_id!r}", 0, log.entries[0].offset))
    if log.damage is not None:
        problems.append(log.damage)
    if log.torn_tail is not None:
        problems.append(log.torn_tail)
    return sorted(problems, key=lambda p: (p.seq is None, p.seq or 0))


# --- payloads (opt-in) --------------------------------------------------------------------

UNPICKLE_WARNING = (
    "warning: --load-payloads unpickles data read from storage, which can run arbitrary code; "
    "use it only on logs you trust"
)


async def load_payload_repr(storage: Storage, workflow_id: str, ref: PayloadRef | None,
                            limit: int = 2000) -> str:
    """``repr`` of the value a payload holds (cloudpickle), or why it cannot be shown."""
    if ref is None:
        return "<no payload>"
    if ref.codec == "none":
        return "<not checkpointed>"
    if ref.codec != "cloudpickle":
        return f"<payload codec {ref.codec!r} is not one this tool can load>"
    try:
        data = ref.inline if ref.inline is not None else (
            await read_blob(storage, workflow_id, ref) if ref.blob else None)
    except StorageError as exc:
        return f"<cannot read payload: {exc}>"
    if data is None:
        return "<payload is neither inline nor in a blob>"
    note = ""
    if ref.digest and hashlib.blake2b(data, digest_size=16).hexdigest() != ref.digest:
        note = " [digest mismatch: the stored bytes are not the ones recorded]"
    try:
        import cloudpickle  # only on explicit opt-in: unpickling runs code

        text = repr(cloudpickle.loads(data))
    except Exception as exc:  # a missing module, a broken pickle...: show it, do not crash
        return f"<cannot unpickle: {type(exc).__name__}: {exc}>{note}"
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text + note
