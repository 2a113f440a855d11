"""The workflows this driver process handed to a manager without waiting for it (``run_async``).

``run_async`` returns once the submission is durable and sends the manager its ``run`` call
without waiting. Ray does not promise that an async actor runs one caller's calls in the order
they were sent (an argument still being resolved, or a retried call, lets a later call pass),
so a question this process asks next (``get_status``, ``get_output``, ``list_all``) can reach
the manager before the hand-over does. The log then shows the submission alone (PENDING, never
claimed) and the manager knows nothing of it; read by the status rule that is RESUMABLE, which
is wrong: this process has sent it on. Until the log shows a claim, such a workflow is PENDING
for this process, and waits for its output ask the manager to expect the hand-over.

Another process cannot know this; for it the workflow reads RESUMABLE until the claim lands
(the README's Known limits says so).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from replay import WorkflowState, WorkflowStatus

MAX_REMEMBERED = 100_000  # ids, oldest dropped first: a few MB at most


class HandOvers:
    """Ids of workflows handed over by this process whose claim this process has not seen yet."""

    def __init__(self, limit: int = MAX_REMEMBERED) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()  # run_async may be called from several threads

    def sent(self, workflow_id: str) -> None:
        with self._lock:
            self._ids[workflow_id] = None
            while len(self._ids) > self._limit:
                self._ids.popitem(last=False)

    def in_flight(self, workflow_id: str, state: WorkflowState) -> bool:
        """True if this process handed ``workflow_id`` over and ``state`` (its log) shows no claim yet."""
        if workflow_id not in self._ids:
            return False
        if state.status is WorkflowStatus.PENDING:
            return True
        with self._lock:  # claimed (or ended): the manager or the log answers from now on
            self._ids.pop(workflow_id, None)
        return False

    def __contains__(self, workflow_id: str) -> bool:
        return workflow_id in self._ids

    def ids(self) -> list[str]:
        with self._lock:
            return list(self._ids)
