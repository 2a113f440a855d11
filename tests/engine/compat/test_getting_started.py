"""The "Getting Started" page of ray.workflow 2.47 (doc/source/workflows/basics.rst).

See the package docstring for what is changed in the snippets and what is out of scope.
"Mixing workflow tasks with Ray tasks and actors", way 1 (a workflow launched from inside a Ray
task, whose process has no ``workflow.init``: 2.47 used the cluster's storage there) needs a
cluster with one storage, so it runs in ``tests/engine/test_cluster_storage.py``.
"""

from __future__ import annotations

import os
import uuid
from typing import List, Tuple

import pytest
import ray

import engine as workflow



def _uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- Your first workflow -------------------------------------------------------------------------

@ray.remote
def read_data(num: int):
    return [i for i in range(num)]


@ray.remote
def preprocessing(data: List[float]) -> List[float]:
    return [d**2 for d in data]


@ray.remote
def aggregate(data: List[float]) -> float:
    return sum(data)


def test_your_first_workflow(page):
    """"Your first workflow": read_data -> preprocessing -> aggregate, run and run_async.

    2.47 printed 285 for both (the page's testoutput).
    """
    data = read_data.bind(10)
    preprocessed_data = preprocessing.bind(data)
    output = aggregate.bind(preprocessed_data)
    assert workflow.run(output) == 285
    output_ref = workflow.run_async(output)
    assert ray.get(output_ref) == 285


# --- Setting workflow options --------------------------------------------------------------------

def test_workflow_options_as_a_decorator(page):
    """"Setting workflow options", decorator form: ``@workflow.options(checkpoint=True)`` above
    ``@ray.remote(num_cpus=2, num_gpus=3, max_retries=5)``. 2.47 accepted both decorators and ran
    the task with its Ray options. (Run here with ``num_gpus=0``: the test cluster has no GPU.)"""

    @workflow.options(checkpoint=True)
    @ray.remote(num_cpus=2, num_gpus=3, max_retries=5)
    def read_data(num: int):
        return [i for i in range(num)]

    assert workflow.run(read_data.options(num_gpus=0).bind(3)) == [0, 1, 2]


def test_workflow_options_as_ray_options_keywords(page):
    """"Setting workflow options", keyword form: ``read_data.options(num_cpus=1, num_gpus=1,
    **workflow.options(checkpoint=True))``. 2.47 merged the workflow options into Ray's
    options (under ``_metadata``). (``num_gpus`` left out: the test cluster has no GPU.)"""
    read_data_with_options = read_data.options(num_cpus=1, **workflow.options(checkpoint=True))
    assert workflow.run(read_data_with_options.bind(3)) == [0, 1, 2]


# --- Retrieving workflow results -----------------------------------------------------------------

@ray.remote
def add(left: int, right: int) -> int:
    return left + right


@ray.remote
def get_val() -> int:
    return 10


def test_retrieving_workflow_results(page):
    """"Retrieving Workflow Results": delete "add_example" if it exists (catching
    ``workflow.exceptions.WorkflowNotFoundError``), run it with that id, then
    ``get_output("add_example")``. 2.47 printed 30 twice; ``delete`` of an unknown id raised
    WorkflowNotFoundError (tried on 2.47.1), and a finished id could be run afresh after it."""
    for _ in range(2):  # the second round deletes what the first one made
        try:
            workflow.delete("add_example")
        except workflow.exceptions.WorkflowNotFoundError:
            pass
        ret = add.bind(get_val.bind(), 20)
        assert workflow.run(ret, workflow_id="add_example") == 30
        assert workflow.get_output("add_example") == 30
        assert ray.get(workflow.get_output_async("add_example")) == 30
        assert ("add_example", workflow.SUCCESSFUL) in workflow.list_all()


@ray.remote
def double(v):
    return 2 * v


def test_sub_task_results(page):
    """"Sub-Task Results": ``double.options(**workflow.options(task_id="inner"))`` and "outer",
    run_async, then ``get_output_async(workflow_id, task_id=...)`` of both while it may still run.
    2.47: 2, 4 and 4 (the page's asserts)."""
    workflow_id = _uid("double")
    inner_task = double.options(**workflow.options(task_id="inner")).bind(1)
    outer_task = double.options(**workflow.options(task_id="outer")).bind(inner_task)
    result_ref = workflow.run_async(outer_task, workflow_id=workflow_id)
    inner = workflow.get_output_async(workflow_id, task_id="inner")
    outer = workflow.get_output_async(workflow_id, task_id="outer")
    assert ray.get(inner) == 2
    assert ray.get(outer) == 4
    assert ray.get(result_ref) == 4


def test_sub_task_results_decorator_form(page):
    """"Sub-Task Results", way 2: ``@workflow.options(task_id="task_name")`` as a decorator.
    2.47 kept each task's output under its task id."""

    @workflow.options(task_id="inner")
    @ray.remote
    def inner(v):
        return 2 * v

    @workflow.options(task_id="outer")
    @ray.remote
    def outer(v):
        return 2 * v

    workflow_id = _uid("double-decorated")
    assert workflow.run(outer.bind(inner.bind(1)), workflow_id=workflow_id) == 4
    assert workflow.get_output(workflow_id, task_id="inner") == 2
    assert workflow.get_output(workflow_id, task_id="outer") == 4


def test_default_task_ids(page):
    """"Sub-Task Results": "If tasks are not given task_id, the function name of the steps is set
    as the task_id. If there are multiple tasks with the same id, a suffix with a counter _n will
    be added." What 2.47 really named them (workflow_state_from_dag.py, tried on 2.47.1):
    ``f"{func.__module__}.{slugify(func.__qualname__)}"``, then ``_1``, ``_2`` ... in the order the
    DAG was walked (inputs first); ``get_metadata(wid, "boom")`` of a task ``boom`` defined in
    ``__main__`` raised "No such task_id 'boom'" there: its id was ``__main__.boom``."""
    workflow_id = _uid("default-ids")
    assert workflow.run(double.bind(double.bind(1)), workflow_id=workflow_id) == 4
    name = f"{__name__}.double"
    assert workflow.get_output(workflow_id, task_id=name) == 2
    assert workflow.get_output(workflow_id, task_id=f"{name}_1") == 4


# --- Error handling -------------------------------------------------------------------------------

def _fails_first(counter: str, times: int) -> bool:
    """Whether this call should fail: the first ``times`` calls counted in file ``counter`` do."""
    with open(counter, "a") as f:
        f.write("x")
    return os.path.getsize(counter) <= times


@ray.remote
def faulty_function(counter: str, failures: int) -> str:
    # The page's `random.random() > 0.5`, made deterministic: fail the first `failures` calls.
    if _fails_first(counter, failures):
        raise RuntimeError("oops")
    return "OK"


@ray.remote
def handle_errors(result: Tuple[str, Exception]):
    # The exception field will be None on success.
    err = result[1]
    if err:
        return "There was an error: {}".format(err)
    else:
        return "OK"


def test_error_handling_options_in_the_decorator(page, tmp_path):
    """"Error handling": ``@workflow.options(catch_exceptions=True)`` above
    ``@ray.remote(max_retries=5, retry_exceptions=True)``: catch_exceptions "can be combined with
    max_retries to retry a given number of times before returning the result tuple". Here: two
    failures, then success. Tried on 2.47.1: ``("OK", None)`` after 3 calls."""

    @workflow.options(catch_exceptions=True)
    @ray.remote(max_retries=5, retry_exceptions=True)
    def faulty(counter):
        if _fails_first(counter, 2):
            raise RuntimeError("oops")
        return "OK"

    counter = str(tmp_path / "calls")
    assert workflow.run(faulty.bind(counter)) == ("OK", None)
    assert os.path.getsize(counter) == 3


def test_error_handling_max_retries_does_not_retry_exceptions(page, tmp_path):
    """"Error handling": ``faulty_function.options(max_retries=5).bind()`` in
    ``try: workflow.run(r1) except ray.exceptions.RayTaskError: pass``. "If retry_exceptions is
    False, the workflow task only retries task crashes": the RuntimeError is not retried, and 2.47
    raised ``RayTaskError(WorkflowExecutionError)`` from ``workflow.run`` (tried on 2.47.1)."""
    counter = str(tmp_path / "calls")
    r1 = faulty_function.options(max_retries=5).bind(counter, 1)
    try:
        workflow.run(r1)
    except ray.exceptions.RayTaskError:
        pass
    else:
        raise AssertionError("the task failed, so workflow.run should have raised")
    assert os.path.getsize(counter) == 1  # not retried


def test_error_handling_catch_exceptions(page, tmp_path):
    """"Error handling": ``faulty_function.options(**workflow.options(catch_exceptions=True))``
    feeding ``handle_errors``, which gets ``(None, exception)`` on failure. 2.47: "There was an
    error: oops" when it failed, "OK" otherwise."""
    r2 = faulty_function.options(**workflow.options(catch_exceptions=True)).bind(str(tmp_path / "a"), 1)
    assert workflow.run(handle_errors.bind(r2)).startswith("There was an error: ")
    r3 = faulty_function.options(**workflow.options(catch_exceptions=True)).bind(str(tmp_path / "b"), 0)
    assert workflow.run(handle_errors.bind(r3)) == "OK"


# --- Durability guarantees ------------------------------------------------------------------------

@ray.remote
def generate_id() -> str:
    # Generate a unique idempotency token.
    return uuid.uuid4().hex


@ray.remote
def book_flight_idempotent(request_id: str, bookings: str) -> str:
    with open(bookings, "a") as f:  # the "service": one line per booking request it saw
        f.write(request_id + "\n")
    return f"ticket-{request_id}"


def test_idempotent_workflow(page, tmp_path):
    """"Durability guarantees", the idempotent workflow: ``generate_id`` feeds
    ``book_flight_idempotent``. Once a task's result is logged it never runs again: running the
    same workflow id again returns the same ticket and books nothing (2.47: run of an existing
    id resumed it; a finished one returned its output)."""
    bookings = str(tmp_path / "bookings")
    workflow_id = _uid("flight")
    request_id = generate_id.bind()
    ticket = workflow.run(book_flight_idempotent.bind(request_id, bookings), workflow_id=workflow_id)
    again = workflow.run(book_flight_idempotent.bind(generate_id.bind(), bookings), workflow_id=workflow_id)
    assert again == ticket
    assert open(bookings).read().split() == [ticket.removeprefix("ticket-")]


# --- Dynamic workflows ----------------------------------------------------------------------------

@ray.remote
def bar_node():
    return 10


@ray.remote
def foo_returns_a_node():
    # This is evaluated at runtime, not in DAG construction.
    return bar_node.bind()


@ray.remote
def foo():
    # This will return a DAG to be executed after this function is finished.
    return workflow.continuation(bar_node.bind())


@pytest.mark.filterwarnings("ignore:DAGNode.execute:DeprecationWarning")
def test_continuation(page):
    """"Dynamic workflows": a task that returns ``bar.bind()`` gives plain Ray's DAG engine the
    node, not its result (2.47 printed ``<class 'ray.dag.function_node.FunctionNode'>``); with
    ``workflow.continuation(bar.bind())`` both ``ray.get(foo.bind().execute())`` and
    ``workflow.run(foo.bind())`` are 10 (the page's asserts)."""
    assert type(ray.get(foo_returns_a_node.bind().execute())).__name__ == "FunctionNode"
    assert ray.get(foo.bind().execute()) == 10
    assert workflow.run(foo.bind()) == 10


@ray.remote
def factorial(n: int) -> int:
    if n == 1:
        return 1
    else:
        return workflow.continuation(multiply.bind(n, factorial.bind(n - 1)))


@ray.remote
def multiply(a: int, b: int) -> int:
    return a * b


@pytest.mark.filterwarnings("ignore:DAGNode.execute:DeprecationWarning")
def test_recursive_factorial(page):
    """"Dynamic workflows": recursive ``factorial`` through continuations; 3628800 with
    ``workflow.run`` and with Ray's DAG engine (the page's asserts)."""
    assert workflow.run(factorial.bind(10)) == 3628800
    assert ray.get(factorial.bind(10).execute()) == 3628800


@ray.remote
def book_flight(origin: str, dest: str, date: str) -> str:
    return f"flight {origin}->{dest} {date}"


@ray.remote
def book_hotel(dest: str, dates) -> str:
    return f"hotel {dest} {dates[0]}-{dates[1]}"


@ray.remote
def finalize_or_cancel(flights: List[ray.ObjectRef], hotels: List[ray.ObjectRef]) -> str:
    # Nested DAG nodes arrive as ObjectRefs ("Passing nested arguments" on the same page).
    return "; ".join(ray.get(flights) + ray.get(hotels))


@ray.remote
def book_trip(origin: str, dest: str, dates) -> str:
    f1 = book_flight.bind(origin, dest, dates[0])
    f2 = book_flight.bind(dest, origin, dates[1])
    hotel = book_hotel.bind(dest, dates)
    return workflow.continuation(finalize_or_cancel.bind([f1, f2], [hotel]))


def test_booking_a_trip(page):
    """"Dynamic workflows", booking a trip: ``book_trip`` continues into two ``book_flight`` and a
    ``book_hotel`` in parallel, feeding ``finalize_or_cancel([f1, f2], [hotel])``. (The page
    elides the bodies; as its "Passing nested arguments" section says, 2.47 handed the lists'
    DAG nodes over as ObjectRefs, so this ``finalize_or_cancel`` ``ray.get``s them.)"""
    receipt = workflow.run(book_trip.bind("OAK", "SAN", ["6/12", "7/5"]))
    assert receipt == "flight OAK->SAN 6/12; flight SAN->OAK 7/5; hotel SAN 6/12-7/5"


# --- Ray integration --------------------------------------------------------------------------------

@ray.remote
def add_values(values: List[ray.ObjectRef]) -> int:
    # although those values are not resolved, they have been
    # *fully executed and checkpointed*.
    return sum(ray.get(values))


def test_passing_nested_arguments(page):
    """"Passing nested arguments": ``add.bind([get_val.bind() for _ in range(3)])`` where ``add``
    does ``sum(ray.get(values))``; 2.47: 30 (the page's assert)."""
    ret = add_values.bind([get_val.bind() for _ in range(3)])
    assert workflow.run(ret) == 30


@ray.remote
def do_add(a, b):
    return a + b


@ray.remote
def add_remote(a, b):
    return do_add.remote(a, b)


def test_passing_object_references(page):
    """"Passing object references between tasks": ObjectRefs (``ray.put(10)``, ``ray.put(20)``) as
    arguments of a task that returns ``do_add.remote(a, b)``. The page's last line,
    ``workflow.run(...) == 30``, is not an assert: tried on 2.47.1, ``workflow.run`` returned the
    ObjectRef the task returned (as plain Ray does), and ``ray.get`` of it is 30."""
    result = workflow.run(add_remote.bind(ray.put(10), ray.put(20)))
    assert isinstance(result, ray.ObjectRef)
    assert ray.get(result) == 30


@ray.remote
def train_model():
    return ray.get_runtime_context().get_assigned_resources()


def test_custom_resources(page):
    """"Setting custom resources for tasks": ``train_model.options(num_gpus=1).bind()``; 2.47 gave
    the task the resources, as Ray does. (``num_cpus=2`` instead: the test cluster has no GPU.)"""
    assert workflow.run(train_model.options(num_cpus=2).bind()).get("CPU") == 2

