"""``verify``: check logs end to end without trusting any of them.

Per log: the framing, checksums and sequence contiguity (storage reports
damage as LogCorruptedError with the byte offset), a torn tail (bytes after the
last whole batch, which every reader skips as never written: a finding all the
same, with the events it still held), that every record decodes
to a known event, and that the events are legal in order (the fold). Every
problem is listed with its workflow, seq and offset; the exit status is 0 if
all is clean and 1 otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage_backends import Storage

from ._inspect import Problem, ToolError, check_log, read_log, unknown_workflow_message


@dataclass(slots=True)
class Verdict:
    workflow_id: str
    events: int
    problems: list[Problem]


async def verify(storage: Storage, workflow_ids: list[str] | None) -> list[Verdict]:
    """Verdicts for ``workflow_ids``, or for every log in storage if None."""
    if workflow_ids is None:
        workflow_ids = await storage.list_logs()
    verdicts = []
    for workflow_id in workflow_ids:
        log = await read_log(storage, workflow_id)
        if not log.entries and log.damage is None and log.torn_tail is None:
            raise ToolError(await unknown_workflow_message(storage, workflow_id))
        verdicts.append(Verdict(workflow_id, len(log.entries), check_log(log)))
    return verdicts


def render_verdicts(verdicts: list[Verdict], storage_url: str) -> str:
    if not verdicts:
        return f"no workflows in {storage_url}\n"
    width = max(len(v.workflow_id) for v in verdicts)
    lines = []
    for v in verdicts:
        if not v.problems:
            lines.append(f"ok       {v.workflow_id:<{width}}  {v.events} events")
            continue
        lines.append(f"PROBLEMS {v.workflow_id:<{width}}  {v.events} records readable, "
                     f"{len(v.problems)} problem{'s' if len(v.problems) != 1 else ''}")
        lines.extend(f"  - {p}" for p in v.problems)
    bad = sum(1 for v in verdicts if v.problems)
    lines.append("")
    lines.append(f"verified {len(verdicts)} workflow{'s' if len(verdicts) != 1 else ''} in {storage_url}: "
                 f"{len(verdicts) - bad} clean, {bad} with problems")
    return "\n".join(lines) + "\n"
