"""The engine benchmark's workload shapes, for ray-durable and for ray.workflow alike.

Imports only ``ray``, so ray_workflow_baseline.py can run the very same shapes
on Ray 2.47. Each ``durable_*`` takes the workflow module (``engine`` or
``ray.workflow``: both have ``run(dag, workflow_id=...)``). Every function
returns seconds for the whole shape.
"""

from __future__ import annotations

import sys
import time

import ray
import ray.cloudpickle

# The peer comparison's sizes (python -m benchmarks --peer ...): (chain tasks, fan-out width,
# one-task workflows in turn, workflows at once, repeats). benchmarks/peer_dbos.py, which cannot
# import this module (it runs without Ray), repeats them.
PEER_SIZES = {"quick": (50, 100, 50, 100, 2), "full": (200, 200, 100, 200, 3)}

# Workers unpickle the tasks below by value: they need not find this file on their path.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


@ray.remote
def inc(x):
    return x + 1


@ray.remote
def total(*xs):
    return sum(xs)


def plain_chain(n: int) -> float:
    start = time.perf_counter()
    ref = inc.remote(0)
    for _ in range(n - 1):
        ref = inc.remote(ref)
    assert ray.get(ref) == n
    return time.perf_counter() - start


def durable_chain(workflow, n: int, tag: str) -> float:
    node = inc.bind(0)
    for _ in range(n - 1):
        node = inc.bind(node)
    start = time.perf_counter()
    assert workflow.run(node, workflow_id=f"bench-chain-{tag}") == n
    return time.perf_counter() - start


def plain_fan(n: int) -> float:
    start = time.perf_counter()
    assert ray.get(total.remote(*[inc.remote(i) for i in range(n)])) == n * (n + 1) // 2
    return time.perf_counter() - start


def durable_fan(workflow, n: int, tag: str) -> float:
    dag = total.bind(*[inc.bind(i) for i in range(n)])
    start = time.perf_counter()
    assert workflow.run(dag, workflow_id=f"bench-fan-{tag}") == n * (n + 1) // 2
    return time.perf_counter() - start


def plain_one_task(count: int) -> float:
    start = time.perf_counter()
    for i in range(count):
        assert ray.get(inc.remote(i)) == i + 1
    return time.perf_counter() - start


def durable_one_task(workflow, count: int, tag: str) -> float:
    start = time.perf_counter()
    for i in range(count):
        assert workflow.run(inc.bind(i), workflow_id=f"bench-one-{tag}-{i}") == i + 1
    return time.perf_counter() - start


def plain_many(count: int) -> float:
    start = time.perf_counter()
    assert ray.get([inc.remote(i) for i in range(count)]) == [i + 1 for i in range(count)]
    return time.perf_counter() - start


def durable_many(workflow, count: int, tag: str) -> float:
    """``count`` one-task workflows submitted at once (``run_async``), then every result."""
    start = time.perf_counter()
    refs = [workflow.run_async(inc.bind(i), workflow_id=f"bench-many-{tag}-{i}") for i in range(count)]
    assert ray.get(refs) == [i + 1 for i in range(count)]
    return time.perf_counter() - start


def tree_bytes(path: str) -> int:
    """Bytes in the files under ``path`` (what a local storage holds)."""
    import os

    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files
               if os.path.isfile(os.path.join(d, f)))
