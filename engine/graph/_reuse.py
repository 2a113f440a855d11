"""Which durable completions of a workflow's log a DAG would reuse, and why the rest runs again.

One rule, used by ``workflow.fork`` (to decide what the fork copies) and ``workflow.check``
(to say so without running anything), so the check predicts exactly what a fork does.
A task of the DAG reuses the log's completion of the same task id when, and only when:

* the log holds a durable completion of it with a stored output (``checkpoint=False`` keeps
  none; a task that continued into a sub-DAG counts once that sub-DAG finished);
* its function is the same (``<module>.<qualname>``; task ids default to it, so a renamed
  function usually shows up as a task id gone plus a new one);
* its arguments are the same (equal after unpickling; the bytes are compared first) and it
  takes its inputs from the same tasks;
* every task it takes an input from is reused too (a re-run input may give another value);
* it is not the fork's ``from_task``, nor downstream of it.

This is DBOS's "a step's recorded output is reused only at the same position under the same
name" check, with task ids for positions, plus the argument check Temporal's replayer makes
when it compares a workflow's commands with its history.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from replay import TaskState, TaskStatus, WorkflowState

from . import _pickle
from ._build import TaskSpec, WorkflowGraph


@dataclass
class ReusePlan:
    """What a run of ``graph`` over the log of ``workflow_id`` reuses and runs.

    Attributes:
        reused: task ids (of the DAG) whose logged completion is reused, in DAG order.
        rerun: task id -> why it runs (again): every task of the DAG not reused.
        gone: task id -> its function, for completed tasks of the log the DAG no longer has.
        inner: completed tasks of reused tasks' sub-DAGs (continuations), reused with them.
        from_task: the fork point, if any.
    """

    workflow_id: str
    reused: list[str] = field(default_factory=list)
    rerun: dict[str, str] = field(default_factory=dict)
    gone: dict[str, str] = field(default_factory=dict)
    inner: list[str] = field(default_factory=list)
    from_task: str | None = None
    completed: set[str] = field(default_factory=set)  # top-level tasks the log has completed

    @property
    def mismatches(self) -> list[str]:
        """One line per completed task the DAG would not reuse, unless ``from_task`` is why."""
        lines = [f"{t}: completed in the log, runs again: {why}" for t, why in self.rerun.items()
                 if t in self.completed and not why.startswith(_FORK_REASONS)]
        lines += [f"{t}: completed in the log ({name}), gone from the DAG (no task has this id now)"
                  for t, name in self.gone.items()]
        return lines

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def to_dict(self) -> dict:
        return {"workflow_id": self.workflow_id, "ok": self.ok, "from_task": self.from_task,
                "reused": list(self.reused), "rerun": dict(self.rerun), "gone": dict(self.gone),
                "mismatches": self.mismatches}

    def render(self) -> str:
        lines = [f"check {self.workflow_id}: " + ("OK, every completed task is reused" if self.ok
                                                  else f"MISMATCH, {len(self.mismatches)} completed "
                                                       "task(s) would not be reused")]
        if self.reused:
            lines.append(f"  reuse ({len(self.reused)}): " + ", ".join(self.reused))
        for task_id, why in self.rerun.items():
            lines.append(f"  run   {task_id}: {why}")
        for task_id, name in self.gone.items():
            lines.append(f"  gone  {task_id} ({name}): completed in the log, no task of the DAG has this id")
        return "\n".join(lines) + "\n"


FROM_TASK = "the fork re-runs from here (from_task)"
DOWNSTREAM = "downstream of the fork's from_task"
_FORK_REASONS = (FROM_TASK, DOWNSTREAM)


def plan_reuse(graph: WorkflowGraph, stored: WorkflowGraph, state: WorkflowState,
               from_task: str | None = None) -> ReusePlan:
    """Apply the rule above to every task of ``graph`` (the DAG to run), against ``state`` (the
    log's fold) and ``stored`` (the graph the log's workflow was submitted with, for arguments)."""
    plan = ReusePlan(state.workflow_id, from_task=from_task)
    plan.completed = {t for t, task in state.tasks.items() if task.parent_task_id is None and _reusable(task)}
    forked: set[str] = set()  # from_task and everything downstream of it
    for task_id, spec in graph.tasks.items():
        logged = state.tasks.get(task_id)
        why = None
        if task_id == from_task:
            why = FROM_TASK
        elif any(d in forked for d in spec.deps):
            why = DOWNSTREAM
        if why is not None:
            forked.add(task_id)
        else:
            why = _why_not_reused(spec, stored.tasks.get(task_id), logged, plan)
        if why is None:
            plan.reused.append(task_id)
        else:
            plan.rerun[task_id] = why
    for task_id in plan.completed - set(graph.tasks):
        plan.gone[task_id] = state.tasks[task_id].name
    reused = set(plan.reused)
    plan.inner = [t for t, task in state.tasks.items()
                  if task.parent_task_id is not None and _reusable(task) and _top(state, t) in reused]
    return plan


def _why_not_reused(spec: TaskSpec, old: TaskSpec | None, logged: TaskState | None, plan: ReusePlan) -> str | None:
    if logged is None:
        return "not in the log: a new task id (or one that never ran)"
    if not _reusable(logged):
        if logged.status is TaskStatus.SUCCESSFUL:
            return "completed without a stored output (checkpoint=False)"
        if logged.status is TaskStatus.CONTINUED:
            return "its sub-DAG (continuation) had not finished"
        return f"not completed in the log (it is {logged.status})"
    if logged.name != spec.name:
        return f"function renamed: {logged.name} -> {spec.name}"
    if tuple(logged.deps) != tuple(spec.deps):
        return f"inputs changed: takes ({', '.join(logged.deps)}) -> ({', '.join(spec.deps)})"
    if old is not None and not _same_call(old.call, spec.call):
        return "arguments changed"
    rerun_deps = [d for d in spec.deps if d in plan.rerun]
    if rerun_deps:
        return f"its input {rerun_deps[0]} runs again"
    return None


def _reusable(task: TaskState) -> bool:
    return (task.status is TaskStatus.SUCCESSFUL and task.output is not None
            and task.output.codec != "none")


def _same_call(a: bytes, b: bytes) -> bool:
    """Same arguments: same bytes, or values that compare equal (pickles of equal values may differ)."""
    if a == b:
        return True
    try:
        return _pickle.loads(a) == _pickle.loads(b)
    except Exception:  # an argument that does not unpickle here, or compare: treat it as changed
        return False


def _top(state: WorkflowState, task_id: str) -> str:
    """The top-level task whose sub-DAG (at any depth) holds ``task_id``."""
    seen = set()
    task = state.tasks.get(task_id)
    while task is not None and task.parent_task_id is not None and task.task_id not in seen:
        seen.add(task.task_id)
        task = state.tasks.get(task.parent_task_id)
    return task.task_id if task is not None else task_id
