"""Task ids generated for a DAG: stable (resume depends on them) and cheap for wide DAGs."""

import ray

import engine as workflow
from engine.graph._build import _post_order, build_graph


@ray.remote
def step(*xs):
    return sum(xs)


def _reference_ids(root) -> list[str]:
    """The naming rule spelled out naively (no given ids): the first free of f, f_1, f_2 ..."""
    used, out = set(), []
    for node in _post_order(root):
        base, n, candidate = node._body.__name__, 0, node._body.__name__
        while candidate in used:
            n += 1
            candidate = f"{base}_{n}"
        used.add(candidate)
        out.append(candidate)
    return out


def test_a_wide_dag_names_its_tasks_f_then_f_1_f_2_in_order():
    root = step.bind(*[step.bind(i) for i in range(1000)])
    graph = build_graph(root)
    assert list(graph.tasks) == _reference_ids(root)
    assert set(graph.tasks) == {"step"} | {f"step_{n}" for n in range(1, 1001)}


def test_given_ids_are_skipped_by_generated_ones():
    inputs = [workflow.options(task_id="step_1")(step).bind(0), step.bind(1), step.bind(2),
              workflow.options(task_id="step_7")(step).bind(3), step.bind(4)]
    graph = build_graph(step.bind(*inputs))
    assert sorted(graph.tasks) == sorted(["step_1", "step", "step_2", "step_7", "step_3", "step_4"])
    assert len(set(graph.tasks)) == len(graph.tasks) == 6
