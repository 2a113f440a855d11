"""Workflow errors cross process boundaries (the manager actor raises them to drivers), so
each must survive pickling whole: same type, same message, same attributes."""

import pickle

import pytest

import engine as workflow
from engine.exceptions import WorkflowQueueFullError, WorkflowRunningError

ERRORS = [
    workflow.WorkflowNotFoundError("w", "file:///data"),
    workflow.WorkflowNotFoundError("w"),
    workflow.WorkflowExecutionError("w", "t", ValueError("kaput")),
    workflow.WorkflowCancellationError("w"),
    workflow.WorkflowNotResumableError("w", "it was canceled"),
    WorkflowRunningError("w"),
    WorkflowQueueFullError("w", 10),
]


@pytest.mark.parametrize("error", ERRORS, ids=lambda e: type(e).__name__)
def test_an_error_survives_pickling(error):
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert {k: v for k, v in vars(copy).items() if k != "cause"} == \
        {k: v for k, v in vars(error).items() if k != "cause"}
    assert repr(getattr(copy, "cause", None)) == repr(getattr(error, "cause", None))
