"""Tasks for the fork and check tests (a module, so Ray workers can import them).

Each task appends its name to a file in ``log_dir`` when it runs, so a test counts which
tasks a fork re-ran; ``fail`` raises while ``<log_dir>/fail-<name>`` exists. ``big`` pads
the output past the inline limit, so it is a blob that a fork shares rather than a value
inside the event.
"""

import os
import time

import ray

import engine as workflow

PAD = 20_000  # > engine.store._payloads.INLINE_LIMIT


def ran(log_dir, name):
    path = os.path.join(log_dir, "runs")
    if not os.path.exists(path):
        return 0
    return open(path).read().splitlines().count(name)


def _note(log_dir, name):
    with open(os.path.join(log_dir, "runs"), "a") as f:
        f.write(name + "\n")


@ray.remote
def step(log_dir, name, *inputs, big=False):
    _note(log_dir, name)
    if os.path.exists(os.path.join(log_dir, f"fail-{name}")):
        raise ValueError(f"{name} failed on purpose")
    while os.path.exists(os.path.join(log_dir, f"hold-{name}")):
        time.sleep(0.05)
    return {"name": name, "inputs": [i["name"] if isinstance(i, dict) else i for i in inputs],
            "pad": "x" * (PAD if big else 0)}


@ray.remote
def step_v2(log_dir, name, *inputs, big=False):
    """The same step, "renamed" (another function)."""
    _note(log_dir, name)
    return {"name": name + "-v2", "inputs": [i["name"] if isinstance(i, dict) else i for i in inputs], "pad": ""}


def task(fn, task_id):
    return fn.options(**workflow.options(task_id=task_id))


def pipeline(log_dir, fn_c=step, c_arg="c", big=True):
    """a -> b -> c -> d, and e -> c, d: a fork from c re-runs c and d only (c waits for e, so
    e has completed whenever c fails)."""
    a = task(step, "a").bind(log_dir, "a", big=big)
    b = task(step, "b").bind(log_dir, "b", a, big=big)
    e = task(step, "e").bind(log_dir, "e", big=big)
    c = task(fn_c, "c").bind(log_dir, c_arg, b, e)
    return task(step, "d").bind(log_dir, "d", c, e)


def default_ids(log_dir):
    """The same shape with default task ids (<module>.<qualname>, then _1, _2)."""
    a = step.bind(log_dir, "a")
    return step.bind(log_dir, "d", step.bind(log_dir, "c", a))


def cli_pipeline():
    """For ``--dag tests.engine.fork_tasks:cli_pipeline``: the pipeline over $FORK_TEST_LOG_DIR."""
    return pipeline(os.environ["FORK_TEST_LOG_DIR"], big=False)


def cli_pipeline_renamed():
    return pipeline(os.environ["FORK_TEST_LOG_DIR"], fn_c=step_v2, big=False)


@ray.remote
def expand(log_dir, name, *inputs):
    """Continues into a sub-DAG of two steps, ``<name>-inner`` then ``<name>-out``."""
    _note(log_dir, name)
    inner = task(step, f"{name}-inner").bind(log_dir, f"{name}-inner", *inputs)
    return workflow.continuation(task(step, f"{name}-out").bind(log_dir, f"{name}-out", inner))


def with_continuation(log_dir):
    """a -> x (continues into x-inner -> x-out) -> d."""
    a = task(step, "a").bind(log_dir, "a")
    x = task(expand, "x").bind(log_dir, "x", a)
    return task(step, "d").bind(log_dir, "d", x)
