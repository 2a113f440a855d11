"""The ``ray-durable`` console script and ``python -m replay``: argument parsing and dispatch only.

Reads logs straight from storage (a path, ``file://...`` or ``s3://...``) and
never imports ray, so it runs on a laptop with no cluster. Nothing is
unpickled unless ``--load-payloads`` is given.

Exit status: 0 success; 1 ``verify`` found problems / ``diff`` found
differences; 2 a usage error, unreadable storage, an unknown workflow, or a
damaged log (after printing what is readable).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from storage_backends import StorageError, default_storage_url

from ._codec import EventDecodeError
from ._diff import diff_states, render_diff
from ._export import chrome_trace_json, entry_json, state_json, timeline_json, to_jsonl
from ._mailbox import read_mailbox
from ._inspect import (
    UNPICKLE_WARNING,
    Folded,
    Log,
    ToolError,
    fold_log,
    load_payload_repr,
    open_tool_storage,
    require_log,
)
from ._render_html import render_html
from ._render_text import payload_targets, render_event_line, render_state, render_timeline
from ._runs import runs_of
from ._spans import build_timeline
from ._verify import render_verdicts, verify
from ._waits import render_mailbox

_COMMANDS = ("show", "events", "at", "timeline", "verify", "diff", "export")


def main(argv: Sequence[str] | None = None) -> int:
    """``ray-durable COMMAND ...``; today the one command is ``replay``."""
    parser = argparse.ArgumentParser(
        prog="ray-durable", description="ray-durable tools. Reads workflow logs without Ray.")
    commands = parser.add_subparsers(dest="tool", required=True, metavar="COMMAND")
    replay = commands.add_parser(
        "replay", help="inspect, verify, diff and export workflow logs",
        description="Inspect workflow logs: " + ", ".join(_COMMANDS) + ".")
    _add_replay_arguments(replay)
    return _run(parser.parse_args(argv))


def replay_main(argv: Sequence[str] | None = None, prog: str = "python -m replay") -> int:
    """``python -m replay COMMAND ...``: the same commands as ``ray-durable replay``."""
    parser = argparse.ArgumentParser(prog=prog, description="Inspect workflow logs without Ray: "
                                     + ", ".join(_COMMANDS) + ".")
    _add_replay_arguments(parser)
    return _run(parser.parse_args(argv))


def _storage_options(parser: argparse.ArgumentParser, defaults: bool) -> None:
    """--storage / --endpoint-url / --region, accepted before or after the subcommand."""
    default = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    group = parser.add_argument_group("storage")
    group.add_argument("--storage", metavar="URL", default=default(None),
                       help="a path, file://PATH or s3://BUCKET/PREFIX (default: $RAY_DURABLE_STORAGE, "
                            "else /tmp/ray/workflow_data)")
    group.add_argument("--endpoint-url", metavar="URL", default=default(None),
                       help="S3 endpoint, for S3-compatible stores (MinIO, moto, ...)")
    group.add_argument("--region", metavar="NAME", default=default(None), help="S3 region")


def _add_replay_arguments(parser: argparse.ArgumentParser) -> None:
    _storage_options(parser, defaults=True)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        _storage_options(p, defaults=False)
        return p

    p = command("show", "status, tasks, attempts, durations, errors and output of a workflow")
    p.add_argument("workflow_id", metavar="WID")
    _load_payloads_option(p)
    _json_option(p)

    p = command("events", "the raw event stream, one line per event")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("--from", dest="from_seq", type=_seq, default=0, metavar="N", help="first seq to show")
    p.add_argument("--to", dest="to_seq", type=_seq, default=None, metavar="M", help="last seq to show")
    p.add_argument("--json", action="store_true", help="JSON lines (every field, payload bytes as base64)")

    p = command("at", "the workflow as it was right after event SEQ (time travel)")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("seq", type=_seq, metavar="SEQ")
    _load_payloads_option(p)
    _json_option(p)

    p = command("timeline", "a Gantt chart of task attempts (text, or --html FILE)")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page instead")
    p.add_argument("--width", type=int, default=60, help="chart width in columns (text)")
    p.add_argument("--expand", action="store_true",
                   help="one row per task, even for a wide fan-out (by default many siblings of one "
                        "function share a row)")
    p.add_argument("--json", action="store_true", help="runs, marks, and each task's attempts and gaps")

    p = command("verify", "check framing, checksums, seq contiguity, decoding and legal transitions")
    p.add_argument("workflow_ids", nargs="*", metavar="WID")
    p.add_argument("--all", action="store_true", help="verify every workflow in storage")
    p.add_argument("--json", action="store_true", help="one object per workflow: events and problems")

    p = command("diff", "differences between two runs: tasks, statuses, attempts, outputs, durations")
    p.add_argument("workflow_a", metavar="WID_A")
    p.add_argument("workflow_b", metavar="WID_B")
    p.add_argument("--threshold", type=float, default=10.0, metavar="PCT",
                   help="report duration changes beyond this percentage (default 10)")
    p.add_argument("--json", action="store_true", help="the differences as a JSON object")

    p = command("export", "the log as JSON lines or a Chrome trace (Perfetto, chrome://tracing)")
    p.add_argument("workflow_id", metavar="WID")
    p.add_argument("--format", choices=("jsonl", "chrome-trace"), default="jsonl")
    p.add_argument("-o", "--output", metavar="FILE", help="write here instead of stdout")


def _json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true",
                   help="the workflow as JSON: status, failure, runs, every task with its attempts and errors")


def _load_payloads_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--load-payloads", action="store_true",
                   help="also unpickle and print output values (runs code from storage: trusted logs only)")


def _seq(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a sequence number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"sequence numbers start at 0, got {value}")
    return value


# --- running --------------------------------------------------------------------------------

def _run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_dispatch(args))
    except ToolError as exc:
        _err(f"error: {exc}")
        return 2
    except (StorageError, OSError) as exc:
        if isinstance(exc, BrokenPipeError):
            return _broken_pipe()
        _err(f"error: {type(exc).__name__}: {exc}")
        return 2
    except KeyboardInterrupt:
        _err("interrupted")
        return 130


async def _dispatch(args: argparse.Namespace) -> int:
    url = args.storage or default_storage_url()
    storage = open_tool_storage(url, args.endpoint_url, args.region)
    try:
        return await _HANDLERS[args.command](args, storage)
    finally:
        await storage.close()


def _out(text: str) -> None:
    sys.stdout.write(text)


def _err(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(text.rstrip("\n") + "\n")


def _broken_pipe() -> int:
    # The reader (e.g. `| head`) went away: stop quietly, as other command-line tools do.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


def _report(log: Log, folded: Folded | None = None) -> int:
    """Print (to stderr) why the output stops early; the exit status."""
    status = 0
    if folded is not None and folded.problem is not None:
        last = folded.state.last_seq
        _err(f"error: {folded.problem}\n  (shown: the state after seq {last}, the last event that applies)")
        status = 2
    if log.damage is not None:
        shown = f"seq 0-{log.next_seq - 1}" if log.entries else "no events"
        _err(f"error: the log is damaged: {log.damage}\n  (readable before the damage: {shown})")
        status = 2
    return status


async def _payload_reprs(args, storage, state) -> dict[str, str] | None:
    if not getattr(args, "load_payloads", False):
        return None
    _err(UNPICKLE_WARNING)
    return {key: await load_payload_repr(storage, state.workflow_id, ref, limit=2000 if key == "" else 200)
            for key, ref in payload_targets(state).items()}


async def _show(args, storage) -> int:
    log = await require_log(storage, args.workflow_id)
    folded = fold_log(log)
    partial = log.damage is not None or folded.problem is not None  # not the log's latest word
    if args.json:
        _out(state_json(folded.state, runs_of([e.event for e in log.entries[:folded.applied]])))
        return _report(log, folded)
    runs = runs_of([e.event for e in log.entries[:folded.applied]])
    _out(render_state(folded.state, await _payload_reprs(args, storage, folded.state), historical=partial,
                      runs=runs))
    _out(await _mailbox_section(storage, folded.state))
    return _report(log, folded)


async def _mailbox_section(storage, state) -> str:
    """The events sent to the workflow (its mailbox log), or why they cannot be shown."""
    try:
        return render_mailbox(await read_mailbox(storage, state.workflow_id), state)
    except (EventDecodeError, StorageError) as exc:
        return f"\nmailbox    unreadable: {exc}\n"


async def _at(args, storage) -> int:
    log = await require_log(storage, args.workflow_id)
    if not log.entries or args.seq > log.entries[-1].seq:
        last = f"its last readable seq is {log.entries[-1].seq}" if log.entries else "it has no readable events"
        _report(log)
        raise ToolError(f"seq {args.seq} is past the end of the log of workflow {args.workflow_id!r} ({last})")
    folded = fold_log(log, upto_seq=args.seq)
    entry = next(e for e in log.entries if e.seq == args.seq)
    if args.json:
        _out(state_json(folded.state, runs_of([e.event for e in log.entries[:folded.applied]])))
        return _report(log, folded) if folded.problem is not None else 0
    _out(f"as of seq {args.seq} of 0-{log.entries[-1].seq} ({entry.tag})\n\n")
    _out(render_state(folded.state, await _payload_reprs(args, storage, folded.state), historical=True,
                      runs=runs_of([e.event for e in log.entries[:folded.applied]])))
    status = 0
    if folded.problem is not None:
        status = _report(log, folded)
    return status


async def _events(args, storage) -> int:
    log = await require_log(storage, args.workflow_id)
    first = next((e.event for e in log.entries if e.event is not None), None)
    t0 = first.ts if first is not None else None
    for entry in log.entries:
        if entry.seq < args.from_seq or (args.to_seq is not None and entry.seq > args.to_seq):
            continue
        _out((entry_json(entry) if args.json else render_event_line(entry, t0)) + "\n")
    return _report(log)


async def _timeline(args, storage) -> int:
    log = await require_log(storage, args.workflow_id)
    folded = fold_log(log)
    events = [e.event for e in log.entries[:folded.applied]]
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render_html(folded.state, events))
        _out(f"wrote {args.html}\n")
    elif args.json:
        _out(timeline_json(build_timeline(folded.state, events)))
    else:
        _out(render_timeline(folded.state, events, width=max(20, args.width), expand=args.expand))
    return _report(log, folded)


async def _verify(args, storage) -> int:
    if args.all == bool(args.workflow_ids):
        raise ToolError("verify needs workflow ids or --all (not both)")
    verdicts = await verify(storage, None if args.all else args.workflow_ids)
    if args.json:
        _out(json.dumps([{"workflow_id": v.workflow_id, "events": v.events, "problems": [
            {"kind": p.kind, "message": p.message, "seq": p.seq, "offset": p.offset, "location": p.location}
            for p in v.problems]} for v in verdicts], indent=1) + "\n")
    else:
        _out(render_verdicts(verdicts, storage.url))
    return 1 if any(v.problems for v in verdicts) else 0


async def _diff(args, storage) -> int:
    logs = [await require_log(storage, wid) for wid in (args.workflow_a, args.workflow_b)]
    folded = [fold_log(log) for log in logs]
    d = diff_states(folded[0].state, folded[1].state, threshold=args.threshold / 100)
    if args.json:
        _out(json.dumps({"a": d.a, "b": d.b, "differs": d.differs, "differences": d.lines,
                         "durations": d.durations, "fork": d.fork}, indent=1) + "\n")
    else:
        _out(render_diff(d))
    status = max(_report(log, f) for log, f in zip(logs, folded))
    return status or (1 if d.differs else 0)


async def _export(args, storage) -> int:
    log = await require_log(storage, args.workflow_id)
    if args.format == "jsonl":
        text = to_jsonl(log)
        folded = None
    else:
        folded = fold_log(log)
        text = chrome_trace_json(folded.state, log)
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            f.write(text)
        _err(f"wrote {args.output}")
    else:
        _out(text)
    return _report(log, folded)


_HANDLERS = {
    "show": _show,
    "events": _events,
    "at": _at,
    "timeline": _timeline,
    "verify": _verify,
    "diff": _diff,
    "export": _export,
}


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
