"""The benchmark suite's runner: ``python -m benchmarks`` (see benchmarks/__main__.py).

Each benchmark runs in a child process of its own (``python -m benchmarks._harness --child
NAME``), so each gets a fresh Ray and a crash or a hang in one cannot take the others with it.
The child calls the benchmark's ``bench(settings)`` (a list of figures, see
``benchmarks._common.figure``) and writes them to a JSON file; the parent shows progress, draws
one chart per benchmark (``benchmarks._charts``), prints one summary table (also written as
``summary.md``) and writes ``results.json``: the machine, the versions, and every figure with
min/median/max over repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import importlib.metadata
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
DEFAULT_OUT = os.path.join(BENCH_DIR, "results", "suite")

# name -> (module in benchmarks/, function): the order they run in.
BENCHMARKS = {
    "storage_throughput": ("storage_throughput", "bench"),
    "replay_speed": ("_adapters", "replay_bench"),
    "engine_overhead": ("engine_overhead", "bench"),
    "throughput": ("_adapters", "throughput_bench"),
    "list_scale": ("list_scale", "bench"),
    "events": ("events", "bench"),
    "recovery": ("recovery", "bench"),
}
PEERS = ("ray-workflow", "dbos")
PEER_BENCHMARK = ("_peers", "bench")  # runs only when --peer is given: never in CI
VERSIONED = ("ray-durable", "ray", "msgspec", "aiobotocore", "moto", "matplotlib", "rich")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Run ray-durable's benchmarks, each against its baseline measured in the same run; "
                    "print one summary table; write results.json and one PNG chart per benchmark.")
    parser.add_argument("--quick", action="store_true", help="the small run (under 3 minutes on 2 cores)")
    parser.add_argument("--only", nargs="+", metavar="NAME", action="extend", default=[],
                        help=f"run only these ({', '.join([*BENCHMARKS, 'peers'])})")
    parser.add_argument("--storage", metavar="URL", default=None,
                        help="also measure this storage (a path, file://PATH or s3://BUCKET/PREFIX): the "
                             "engine benchmarks run on it instead of a temp dir; a fresh prefix is used under it")
    parser.add_argument("--out", metavar="DIR", default=DEFAULT_OUT,
                        help="where results.json, the charts and the logs go (default benchmarks/results/suite)")
    parser.add_argument("--s3-latency-ms", type=float, default=20.0, metavar="MS",
                        help="one-way delay the proxy in front of moto_server adds, ms (default 20)")
    parser.add_argument("--peer", choices=PEERS, action="append", default=[],
                        help="also measure a peer side by side on the same shapes (opt-in; repeatable)")
    parser.add_argument("--ray-workflow-python", metavar="PYTHON", default=None,
                        help="python of a virtualenv with ray==2.47.1 and pyarrow (default: "
                             "$RAY_DURABLE_RAY_WORKFLOW_PYTHON, else .venv-ray-workflow/bin/python, "
                             "else /tmp/rw247/bin/python)")
    parser.add_argument("--dbos-python", metavar="PYTHON", default=None,
                        help="python of a virtualenv with dbos (default: $RAY_DURABLE_DBOS_PYTHON, else "
                             ".venv-dbos/bin/python, else /tmp/dbosvenv/bin/python)")
    parser.add_argument("--retries", type=int, default=1, metavar="N",
                        help="run a failed benchmark again up to N times (default 1; its errors are kept)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--settings", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    known = {*BENCHMARKS, "peers"}
    unknown = [name for name in args.only if name not in known]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(map(repr, unknown))} for --only; "
                     f"choose from {', '.join(sorted(known))}")
    if args.retries < 0:
        parser.error(f"--retries must be >= 0, got {args.retries}")
    if args.s3_latency_ms < 0:
        parser.error(f"--s3-latency-ms must be >= 0, got {args.s3_latency_ms:g}")
    if args.storage is not None:
        from storage_backends import StorageError, open_storage

        try:
            open_storage(args.storage)  # checks the URL only: nothing is created or contacted
        except (StorageError, ValueError) as exc:
            parser.error(f"--storage {args.storage!r}: {exc}")
    if "peers" in args.only and not args.peer:
        parser.error("--only peers needs --peer ray-workflow and/or --peer dbos")
    return args


def selected(args: argparse.Namespace) -> list[str]:
    names = [name for name in BENCHMARKS if not args.only or name in args.only]
    if args.peer and (not args.only or "peers" in args.only):
        names.append("peers")
    return names


def target(name: str) -> tuple[str, str]:
    return PEER_BENCHMARK if name == "peers" else BENCHMARKS[name]


# --- the child: one benchmark ------------------------------------------------------------------


def run_child(args: argparse.Namespace) -> int:
    from benchmarks._common import Settings

    # stopped (the suite interrupted): unwind, so each benchmark's finally stops its Ray and moto_server
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    sys.path.insert(0, BENCH_DIR)  # the scripts import their helpers as top-level modules
    module_name, function = target(args.child)
    bench = getattr(importlib.import_module(module_name), function)
    settings = Settings(**json.loads(args.settings))
    result = bench(settings)
    # a list of figures, or {"figures": [...], "notes": [...]} when part of it could not be measured
    figures, notes = (result["figures"], result.get("notes", [])) if isinstance(result, dict) else (result, [])
    for fig in figures:
        if not isinstance(fig, dict) or not {"name", "unit", "min", "median", "max", "samples"} <= fig.keys():
            raise TypeError(f"{module_name}.{function} returned {fig!r}, not a figure (benchmarks._common.figure)")
    with open(args.result, "w") as f:
        json.dump({"figures": figures, "notes": notes}, f)
    return 0


# --- the parent: every benchmark, progress, results.json, charts, the table --------------------


def machine() -> dict:
    cpu = platform.processor() or platform.machine()
    memory_gib = None
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
        with open("/proc/meminfo") as f:
            memory_gib = round(int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) / 2**20, 1)
    except OSError:
        pass
    return {"hostname": platform.node(), "system": f"{platform.system()} {platform.release()}",
            "cpu": cpu, "cpus": os.cpu_count(), "memory_gib": memory_gib}


def versions() -> dict:
    found = {"python": platform.python_version()}
    for package in VERSIONED:
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    try:
        found["git_commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                                             capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        found["git_commit"] = None
    return found


def _last_line(path: str) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 4096))
            lines = [line for line in f.read().decode(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1].strip()[:90] if lines else ""


def run_one(name: str, settings: dict, out: str, progress, task) -> dict:
    """Run benchmark ``name`` in a child process; its figures, or why there are none."""
    logs = os.path.join(out, "logs")
    os.makedirs(logs, exist_ok=True)
    log_path, result_path = os.path.join(logs, f"{name}.log"), os.path.join(logs, f"{name}.json")
    if os.path.exists(result_path):
        os.remove(result_path)
    command = [sys.executable, "-m", "benchmarks._harness", "--child", name,
               "--settings", json.dumps(settings), "--result", result_path]
    env = dict(os.environ, PYTHONUNBUFFERED="1", RAY_AUTH_MODE=os.environ.get("RAY_AUTH_MODE", "disabled"))
    started = time.monotonic()
    with open(log_path, "w") as log:
        child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        try:
            while child.poll() is None:
                progress.update(task, description=f"{name}: {_last_line(log_path)}")
                time.sleep(0.5)
        except KeyboardInterrupt:
            child.terminate()  # the child unwinds (see run_child); never left running on its own
            try:
                child.wait(timeout=60)
            except subprocess.TimeoutExpired:
                child.kill()
            raise
    seconds = time.monotonic() - started
    record = {"seconds": round(seconds, 1), "log": os.path.relpath(log_path, out)}
    if child.returncode == 0 and os.path.exists(result_path):
        with open(result_path) as f:
            result = json.load(f)
        return {**record, "status": "ok", "figures": result["figures"], "notes": result["notes"]}
    return {**record, "status": "failed", "figures": [],
            "error": f"exit code {child.returncode}; last line: {_last_line(log_path)} (see {log_path})"}


def summary_table(figures: list[dict], runs: dict):
    from rich.table import Table

    table = Table(title="ray-durable benchmarks: medians over repeats (results.json has every figure)")
    for column, justify in (("benchmark", "left"), ("figure", "left"), ("median", "right"),
                            ("min … max", "right"), ("unit", "left"), ("n", "right")):
        table.add_column(column, justify=justify, overflow="fold")
    for fig in figures:
        if fig.get("summary"):
            table.add_row(fig["benchmark"], fig["name"], _num(fig["median"]),
                          f"{_num(fig['min'])} … {_num(fig['max'])}", fig["unit"], str(fig["repeats"]))
    for name, run in runs.items():
        if run["status"] != "ok":
            table.add_row(name, f"[red]FAILED[/red]: {run['error']}", "", "", "", "")
        for note in run.get("notes", []):
            table.add_row(name, f"[yellow]not measured[/yellow]: {note}", "", "", "", "")
    return table


def summary_markdown(figures: list[dict], runs: dict) -> str:
    """The summary table as Markdown (summary.md), for the README."""
    lines = ["| benchmark | figure | median | min … max | unit | n |", "| --- | --- | ---: | ---: | --- | ---: |"]
    for fig in figures:
        if fig.get("summary"):
            lines.append(f"| {fig['benchmark']} | {fig['name']} | {_num(fig['median'])} | "
                         f"{_num(fig['min'])} … {_num(fig['max'])} | {fig['unit']} | {fig['repeats']} |")
    for name, run in runs.items():
        if run["status"] != "ok":
            lines.append(f"| {name} | FAILED: {run['error']} | | | | |")
        for note in run.get("notes", []):
            lines.append(f"| {name} | not measured: {note} | | | | |")
    return "\n".join(lines) + "\n"


def _num(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) >= 0.01 else f"{value:.2e}"


def run_suite(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from benchmarks import _charts
    from benchmarks._common import Settings

    settings = dataclasses.asdict(Settings(
        quick=args.quick, storage=args.storage, s3_latency_ms=args.s3_latency_ms, peers=list(args.peer),
        ray_workflow_python=args.ray_workflow_python, dbos_python=args.dbos_python))
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    console = Console() if sys.stdout.isatty() else Console(width=150)
    names = selected(args)
    started = datetime.datetime.now(datetime.timezone.utc)
    found = versions()  # at the start: what the run measured, even if the tree changes meanwhile
    runs: dict[str, dict] = {}
    with Progress(SpinnerColumn(), TextColumn("[bold]{task.fields[step]}"), BarColumn(bar_width=12),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console,
                  transient=False, disable=not console.is_terminal) as progress:
        for i, name in enumerate(names, 1):
            step = f"[{i}/{len(names)}] {name}"
            if not console.is_terminal:  # a log, not a screen: a line as each starts and ends
                console.print(f"{step}: running (log: {os.path.join(out, 'logs', name + '.log')})")
            task = progress.add_task(name, total=1, step=step)
            run = run_one(name, settings, out, progress, task)
            for _ in range(args.retries):
                if run["status"] == "ok":
                    break
                # a shared machine can fail a start (Ray's node startup timing out under load): the
                # error is kept in results.json, so a retry never hides a real failure
                errors = run.get("earlier_errors", []) + [run["error"]]
                run = {**run_one(name, settings, out, progress, task), "earlier_errors": errors}
            if run["figures"]:
                chart = os.path.join(out, f"{name}.png")
                _charts.draw(name, run["figures"], chart, settings)
                run["chart"] = os.path.basename(chart)
            runs[name] = run
            state = "done" if run["status"] == "ok" else "[red]FAILED[/red]"
            outcome = f"{state} in {run['seconds']:.0f}s, {len(run['figures'])} figures"
            progress.update(task, completed=1, description=outcome)
            if not console.is_terminal:
                console.print(f"{step}: {outcome}")
    figures = [fig for run in runs.values() for fig in run["figures"]]
    report = {
        "suite": "ray-durable benchmarks",
        "command": "python -m benchmarks " + " ".join(shlex.quote(a) for a in (args.argv or [])),
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "quick": args.quick,
        "settings": settings,
        "machine": machine(),
        "versions": found,
        "benchmarks": {name: {k: v for k, v in run.items() if k != "figures"} for name, run in runs.items()},
        "figures": figures,
    }
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary_markdown(figures, runs))
    console.print(summary_table(figures, runs))
    console.print(f"results: {os.path.join(out, 'results.json')}; charts: "
                  f"{', '.join(run['chart'] for run in runs.values() if 'chart' in run) or 'none'}")
    return 0 if all(run["status"] == "ok" for run in runs.values()) else 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    args.argv = argv
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.child:
        return run_child(args)
    return run_suite(args)


if __name__ == "__main__":
    sys.exit(main())
