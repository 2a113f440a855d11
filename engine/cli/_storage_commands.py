"""``list``, ``status``, ``reindex`` and ``ui``: answered from storage alone, with no Ray process.

Statuses come from :func:`engine.store._status.storage_status`, the one rule the UI uses too:
RUNNING or PENDING in a log counts only while its owner's lease is live, else RESUMABLE.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from replay import WorkflowStatus

from ..exceptions import WorkflowNotFoundError
from ..store import _index
from ..store._status import Description, WorkflowSummary, describe, list_workflows
from . import _format as fmt
from ._common import err, flush_results, out, status_names, storage_args, with_storage

_DESCENDING = {"start", "end", "duration"}


def cmd_list(args: argparse.Namespace) -> int:
    statuses = status_names(args.statuses)
    wanted = {WorkflowStatus(s) for s in statuses} if statuses else None
    rows = with_storage(args, lambda storage: list_workflows(storage, wanted))
    if args.since is not None:
        rows = [row for row in rows if row.start_time is not None and row.start_time >= args.since]
    rows = sort_rows(rows, args.sort, args.reverse)
    shown = rows[: args.limit] if args.limit else rows
    if args.json:
        out(fmt.summaries_json(shown))
    else:
        out(fmt.summaries_table(shown, args.storage_url, statuses, total=len(rows)))
    return 0


def sort_rows(rows: list[WorkflowSummary], key: str, reverse: bool = False) -> list[WorkflowSummary]:
    """Rows by ``key``: start, end, duration latest/longest first (unknowns last); id, status A-Z."""
    if key == "id":
        out = sorted(rows, key=lambda r: r.workflow_id)
    elif key == "status":
        out = sorted(rows, key=lambda r: (str(r.status), r.workflow_id))
    else:
        def value(row: WorkflowSummary) -> float | None:
            return row.start_time if key == "start" else row.end_time if key == "end" else row.duration
        known = sorted((r for r in rows if value(r) is not None), key=lambda r: (value(r), r.workflow_id),
                       reverse=key in _DESCENDING)
        out = known + sorted((r for r in rows if value(r) is None), key=lambda r: r.workflow_id)
    return out[::-1] if reverse else out


def read_workflow(args: argparse.Namespace) -> Description:
    """The workflow the command line names, from storage; WorkflowNotFoundError if there is none."""
    found = with_storage(args, lambda storage: describe(storage, args.workflow_id))
    if found is None:
        raise WorkflowNotFoundError(args.workflow_id, args.storage_url)
    return found


def cmd_status(args: argparse.Namespace) -> int:
    found = read_workflow(args)
    render = fmt.status_json if args.json else fmt.status_text
    out(render(found, args.storage_url, time.time()))
    return 0


def cmd_reindex(args: argparse.Namespace) -> int:
    progress = fmt.Progress("reindex")
    counts = with_storage(args, lambda storage: _index.rebuild(storage, progress))
    if args.json:
        out(fmt.to_json(counts))
        return 0
    labels = {"workflows": "workflows", "final": "finished (SUCCESSFUL or CANCELED)", "failed": "FAILED"}
    details = ", ".join(f"{value} {labels.get(key, key)}" for key, value in counts.items())
    out(f"rebuilt the status index of {args.storage_url}: {details}\n")
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    """``ray-durable ui``: serve the web UI until interrupted."""
    from ..store._sync import run_sync, storage_for
    from ..ui import UiServer

    url, options = storage_args(args)
    run_sync(storage_for(url, options).list_logs())  # unreadable storage fails here, not on every page
    server = UiServer((args.host, args.port), url, options, args.load_payloads)
    if args.json:
        out(json.dumps({"url": server.url, "storage": url}) + "\n")  # one line, then serving
        flush_results()
    else:
        err(f"ray-durable ui: serving {url} at {server.url} (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0
