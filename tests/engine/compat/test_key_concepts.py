"""The "Key Concepts" page of ray.workflow 2.47 (doc/source/workflows/key-concepts.rst).

See the package docstring for what is changed in the snippets and what is out of scope (the
page's "Events" section: ``workflow.sleep`` and ``wait_for_event``).
"""

from __future__ import annotations

import uuid
from typing import List

import ray

import engine as workflow


@ray.remote
def one() -> int:
    return 1


@ray.remote
def add(a: int, b: int) -> int:
    return a + b


def test_dag_api_and_workflow_execution(page):
    """"DAG API" and "Workflow Execution": ``dag = add.bind(100, one.bind())``;
    ``workflow.run(dag) == 101`` and ``ray.get(workflow.run_async(dag)) == 101`` (the page's asserts)."""
    dag = add.bind(100, one.bind())
    assert workflow.run(dag) == 101
    output_ref = workflow.run_async(dag)
    assert ray.get(output_ref) == 101


def test_getting_the_result_of_a_workflow(ray_runtime, tmp_path):
    """"Workflow Execution", getting the result: the page configures the storage with
    ``ray.init(storage="/tmp/data")`` (Ray 2.60 refuses that argument: the storage goes to
    ``workflow.init`` instead, a plain path as there), runs ``run_1`` and reads it back;
    2.47: 101, SUCCESSFUL, 101, 101 (the page's asserts)."""
    workflow.init(str(tmp_path / "data"))
    dag = add.bind(100, one.bind())
    assert workflow.run(dag, workflow_id="run_1") == 101
    assert workflow.get_status("run_1") == workflow.WorkflowStatus.SUCCESSFUL
    assert workflow.get_output("run_1") == 101
    # workflow.get_output_async returns an ObjectRef.
    assert ray.get(workflow.get_output_async("run_1")) == 101


@ray.remote
def hello():
    return "hello"


@ray.remote
def words() -> List[ray.ObjectRef]:
    # NOTE: Here it is ".remote()" instead of ".bind()", so
    # it creates an ObjectRef instead of a DAG.
    return [hello.remote(), ray.put("world")]


@ray.remote
def concat(words: List[ray.ObjectRef]) -> str:
    return " ".join([ray.get(w) for w in words])


def test_objects(page):
    """"Objects": a task returns ObjectRefs (``[hello.remote(), ray.put("world")]``), the next one
    ``ray.get``s them; 2.47: "hello world" (the page's assert; tried on 2.47.1 too). "Objects are
    checkpointed when initially returned from a task": a resume must not need the first run's
    object store, so the workflow is read back by id as well."""
    workflow_id = f"objects-{uuid.uuid4().hex[:8]}"
    assert workflow.run(concat.bind(words.bind()), workflow_id=workflow_id) == "hello world"
    assert workflow.get_output(workflow_id) == "hello world"


@ray.remote
def fib(n: int) -> int:
    if n <= 1:
        return n
    # return a continuation of a DAG
    return workflow.continuation(add.bind(fib.bind(n - 1), fib.bind(n - 2)))


def test_dynamic_workflows_fibonacci(page):
    """"Dynamic Workflows": the recursive Fibonacci workflow; 2.47: ``fib(10) == 55`` (the page's assert)."""
    assert workflow.run(fib.bind(10)) == 55
