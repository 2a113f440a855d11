"""``gc``: delete (or trim to their result) ended workflows, from storage alone (no Ray).

The same :func:`engine.store._retention.collect` as ``workflow.gc()`` and the manager's
background retention; this prints what it deleted, one line per workflow.
"""

from __future__ import annotations

import argparse
import datetime
import sys

from replay._format import fmt_size

from ..store._retention import COLLECTABLE, GcReport, collect, parse_duration, parse_statuses
from . import _format as fmt
from ._common import UsageError, out, with_storage

HELP = ("delete SUCCESSFUL, CANCELED and FAILED workflows that ended long enough ago, and print each one "
        "(reads and writes storage only; never touches RUNNING, PENDING or RESUMABLE ones)")
JSON_HELP = '{"dry_run", "deleted": [ids], "trimmed": [ids], "items": [{"workflow_id", "action", ...}]}'


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--status", dest="statuses", action="append", metavar="S[,S...]",
                   help=f"only these statuses (default: {','.join(s.value for s in COLLECTABLE)}); repeatable")
    p.add_argument("--older-than", type=_duration, default=0.0, metavar="AGE",
                   help="only workflows that ended at least AGE ago: 30d, 12h, 90m, 45s, 2w (default 0: any)")
    p.add_argument("--keep-output", action="store_true",
                   help="a SUCCESSFUL workflow keeps its log and result, losing only its intermediate outputs "
                        "(FAILED and CANCELED ones have no result and are deleted)")
    p.add_argument("--dry-run", action="store_true", help="delete nothing; print what would be deleted")


def _duration(text: str) -> float:
    try:
        return parse_duration(text, "--older-than")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def cmd_gc(args: argparse.Namespace) -> int:
    try:
        statuses = parse_statuses(args.statuses) if args.statuses else None
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    report = with_storage(args, lambda storage: collect(storage, statuses, args.older_than, args.keep_output,
                                                        args.dry_run))
    out(fmt.to_json(report.to_dict()) if args.json else render(report, args.storage_url))
    return 0


_VERB = {"deleted": "delete", "finished": "finish deleting", "outputs dropped": "drop outputs"}


def render(report: GcReport, storage_url: str) -> str:
    """A line per workflow, then a summary; in a dry run, what would be done."""
    if not report.items:
        return f"gc of {storage_url}: nothing to delete\n"
    rows = [["WORKFLOW", "ACTION", "STATUS", "ENDED", "BLOBS"]]
    for item in report.items:
        action = f"would {_VERB.get(item.action, item.action)}" if report.dry_run else item.action
        ended = "-" if item.end_time is None else datetime.datetime.fromtimestamp(item.end_time).strftime(
            "%Y-%m-%d %H:%M:%S")
        blobs = f"{len(item.blobs)} ({fmt_size(item.bytes)})"
        rows.append([item.workflow_id, action if item.action != "finished" else f"{action} (cut short before)",
                     item.status or "-", ended, blobs])
    total = sum(item.bytes for item in report.items)
    summary = (f"{'would delete' if report.dry_run else 'deleted'} {len(report.deleted)} workflow(s) and "
               f"{'would drop' if report.dry_run else 'dropped'} the intermediate outputs of "
               f"{len(report.trimmed)}: {fmt_size(total)} of blobs, from {storage_url}"
               + (" (dry run: nothing was deleted)" if report.dry_run else ""))
    return "\n".join(fmt.table(rows) + [summary]) + "\n"
