"""What the reliability suite injected and tried, counted for RELIABILITY.md's figures.

``make test`` runs the reduced set (a few seeds per matrix); ``make test-reliability`` sets
``RAY_DURABLE_RELIABILITY=full`` and runs every seed. The totals are printed at the end of
the session and written to ``$RAY_DURABLE_FIGURES`` (JSON) if it is set.
"""

from __future__ import annotations

import os
import threading
from collections import Counter

FULL = os.environ.get("RAY_DURABLE_RELIABILITY", "").lower() == "full"

figures: Counter[str] = Counter()
_lock = threading.Lock()


def seeds(reduced: int | list[int], full: int) -> list[int]:
    """The seeds a matrix runs: ``reduced`` (a count from 0, or the seeds themselves) in
    ``make test``, ``full`` of them in the full run."""
    if FULL:
        return list(range(full))
    return list(range(reduced)) if isinstance(reduced, int) else list(reduced)


def count(name: str, n: int = 1) -> None:
    """Add ``n`` to the figure ``name`` (kills, faults injected, logs damaged, inputs tried...)."""
    with _lock:
        figures[name] += n
