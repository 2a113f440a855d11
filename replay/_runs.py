"""A workflow's runs: each time a driver took it over (``workflow.run_started``) until it let go.

Derived from the events in order (pure, no I/O), for ``status``, the UI and the timelines. A
run ends with the workflow (succeeded, failed, canceled), or is *interrupted*: the next run
started without the workflow having ended, so its driver went away (a crash, ``ray stop``).
An interrupted run's end is the last event it wrote, as far as the log can tell.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._events import Event, WorkflowCanceled, WorkflowFailed, WorkflowRunStarted, WorkflowSucceeded

RUN_OUTCOMES = ("running", "succeeded", "failed", "canceled", "interrupted")
_ENDS = {WorkflowSucceeded: "succeeded", WorkflowFailed: "failed", WorkflowCanceled: "canceled"}


@dataclass(slots=True)
class Run:
    """One run. ``ended_at`` is None while it is ``running`` (as far as the log says).

    ``owner`` is the lease holder named by the run's ``workflow.run_started`` event, when the
    event carries one (logs written before leases existed do not).
    """

    run_id: str
    started_at: float
    resumed: bool
    ended_at: float | None = None
    outcome: str = "running"  # one of RUN_OUTCOMES
    owner: Any = None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else max(0.0, self.ended_at - self.started_at)


def runs_of(events: Iterable[Event]) -> list[Run]:
    """The runs of a workflow, oldest first, from its events in log order."""
    runs: list[Run] = []
    last_ts: float | None = None
    for event in events:
        kind = type(event)
        if kind is WorkflowRunStarted:
            if runs and runs[-1].ended_at is None:
                runs[-1].ended_at = last_ts if last_ts is not None else event.ts
                runs[-1].outcome = "interrupted"
            runs.append(Run(event.run_id, event.ts, event.resumed, owner=getattr(event, "owner", None)))
        elif kind in _ENDS and runs and runs[-1].ended_at is None:
            runs[-1].ended_at = event.ts
            runs[-1].outcome = _ENDS[kind]
        last_ts = event.ts
    return runs
