"""The reliability suite: real faults (kill -9, torn bytes, S3 faults, a full or read-only
disk, races), each test proving one promise of RELIABILITY.md.

Two sizes. ``make test`` runs the reduced set (a few seeds per matrix); ``make
test-reliability`` sets ``RAY_DURABLE_RELIABILITY=full`` and runs every seed. Whatever a
test injects it counts with :func:`count`; at the end of the session the totals are printed
and written to ``$RAY_DURABLE_FIGURES`` (JSON), the figures RELIABILITY.md quotes.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest

from tests.reliability._figures import FULL, figures


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not figures:
        return
    terminalreporter.section("reliability figures" + (" (full run)" if FULL else " (reduced set)"))
    for name, value in sorted(figures.items()):
        terminalreporter.write_line(f"{name:<56} {value}")
    path = os.environ.get("RAY_DURABLE_FIGURES")
    if path:
        with open(path, "w") as f:
            json.dump({"full": FULL, "exit_status": int(exitstatus), "figures": dict(sorted(figures.items()))},
                      f, indent=2)
            f.write("\n")


@pytest.fixture(scope="module", autouse=True)
def _managers_end_with_their_module():
    """Each test here gives its storages a manager of their own (a detached actor: a process
    each); the ones a module started are killed when it ends, so they do not pile up on the
    session's cluster (dozens of idle workers slow everything and make the raylet warn)."""
    before = _manager_names()
    yield
    import ray

    from engine._names import NAMESPACE

    for name in _manager_names() - before:
        try:
            ray.kill(ray.get_actor(name, namespace=NAMESPACE), no_restart=True)
        except ValueError:
            pass


def _manager_names() -> set[str]:
    import ray

    if not ray.is_initialized():
        return set()
    from ray.util import list_named_actors

    return {a["name"] for a in list_named_actors(all_namespaces=True)
            if a.get("namespace") == "ray_durable" and a["name"].startswith("ray-durable-manager-")}


@pytest.fixture
def wid():
    return "rel-" + uuid.uuid4().hex[:12]
