"""The examples in ray.workflow's repository (python/ray/workflow/examples, Ray 2.47).

``function_chain.py`` and the ``comparisons/`` folder (the same flows as Airflow, Argo, Cadence,
Google Cloud Workflows, Metaflow and Prefect wrote them). The scenarios are those of the
examples' Ray-DAG versions (``.bind`` and ``workflow.run``); where an example printed, its
tasks return or record what they printed, so the test can look. See the package docstring
for what else is changed and what is out of scope.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, List, Optional, Tuple

import pytest
import ray

import engine as workflow



def _note(path: str, text: str) -> None:
    with open(path, "a") as f:
        f.write(text + "\n")


def _lines(path: str) -> list[str]:
    return open(path).read().splitlines() if os.path.exists(path) else []


# --- function_chain.py ------------------------------------------------------------------------------

def function_chain(steps: List[Callable]) -> Callable:
    def chain_func(*args, **kw_argv):
        remote_tasks = list(map(ray.remote, steps))
        wf_step = remote_tasks[0].bind(*args, **kw_argv)
        for i in range(1, len(steps)):
            wf_step = remote_tasks[i].bind(wf_step)
        return wf_step

    return chain_func


def function_compose(steps: List[List[Callable]]) -> Callable:
    @ray.remote
    def finish(*args):
        return args

    def entry(*args, **kw_args):
        wf = [ray.remote(f).bind(*args, **kw_args) for f in steps[0]]
        for layer_i in steps[1:]:
            wf = [ray.remote(f).bind(w) for f in layer_i for w in wf]
        return finish.bind(*wf)

    return entry


def _add(i: int, v: int):
    return i + v


def test_function_chain(page):
    """``function_chain.py``: four lambdas chained (``__function_chain_test``, 20) and a 2x2
    composition (``__function_compose_test``, ``(14, 15, 15, 16)``), each after
    ``try: workflow.delete(id) except Exception: pass`` (the example's asserts; the ids with a
    leading '_' and the lambda tasks ran on 2.47.1 too)."""
    pipeline = function_chain([lambda v: _add(v, 1), lambda v: _add(v, 2), lambda v: _add(v, 3),
                               lambda v: _add(v, 4)])
    workflow_id = "__function_chain_test"
    try:
        workflow.delete(workflow_id)
    except Exception:
        pass
    assert workflow.run(pipeline(10), workflow_id=workflow_id) == 20

    pipeline = function_compose([[lambda v: _add(v, 1), lambda v: _add(v, 2)],
                                 [lambda v: _add(v, 3), lambda v: _add(v, 4)]])
    workflow_id = "__function_compose_test"
    try:
        workflow.delete(workflow_id)
    except Exception:
        pass
    assert workflow.run(pipeline(10), workflow_id=workflow_id) == (14, 15, 15, 16)
    assert {"__function_chain_test", "__function_compose_test"} <= {w for w, _ in workflow.list_all()}


# --- comparisons/argo ---------------------------------------------------------------------------------

@ray.remote
def handle_heads() -> str:
    return "It was heads"


@ray.remote
def handle_tails() -> str:
    return "It was tails"


@ray.remote
def flip_coin(heads: bool) -> str:
    # The example draws `random.random() > 0.5`; the test picks the side.
    @ray.remote
    def decide(heads: bool) -> str:
        return workflow.continuation(handle_heads.bind() if heads else handle_tails.bind())

    return workflow.continuation(decide.bind(heads))


@pytest.mark.parametrize("heads, said", [(True, "It was heads"), (False, "It was tails")])
def test_argo_conditionals(page, heads, said):
    """``argo/conditionals_workflow.py``: ``flip_coin`` continues into ``decide`` (a remote
    function defined inside the task), which continues into the side that came up."""
    assert workflow.run(flip_coin.bind(heads)) == said


@ray.remote
def echo(log: str, msg: str, *deps) -> str:
    _note(log, msg)
    return msg


def test_argo_dag(page, tmp_path):
    """``argo/dag_workflow.py``: tasks A, B, C, D named with ``.options(**workflow.options(task_id=...))``;
    ``workflow.run(D)`` runs D and what it depends on (A, B), never C."""
    log = str(tmp_path / "log")
    A = echo.options(**workflow.options(task_id="A")).bind(log, "A")
    B = echo.options(**workflow.options(task_id="B")).bind(log, "B", A)
    C = echo.options(**workflow.options(task_id="C")).bind(log, "C", A)  # noqa: F841 (as in the example)
    D = echo.options(**workflow.options(task_id="D")).bind(log, "D", A, B)
    workflow.run(D, workflow_id="argo-dag")
    assert _lines(log) == ["A", "B", "D"]
    assert workflow.get_output("argo-dag", task_id="B") == "B"


@ray.remote
def intentional_fail() -> str:
    raise RuntimeError("oops")


@ray.remote
def cry(error: Exception) -> str:
    return f"Sadly {error}"


@ray.remote
def celebrate(result: str) -> str:
    return f"Success! {result}"


@ray.remote
def send_email(result: str) -> str:
    return f"Sending email {result}"


@ray.remote
def exit_handler(res: Tuple[Optional[str], Optional[Exception]]):
    result, error = res
    email = send_email.bind(f"Raw result: {result}, {error}")
    if error:
        handler = cry.bind(error)
    else:
        handler = celebrate.bind(result)
    return workflow.continuation(wait_all.bind(handler, email))


@ray.remote
def wait_all(*deps):
    return ("done",) + deps


def test_argo_exit_handler(page):
    """``argo/exit_handler_workflow.py``: ``intentional_fail.options(**workflow.options(catch_exceptions=True))``
    feeds ``exit_handler``, which sends an email and cries. Tried on 2.47.1: ``("done", "Sadly
    ...oops...", "Sending email Raw result: None, ...")`` (``wait_all`` returning its inputs here)."""
    res = intentional_fail.options(**workflow.options(catch_exceptions=True)).bind()
    done, handled, email = workflow.run(exit_handler.bind(res))
    assert done == "done" and handled.startswith("Sadly") and "oops" in handled
    assert email.startswith("Sending email Raw result: None, ")


def test_argo_hello_world(page, tmp_path):
    """``argo/hello_world_workflow.py``: ``workflow.run(hello.bind("hello world"))``."""
    log = str(tmp_path / "log")
    assert workflow.run(echo.bind(log, "hello world")) == "hello world"
    assert _lines(log) == ["hello world"]


def test_argo_loops(page, tmp_path):
    """``argo/loops_workflow.py``: one ``hello`` per message, all fed to ``wait_all(*children)``."""
    log = str(tmp_path / "log")
    children = []
    for msg in ["hello world", "goodbye world"]:
        children.append(echo.bind(log, msg))
    assert workflow.run(wait_all.bind(*children)) == ("done", "hello world", "goodbye world")
    assert sorted(_lines(log)) == ["goodbye world", "hello world"]


def test_argo_multi_step_options_name_is_refused(page):
    """``argo/multi_step_workflow.py`` names its tasks with ``workflow.options(name="hello1")``:
    2.47.1 refused that (``ValueError: Invalid option keywords {'name'} ... Valid ones are
    {'task_id', ...}``), and so does this, naming the valid options."""
    with pytest.raises(ValueError) as info:
        workflow.options(name="hello1")
    assert "'name'" in str(info.value) and "task_id" in str(info.value)


def test_argo_multi_step(page, tmp_path):
    """``argo/multi_step_workflow.py``, with ``task_id`` for the ``name`` 2.47 refused: hello1 and
    hello2a in parallel, hello2b after hello2a, then ``wait_all(h1, h2b)``."""
    log = str(tmp_path / "log")
    h1 = echo.options(**workflow.options(task_id="hello1")).bind(log, "hello1")
    h2a = echo.options(**workflow.options(task_id="hello2a")).bind(log, "hello2a")
    h2b = echo.options(**workflow.options(task_id="hello2b")).bind(log, "hello2b", h2a)
    assert workflow.run(wait_all.bind(h1, h2b)) == ("done", "hello1", "hello2b")
    lines = _lines(log)
    assert sorted(lines) == ["hello1", "hello2a", "hello2b"] and lines.index("hello2a") < lines.index("hello2b")


@ray.remote
def flip_until_heads(flips: str) -> str:
    # The example's coin, made deterministic: tails twice, then heads.
    _note(flips, "flip")

    @ray.remote
    def decide(heads: bool) -> str:
        if heads:
            return workflow.continuation(handle_heads.bind())
        return workflow.continuation(tails_then_retry.bind(flips))

    return workflow.continuation(decide.bind(len(_lines(flips)) >= 3))


@ray.remote
def tails_then_retry(flips: str) -> str:
    return workflow.continuation(flip_until_heads.bind(flips))


def test_argo_recursion(page, tmp_path):
    """``argo/recursion_workflow.py``: on tails, ``handle_tails`` continues into a new
    ``flip_coin``, until heads."""
    flips = str(tmp_path / "flips")
    assert workflow.run(flip_until_heads.bind(flips)) == "It was heads"
    assert len(_lines(flips)) == 3


@ray.remote
def flaky_step(counter: str) -> str:
    # The example's `random.choice([0, 1, 1]) != 0`, made deterministic: fails twice.
    _note(counter, "try")
    if len(_lines(counter)) <= 2:
        raise ValueError("oops")
    return "ok"


@ray.remote
def custom_retry_strategy(func: Any, counter: str, num_retries: int) -> str:
    @ray.remote
    def handle_result(res: Tuple[Optional[str], Optional[Exception]]) -> str:
        result, error = res
        if result:
            return res
        elif num_retries <= 0:
            raise error
        else:
            return workflow.continuation(custom_retry_strategy.bind(func, counter, num_retries - 1))

    res = func.options(**workflow.options(catch_exceptions=True)).bind(counter)
    return workflow.continuation(handle_result.bind(res))


def test_argo_retry_default_strategy(page, tmp_path):
    """``argo/retry_workflow.py``, default strategy: retry ``flaky_step`` up to 10 times. The
    example wrote ``flaky_step.options(**workflow.options(max_retries=10))``, which 2.47.1 refused
    (``max_retries`` was not a workflow option there; it was Ray's). So, as 2.47 took it: Ray's
    ``max_retries=10, retry_exceptions=True``."""
    counter = str(tmp_path / "tries")
    assert workflow.run(flaky_step.options(max_retries=10, retry_exceptions=True).bind(counter)) == "ok"
    assert len(_lines(counter)) == 3


def test_argo_retry_custom_strategy(page, tmp_path):
    """``argo/retry_workflow.py``, custom strategy: ``custom_retry_strategy(flaky_step, 10, ...)``
    runs ``func.options(**workflow.options(catch_exceptions=True))`` (a remote function passed as
    an argument) and continues into itself until it works; 2.47.1: ``("ok", None)``."""
    counter = str(tmp_path / "tries")
    assert workflow.run(custom_retry_strategy.bind(flaky_step, counter, 10)) == ("ok", None)
    assert len(_lines(counter)) == 3


# --- comparisons/airflow --------------------------------------------------------------------------------

@ray.remote
def extract() -> dict:
    data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
    return json.loads(data_string)


@ray.remote
def transform(order_data_dict: dict) -> dict:
    total_order_value = 0
    for value in order_data_dict.values():
        total_order_value += value
    return {"total_order_value": ray.put(total_order_value)}


@ray.remote
def load(data_dict: dict) -> str:
    total_order_value = ray.get(data_dict["total_order_value"])
    return f"Total order value is: {total_order_value:.2f}"


def test_airflow_etl(page):
    """``airflow/etl_workflow.py``: extract -> transform (returns a dict holding an ObjectRef from
    ``ray.put``) -> load (``ray.get``s it). Tried on 2.47.1 with the same shape: it worked."""
    order_data = extract.bind()
    order_summary = transform.bind(order_data)
    etl = load.bind(order_summary)
    assert workflow.run(etl) == "Total order value is: 1236.70"


# --- comparisons/cadence --------------------------------------------------------------------------------

def download(url: str) -> str:
    return f"contents of {url}"


def process(contents: str) -> str:
    return "processed: " + contents


@ray.remote
def upload_all(log: str, file_contents: List[ray.ObjectRef]):
    @ray.remote
    def upload_one(contents: str) -> None:
        _note(log, contents)

    children = [upload_one.bind(f) for f in file_contents]

    @ray.remote
    def wait_all(*deps) -> None:
        pass

    return workflow.continuation(wait_all.bind(*children))


@ray.remote
def process_all(log: str, file_contents: List[ray.ObjectRef]):
    @ray.remote
    def process_one(contents: str) -> str:
        return process(contents)

    children = [process_one.bind(f) for f in file_contents]
    return workflow.continuation(upload_all.bind(log, children))


@ray.remote
def download_all(log: str, urls: List[str]):
    @ray.remote
    def download_one(url: str) -> str:
        return download(url)

    children = [download_one.bind(u) for u in urls]
    return workflow.continuation(process_all.bind(log, children))


def test_cadence_file_processing(page, tmp_path):
    """``cadence/file_processing_workflow.py``: download_all continues into a download per file,
    all fed (a list) to process_all, which continues into a process per file, fed to upload_all,
    which continues into an upload per file. (5 files of a few bytes instead of 100 of 80 kB.) The
    lists' nodes arrive as ObjectRefs in 2.47, and binding them to the next tasks hands over
    their values, so every upload sees processed contents either way."""
    log = str(tmp_path / "uploads")
    files = ["file-{}".format(i) for i in range(5)]
    workflow.run(download_all.bind(log, files))
    assert sorted(_lines(log)) == sorted(f"processed: contents of {f}" for f in files)


@ray.remote
def compose_greeting(greeting: str, name: str) -> str:
    return greeting + ": " + name


@ray.remote
def main_workflow(name: str) -> str:
    return workflow.continuation(compose_greeting.bind("Hello", name))


def test_cadence_sub_workflow(page):
    """``cadence/sub_workflow_workflow.py``: a task continues into a sub-workflow; "Hello: Alice"."""
    assert workflow.run(main_workflow.bind("Alice")) == "Hello: Alice"


def make_request(*args) -> str:
    return "result"


@ray.remote
def generate_request_id():
    import uuid

    return uuid.uuid4().hex


@ray.remote
def book_car(request_id: str) -> str:
    return make_request("book_car", request_id)


@ray.remote
def book_hotel(request_id: str, *deps) -> str:
    return make_request("book_hotel", request_id)


@ray.remote
def book_flight(request_id: str, *deps) -> str:
    return make_request("book_flight", request_id)


@ray.remote
def book_all(car_req_id: str, hotel_req_id: str, flight_req_id: str) -> str:
    car_res_id = book_car.bind(car_req_id)
    hotel_res_id = book_hotel.bind(hotel_req_id, car_res_id)
    flight_res_id = book_flight.bind(hotel_req_id, hotel_res_id)

    @ray.remote
    def concat(*ids: List[str]) -> str:
        return ", ".join(ids)

    return workflow.continuation(concat.bind(car_res_id, hotel_res_id, flight_res_id))


@ray.remote
def handle_errors(car_req_id: str, hotel_req_id: str, flight_req_id: str,
                  final_result: Tuple[Optional[str], Optional[Exception]]) -> str:
    result, error = final_result

    @ray.remote
    def wait_all(*deps) -> None:
        pass

    @ray.remote
    def cancel(request_id: str) -> None:
        make_request("cancel", request_id)

    if error:
        return workflow.continuation(wait_all.bind(cancel.bind(car_req_id), cancel.bind(hotel_req_id),
                                                   cancel.bind(flight_req_id)))
    else:
        return result


def test_cadence_trip_booking(page):
    """``cadence/trip_booking_workflow.py``: three idempotency tokens, ``book_all`` (with
    ``.options(**workflow.options(catch_exceptions=True))``) continues into car -> hotel -> flight
    bookings, and ``handle_errors`` gets ``(result, None)``: "result, result, result"."""
    car_req_id = generate_request_id.bind()
    hotel_req_id = generate_request_id.bind()
    flight_req_id = generate_request_id.bind()
    saga_result = book_all.options(**workflow.options(catch_exceptions=True)).bind(
        car_req_id, hotel_req_id, flight_req_id)
    final_result = handle_errors.bind(car_req_id, hotel_req_id, flight_req_id, saga_result)
    assert workflow.run(final_result) == "result, result, result"


# --- comparisons/google_cloud_workflows ------------------------------------------------------------------

@ray.remote
def iterate(array: List[str], result: str, i: int) -> str:
    if i >= len(array):
        return result
    return workflow.continuation(iterate.bind(array, result + array[i], i + 1))


def test_gcw_concat_array(page):
    """``google_cloud_workflows/concat_array_workflow.py``: a loop by continuation; "foobar"."""
    assert workflow.run(iterate.bind(["foo", "ba", "r"], "", 0)) == "foobar"


@ray.remote
def get_size(size: int) -> int:
    return size


@ray.remote
def small(result: int) -> str:
    return "SmallFunc"


@ray.remote
def medium(result: int) -> str:
    return "MediumFunc"


@ray.remote
def large(result: int) -> str:
    return "LargeFunc"


@ray.remote
def decide(result: int) -> str:
    if result < 10:
        return workflow.continuation(small.bind(result))
    elif result < 100:
        return workflow.continuation(medium.bind(result))
    else:
        return workflow.continuation(large.bind(result))


@pytest.mark.parametrize("size, called", [(3, "SmallFunc"), (42, "MediumFunc"), (420, "LargeFunc")])
def test_gcw_data_conditions(page, size, called):
    """``google_cloud_workflows/data_cond_workflow.py``: the branch depends on a task's output
    (the example's mocked request always said 42; here each branch is taken once)."""
    assert workflow.run(decide.bind(get_size.bind(size))) == called


@ray.remote
def hello_name(name: str) -> str:
    return workflow.continuation(format_name.bind(name))


@ray.remote
def format_name(name: str) -> str:
    return f"hello, {name}"


@ray.remote
def report(msg: str) -> str:
    return f"report: {msg}"


def test_gcw_sub_workflows(page):
    """``google_cloud_workflows/sub_workflows_workflow.py``: ``report`` gets the value of a task
    that continued into a sub-workflow (not a DAG node, not an ObjectRef)."""
    r1 = hello_name.bind("Kristof")
    r2 = report.bind(r1)
    assert workflow.run(r2) == "report: hello, Kristof"


# --- comparisons/metaflow, comparisons/prefect -------------------------------------------------------------

@ray.remote
def start():
    titles = ["Stranger Things", "House of Cards", "Narcos"]
    children = [a.bind(t) for t in titles]
    return workflow.continuation(end.bind(children))


@ray.remote
def a(title: str) -> str:
    return f"{title} processed"


@ray.remote
def end(results: "List[ray.ObjectRef[str]]") -> str:
    return "\n".join(ray.get(results))


def test_metaflow_foreach(page):
    """``metaflow/foreach_workflow.py``: ``start`` continues into one ``a`` per title, all fed as a
    list to ``end``, which ``ray.get``s them (2.47 passed the list's nodes as ObjectRefs)."""
    assert workflow.run(start.bind()) == "Stranger Things processed\nHouse of Cards processed\nNarcos processed"


def _next_fibonacci(n: int) -> int:
    """The n-th Fibonacci number (1, 1, 2, 3, ...): the example asked a web API for it."""
    previous, current = 0, 1
    for _ in range(n - 1):
        previous, current = current, previous + current
    return current


@ray.remote
def compute_large_fib(M: int, n: int = 1, fib: int = 1):
    next_fib = _next_fibonacci(n)
    if next_fib > M:
        return fib
    else:
        return workflow.continuation(compute_large_fib.bind(M, n + 1, next_fib))


def test_prefect_compute_fib(page):
    """``prefect/compute_fib_workflow.py``: the largest Fibonacci number not above 100 by a
    continuation loop; the example's assert: 89."""
    assert workflow.run(compute_large_fib.bind(100)) == 89
