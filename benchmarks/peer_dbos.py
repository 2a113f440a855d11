"""DBOS Transact (SQLite) on the suite's peer shapes, for ``python -m benchmarks --peer dbos``.

    $RAY_DURABLE_DBOS_PYTHON benchmarks/peer_dbos.py [--quick]

Runs in a virtualenv of its own with ``pip install dbos`` (it never imports ray or ray-durable),
with DBOS's SQLite system database in a fresh temp dir (``system_database_url`` =
``sqlite:///...``, as DBOS documents for a single machine). The shapes are those of
benchmarks/_shapes.py, as DBOS writes them: a task is a ``@DBOS.step`` adding one to its input;

* chain: one workflow of N steps, each taking the previous output;
* fan-out/fan-in: one async workflow of N steps gathered with ``asyncio.gather``, then a sum step;
* one-task workflows: N workflows of one step, one after the other (submit -> result);
* many workflows: N one-step workflows started at once (``DBOS.start_workflow``), then all results;

and the bytes the SQLite database grew by per one-task workflow (its WAL checkpointed first). Steps run in this process
(DBOS has no cluster scheduler): there is no plain baseline here; the suite compares against
ray-durable and plain Ray. Prints one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid

from dbos import DBOS, DBOSConfig, SetWorkflowID


@DBOS.step()
def inc(x: int) -> int:
    return x + 1


@DBOS.step()
async def inc_async(x: int) -> int:
    return x + 1


@DBOS.step()
async def total_async(xs: list[int]) -> int:
    return sum(xs)


@DBOS.workflow()
def chain(n: int) -> int:
    value = 0
    for _ in range(n):
        value = inc(value)
    return value


@DBOS.workflow()
async def fan(n: int) -> int:
    values = await asyncio.gather(*(inc_async(i) for i in range(n)))
    return await total_async(list(values))


@DBOS.workflow()
def one(x: int) -> int:
    return inc(x)


def _run(workflow, *args, tag: str):
    with SetWorkflowID(f"{tag}-{uuid.uuid4().hex[:8]}"):
        return workflow(*args)


def db_bytes(path: str) -> int:
    """Bytes the SQLite database holds, its write-ahead log folded in first (``wal_checkpoint``)."""
    with contextlib.closing(sqlite3.connect(path)) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, size = con.execute("PRAGMA page_count").fetchone()[0], con.execute("PRAGMA page_size").fetchone()[0]
    return pages * size


def measure(quick: bool) -> dict:
    # benchmarks/_shapes.py's PEER_SIZES (this file runs without Ray, so it cannot import that one)
    chain_n, fan_n, one_n, many_n, repeats = (50, 100, 50, 100, 2) if quick else (200, 200, 100, 200, 3)
    root = tempfile.mkdtemp(prefix="dbos-bench-")
    db = os.path.join(root, "dbos.sqlite")
    config: DBOSConfig = {"name": "ray-durable-bench", "system_database_url": f"sqlite:///{db}",
                          "run_admin_server": False}
    DBOS(config=config)
    DBOS.launch()
    for i in range(10):  # warm up
        assert _run(one, i, tag="warm") == i + 1
    chains, fans, ones, many = [], [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        assert _run(chain, chain_n, tag="chain") == chain_n
        chains.append((time.perf_counter() - start) / chain_n)
        start = time.perf_counter()
        assert asyncio.run(_fan(fan_n)) == fan_n * (fan_n + 1) // 2  # inc(i) for i < n
        fans.append((time.perf_counter() - start) / (fan_n + 1))
        start = time.perf_counter()
        for i in range(one_n):
            assert _run(one, i, tag="one") == i + 1
        ones.append((time.perf_counter() - start) / one_n)
        start = time.perf_counter()
        handles = []
        for i in range(many_n):
            with SetWorkflowID(f"many-{uuid.uuid4().hex[:8]}"):
                handles.append(DBOS.start_workflow(one, i))
        assert [h.get_result() for h in handles] == [i + 1 for i in range(many_n)]
        many.append(many_n / (time.perf_counter() - start))
    # bytes per task: a fresh batch of one-task workflows (SQLite grows by whole pages: 200 of them)
    before = db_bytes(db)
    for i in range(200):
        _run(one, i, tag="bytes")
    grown = db_bytes(db) - before
    DBOS.destroy()
    shutil.rmtree(root, ignore_errors=True)
    import dbos as dbos_module

    return {
        "system": "dbos", "version": getattr(dbos_module, "__version__", None) or _version(),
        "storage": "SQLite (system database)", "repeats": repeats,
        "chain_tasks": chain_n, "fan_tasks": fan_n + 1, "one_task_workflows": one_n, "many_workflows": many_n,
        "chain_ms_per_task": [v * 1e3 for v in chains], "fan_ms_per_task": [v * 1e3 for v in fans],
        "one_task_ms": [v * 1e3 for v in ones], "many_workflows_per_s": many,
        "bytes_per_task": grown / 200, "chain_ms_per_task_median": statistics.median(chains) * 1e3,
    }


async def _fan(n: int) -> int:
    with SetWorkflowID(f"fan-{uuid.uuid4().hex[:8]}"):
        return await fan(n)


def _version() -> str | None:
    from importlib.metadata import version

    return version("dbos")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps(measure(args.quick)))


if __name__ == "__main__":
    main()
