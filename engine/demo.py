"""``make demo``: a real durable workflow on local storage, then how to inspect it.

Counts words in a few documents in parallel, merges the counts, and ranks the
top words with a continuation (a task that returns a sub-DAG). Nothing is
killed. Pass a workflow id to reuse one: running a finished workflow again
returns its stored output without running a task.
"""

from __future__ import annotations

import os
import shlex
import sys
import time

import ray

import engine as workflow
from storage_backends import default_storage_url

DOCUMENTS = {
    "ray": "ray runs tasks and actors across a cluster ray schedules tasks",
    "durable": "a durable workflow survives a crash because every event is in the log",
    "replay": "status resume points and listings come from replaying the log",
    "engine": "the engine runs pending tasks on ray actors and appends events to the log",
}


@ray.remote
def count_words(name: str, text: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for word in text.split():
        counts[word] = counts.get(word, 0) + 1
    return counts


@ray.remote
def merge(*counts: dict[str, int]) -> dict[str, int]:
    merged: dict[str, int] = {}
    for part in counts:
        for word, n in part.items():
            merged[word] = merged.get(word, 0) + n
    return merged


@ray.remote
def rank(merged: dict[str, int], top: int):
    """Returns a sub-DAG (a continuation): the ranking runs as its own durable task."""
    return workflow.continuation(take_top.bind(sorted(merged.items(), key=lambda kv: (-kv[1], kv[0])), top))


@ray.remote
def take_top(items: list[tuple[str, int]], top: int) -> list[tuple[str, int]]:
    return items[:top]


def build_dag():
    counts = [count_words.bind(name, text) for name, text in DOCUMENTS.items()]
    # Top-level arguments arrive as values; a list of nodes would arrive as ObjectRefs (as in Ray).
    return rank.bind(merge.bind(*counts), 5)


def main() -> None:
    storage = os.environ.get("RAY_DURABLE_STORAGE") or default_storage_url()
    workflow_id = sys.argv[1] if len(sys.argv) > 1 else time.strftime("demo-wordcount-%Y%m%d-%H%M%S")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    workflow.init(storage)
    started = time.perf_counter()
    result = workflow.run(build_dag(), workflow_id=workflow_id, metadata={"demo": True})
    elapsed = time.perf_counter() - started
    print(f"\nworkflow {workflow_id!r} on {storage}: {workflow.get_status(workflow_id)} in {elapsed:.2f}s")
    for word, n in result:
        print(f"  {word:<10} {n}")
    tool = os.path.join(os.path.dirname(sys.executable), "ray-durable")
    print("\nInspect the run with the replay tool (no Ray needed):")
    print(f"  {shlex.quote(tool)} replay show {workflow_id} --storage {shlex.quote(storage)}")
    print(f"  {shlex.quote(tool)} replay timeline {workflow_id} --storage {shlex.quote(storage)}")
    print(f"  {shlex.quote(tool)} ui --storage {shlex.quote(storage)}   # then open the address it prints")
    ray.shutdown()


if __name__ == "__main__":
    main()
