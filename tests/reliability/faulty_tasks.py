"""Task functions for the reliability tests (a module, so Ray workers can import them)."""

import os

import ray


def note(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


def lines(path: str) -> list[str]:
    return open(path).read().split() if os.path.exists(path) else []


@ray.remote
def step(prev: int, side: str, name: str) -> int:
    """One link of a chain: counts itself in ``side``, returns ``prev + 1``."""
    note(side, name)
    return prev + 1


@ray.remote
def grow(prev: bytes, size: int, side: str, name: str) -> bytes:
    """A link of a chain whose every output is ``size`` bytes (stored as a blob beyond 16 KiB)."""
    note(side, name)
    return bytes([len(prev) % 251]) * size


@ray.remote
def env_value(name: str, *_after):
    """The value of env var ``name`` in the task's worker (after ``_after``, its inputs)."""
    return os.environ.get(name)
