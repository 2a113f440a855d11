"""Describing what a waiting task (a timer or an event wait) waited for, and how it ended.

One function the renderers call (``show`` / ``at``, ``timeline``, the HTML page), so the
words for waits live in one place; and ``show``'s list of the events sent to a workflow.
"""

from __future__ import annotations

from ._format import fmt_duration, fmt_payload, fmt_ts
from ._mailbox import Mailbox
from ._state import TaskState, TaskStatus, WorkflowState, WorkflowStatus


def describe_wait(state: WorkflowState, task: TaskState) -> str:
    """One line about the task's wait ("" if it is not a wait), as of the log's last event.

    ``timer until 2026-11-28 08:10:52.000 UTC, fired 3ms after it``;
    ``event 'approval': received 2026-11-28 08:10:49.120 UTC (builtins.str, 21 B, inline)``.
    """
    wait = task.wait
    if wait is None:
        return ""
    done = task.status is TaskStatus.SUCCESSFUL
    live = state.status is WorkflowStatus.RUNNING and task.status is TaskStatus.RUNNING
    if wait.kind == "timer":
        text = f"timer until {fmt_ts(wait.deadline)}"
        if done and task.ended_at is not None and wait.deadline is not None:
            return text + f", fired {fmt_duration(max(0.0, task.ended_at - wait.deadline))} after it"
        if live and state.last_ts is not None and wait.deadline is not None:
            left = wait.deadline - state.last_ts
            return text + (f", {fmt_duration(left)} to go at the last event" if left > 0 else ", due")
        return text
    what = f"event {wait.event_key!r}" if wait.event_key is not None else f"event from {wait.listener or '?'}"
    if wait.received is not None:
        text = f"{what}: received {fmt_ts(wait.received_at)} ({fmt_payload(wait.received)})"
        if not done:
            text += ", not committed yet"
        return text
    return f"{what}: waiting since {fmt_ts(wait.since)}" if live else f"{what}: not received"


def render_mailbox(mailbox: Mailbox, state: WorkflowState) -> str:
    """The ``show`` section listing the events sent to a workflow ("" if none was)."""
    if not mailbox.events:
        return ""
    rows = [("KEY", "SEQ", "SENT", "BY", "PAYLOAD", "TAKEN BY")]
    for key, (seq, sent) in sorted(mailbox.events.items(), key=lambda item: item[1][0]):
        taker = state.event_keys.get(key, "")
        if not taker:
            taker = "-" if state.is_terminal else "(nobody yet: delivered when a wait takes this key)"
        rows.append((repr(key), str(seq), fmt_ts(sent.ts), sent.sender or "-", fmt_payload(sent.payload), taker))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = [f"mailbox ({len(mailbox.events)} event{'s' if len(mailbox.events) != 1 else ''} sent)"]
    for row in rows:
        lines.append("  " + "  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths)) + "  " + row[5])
    return "\n" + "\n".join(line.rstrip() for line in lines) + "\n"
