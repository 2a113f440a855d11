"""Task ids generated for a DAG: ray.workflow 2.47's rule, stable (resume depends on them), and
cheap for wide DAGs.

2.47 (workflow_state_from_dag.py, tried on ray 2.47.1): a task's id is its ``task_id``
option, else ``<module>.<qualname>`` of its function; the workflow management actor numbered
repeats ``<id>_1``, ``<id>_2`` ... in the order the DAG's nodes were visited (post-order, the
arguments left to right, then the task): ``add.bind(add.bind(1, 2), add.bind(3, 4))`` gave
``__main__.add`` = 3, ``__main__.add_1`` = 7, ``__main__.add_2`` = 10; three tasks given
``task_id="x"`` became ``x``, ``x_1``, ``x_2``.
"""

import ray

import engine as workflow
from engine.graph._build import _post_order, build_graph, default_task_id, slugify

STEP = f"{__name__}.step"


@ray.remote
def step(*xs):
    return sum(xs)


def _reference_ids(root) -> list[str]:
    """The naming rule spelled out naively: the first free of id, id_1, id_2 ..."""
    used, out = set(), []
    for node in _post_order(root):
        given = getattr(node, "_bound_options", {}).get("_labels")
        base = default_task_id(node._body) if not given else None
        n, candidate = 0, base
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        out.append(candidate)
    return out


def test_a_wide_dag_names_its_tasks_module_qualname_then_1_2_in_order():
    root = step.bind(*[step.bind(i) for i in range(1000)])
    graph = build_graph(root)
    assert list(graph.tasks) == _reference_ids(root)
    assert set(graph.tasks) == {STEP} | {f"{STEP}_{n}" for n in range(1, 1001)}
    assert graph.output_task_id == f"{STEP}_1000"


def test_the_2_47_example_numbers_in_post_order():
    graph = build_graph(step.bind(step.bind(1, 2), step.bind(3, 4)))
    assert list(graph.tasks) == [STEP, f"{STEP}_1", f"{STEP}_2"]
    assert graph.tasks[f"{STEP}_2"].deps == (STEP, f"{STEP}_1")


def test_a_task_id_used_twice_becomes_id_1_then_id_2():
    """2.47 accepted repeats of a task_id (a decorated function called twice): not an error."""
    x = step.options(**workflow.options(task_id="x"))
    graph = build_graph(x.bind(x.bind(1, 2), x.bind(3, 4)))
    assert list(graph.tasks) == ["x", "x_1", "x_2"]
    assert [spec.base_id for spec in graph.tasks.values()] == ["x", "x", "x"]


def test_given_ids_and_generated_ones_never_collide():
    inputs = [workflow.options(task_id=f"{STEP}_1")(step).bind(0), step.bind(1), step.bind(2),
              workflow.options(task_id=f"{STEP}_7")(step).bind(3), step.bind(4)]
    graph = build_graph(step.bind(*inputs))
    assert sorted(graph.tasks) == sorted([f"{STEP}_1", STEP, f"{STEP}_2", f"{STEP}_7", f"{STEP}_3",
                                          f"{STEP}_4"])


def test_ids_are_stable_across_builds():
    def dag():
        return step.bind(step.bind(1), [step.bind(2)], workflow.options(task_id="t")(step).bind(3))
    assert list(build_graph(dag()).tasks) == list(build_graph(dag()).tasks)


def test_default_ids_are_slugified_qualnames():
    def outer():
        @ray.remote
        def inner():
            return 1
        return inner
    assert default_task_id(outer()._function) == f"{__name__}.test_default_ids_are_slugified_qualnames.locals.outer.locals.inner"
    assert slugify("a b--c<d>é") == "ab-cde"  # as 2.47: spaces dropped, dash runs joined
