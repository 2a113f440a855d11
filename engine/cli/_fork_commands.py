"""``fork`` (one workflow, or every FAILED one) and ``replay check``.

``fork`` reads storage first (so an unknown source or an existing new id is answered with no
Ray process), then joins or starts Ray to run the fork. ``replay check`` needs no Ray
cluster: it imports the module that builds the DAG (``--dag module:function``), builds the
graph and compares it with each log.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any

from replay import WorkflowStatus

from .._names import validate_workflow_id
from ..exceptions import WorkflowNotFoundError
from ..store._status import list_workflows
from . import _format as fmt
from ._cluster_commands import _outcome, connect
from ._common import PROG, UsageError, err, out, status_names, with_storage


def add_fork_parser(command: Any) -> None:
    """``ray-durable fork``'s arguments (``command`` makes a subparser with the storage options)."""
    p = command("fork", "fork a workflow into a new one that reuses its completed tasks and runs the "
                        "rest (or re-runs from --from-task); wait and print its output. With --status: "
                        "fork every workflow with that status (e.g. FAILED) from its failed task",
                cluster=True, json_help='{"forks": [{"source", "workflow_id", "outcome", "detail"}]}')
    p.add_argument("source", metavar="SOURCE", nargs="?", help="the workflow to fork")
    p.add_argument("new", metavar="NEW", nargs="?", help="the fork's id (must not exist)")
    p.add_argument("--from-task", metavar="TASK",
                   help="re-run this task and everything downstream of it, even if they completed")
    p.add_argument("--dag", metavar="MODULE:FUNCTION",
                   help="run this DAG (new code or arguments) instead of the source's: FUNCTION() returns "
                        "it (or MODULE:NAME is the DAG); the current directory is importable")
    p.add_argument("--status", dest="statuses", nargs="+", action="extend", metavar="STATUS",
                   help="bulk: fork every workflow with these statuses (each as SOURCE.fork-N, N the "
                        "first free number); FAILED ones re-run from their failed task")
    p.add_argument("--since", metavar="WHEN", type=fmt.parse_since,
                   help="bulk: only workflows started since WHEN (90s, 30m, 2h, 7d, or a date/time)")


def add_check_parser(prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"{prog} replay check",
        description="Say, without running anything, which completed tasks a fork (or run) of each "
                    "workflow with the DAG of --dag would reuse, which tasks it would run, and why. "
                    "Exit status: 0 every completed task is reused, 1 a mismatch (a completed task "
                    "would run again or is gone from the DAG), 2 usage error or unknown workflow.")
    p.add_argument("workflow_ids", metavar="WID", nargs="*", help="workflows to check")
    p.add_argument("--all", action="store_true", help="every workflow in the storage (a folder of golden logs)")
    p.add_argument("--dag", metavar="MODULE:FUNCTION", required=True,
                   help="FUNCTION() returns the DAG (or MODULE:NAME is the DAG); the current directory is "
                        "importable")
    p.add_argument("--from-task", metavar="TASK", help="predict a fork from this task")
    p.add_argument("--json", action="store_true", help='[{"workflow_id", "ok", "reused", "rerun", "gone", '
                                                      '"mismatches"}, ...]')
    group = p.add_argument_group("storage")
    group.add_argument("--storage", metavar="URL", help="a path, file://PATH or s3://BUCKET/PREFIX (default: "
                                                        "$RAY_DURABLE_STORAGE, else /tmp/ray/workflow_data)")
    group.add_argument("--endpoint-url", metavar="URL", help="S3 endpoint, for S3-compatible stores")
    group.add_argument("--region", metavar="NAME", help="S3 region")
    return p


def load_dag(spec: str) -> Any:
    """``module:function`` -> the DAG ``function()`` returns (or ``module:name`` is the DAG)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise UsageError(f"--dag {spec!r}: expected MODULE:FUNCTION, e.g. mypkg.pipeline:build_dag")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(f"--dag {spec!r}: cannot import {module_name!r} ({exc}); run from the directory "
                         "that holds it or set PYTHONPATH") from None
    target = module
    for part in attr.split("."):
        if not hasattr(target, part):
            raise UsageError(f"--dag {spec!r}: module {module_name!r} has no {attr!r}")
        target = getattr(target, part)
    dag = target() if callable(target) and not hasattr(target, "_bound_args") else target
    from ray.dag import DAGNode

    if not isinstance(dag, DAGNode):
        raise UsageError(f"--dag {spec!r} gave a {type(dag).__name__}, not a DAG made with f.bind(...)")
    return dag


def cmd_fork(args: argparse.Namespace) -> int:
    if args.statuses:
        if args.source or args.new or args.from_task:
            raise UsageError("--status forks many workflows: give no SOURCE, NEW or --from-task with it")
        return _fork_many(args)
    if args.since is not None:
        raise UsageError("--since goes with --status (bulk fork)")
    if not args.source or not args.new:
        raise UsageError("give SOURCE and NEW (fork one workflow), or --status STATUS (fork many)")
    for wid in (args.source, args.new):
        _check_id(wid)
    dag = load_dag(args.dag) if args.dag else None
    existing = with_storage(args, lambda storage: _existing(storage, [args.source, args.new]))
    if args.source not in existing:
        raise WorkflowNotFoundError(args.source, args.storage_url)
    if args.new in existing:
        raise UsageError(f"a workflow {args.new!r} already exists in {args.storage_url}; pick another NEW id")
    workflow = connect(args)
    err(f"forking workflow {args.source!r} into {args.new!r}"
        + (f" from task {args.from_task!r}" if args.from_task else "") + " ...")
    output = workflow.fork(args.source, args.new, from_task=args.from_task, dag=dag)
    if args.json:
        out(fmt.to_json({"forks": [{"source": args.source, "workflow_id": args.new,
                                                 "outcome": "SUCCESSFUL", "output": repr(output)}]}))
    else:
        out(repr(output) + "\n")
    return 0


def _check_id(wid: str) -> None:
    try:
        validate_workflow_id(wid)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


async def _existing(storage, ids: list[str]) -> set[str]:
    return {wid for wid in ids if await storage.exists(wid)}


def fork_ids(sources: list[str], taken: set[str]) -> dict[str, str]:
    """``SOURCE.fork-N`` for each source, N the first number not taken (so a second bulk fork of
    the same workflows makes ``.fork-2``)."""
    ids = {}
    for source in sources:
        n = 1
        while f"{source}.fork-{n}" in taken:
            n += 1
        ids[source] = f"{source}.fork-{n}"
        taken.add(ids[source])
    return ids


def _fork_many(args: argparse.Namespace) -> int:
    statuses = status_names(args.statuses)
    wanted = {WorkflowStatus(s) for s in statuses}
    dag = load_dag(args.dag) if args.dag else None

    async def candidates(storage):
        rows = await list_workflows(storage, wanted)
        return rows, set(await storage.list_logs())

    rows, taken = with_storage(args, candidates)
    if args.since is not None:
        rows = [r for r in rows if r.start_time is not None and r.start_time >= args.since]
    rows = sorted(rows, key=lambda r: r.workflow_id)
    if not rows:
        if args.json:
            out(fmt.to_json({"forks": []}))
        else:
            out(f"no {' or '.join(statuses)} workflows to fork in {args.storage_url}\n")
        return 0
    new_ids = fork_ids([r.workflow_id for r in rows], taken)
    workflow = connect(args)
    import ray

    started: dict[Any, tuple[str, str]] = {}
    results: list[dict[str, str]] = []
    for row in rows:
        source, new = row.workflow_id, new_ids[row.workflow_id]
        try:
            validate_workflow_id(new)
            ref = workflow.fork_async(source, new, from_task=row.failed_task, dag=dag)
        except Exception as exc:  # noqa: BLE001 - reported per workflow, the others go on
            results.append({"source": source, "workflow_id": new, "outcome": "NOT FORKED",
                            "detail": fmt.one_line(exc)})
            err(f"{source}: not forked: {fmt.one_line(exc)}")
            continue
        started[ref] = (source, new)
        err(f"{source}: forked as {new}" + (f" from task {row.failed_task}" if row.failed_task else ""))
    pending = list(started)
    while pending:
        ready, pending = ray.wait(pending, num_returns=1)
        source, new = started[ready[0]]
        outcome, detail = _outcome(workflow, new, ready[0])
        results.append({"source": source, "workflow_id": new, "outcome": outcome, "detail": detail})
        err(f"{new}: {outcome}" + (f": {detail}" if detail else ""))
    ok = sum(r["outcome"] == "SUCCESSFUL" for r in results)
    if args.json:
        out(fmt.to_json({"forks": results}))
    else:
        for r in sorted(results, key=lambda r: r["source"]):
            out(f"{r['source']} -> {r['workflow_id']}: {r['outcome']}\n")
        out(f"forked {len(results)} workflow{'s' if len(results) != 1 else ''}: {ok} SUCCESSFUL\n")
    return 0 if ok == len(results) else 1


def check_main(argv: list[str], prog: str = PROG) -> int:
    """``ray-durable replay check``: exit 0 all reused, 1 a mismatch, 2 usage or unknown workflow."""
    args = add_check_parser(prog).parse_args(argv)
    try:
        if bool(args.workflow_ids) == bool(args.all):
            raise UsageError("give WID ... or --all")
        for wid in args.workflow_ids:
            _check_id(wid)
        dag = load_dag(args.dag)
        plans = with_storage(args, lambda storage: _plans(storage, dag, args))
    except UsageError as exc:
        err(f"{prog} replay check: error: {exc}")
        return 2
    except (WorkflowNotFoundError, ValueError, TypeError) as exc:
        err(f"{prog} replay check: error: {fmt.one_line(exc)}")
        return 2
    if args.json:
        out(fmt.to_json([p.to_dict() for p in plans]))
    else:
        out("".join(p.render() for p in plans))
        if len(plans) > 1:
            bad = sum(not p.ok for p in plans)
            out(f"checked {len(plans)} workflows: {len(plans) - bad} OK, {bad} mismatched\n")
    return 0 if all(p.ok for p in plans) else 1


async def _plans(storage, dag: Any, args: argparse.Namespace) -> list:
    from ..api._fork import check_in_storage

    ids = args.workflow_ids or await storage.list_logs()
    if not ids:
        raise UsageError(f"no workflows in {args.storage_url}")
    return [await check_in_storage(storage, dag, wid, args.from_task) for wid in ids]
