"""Task functions for the engine tests (a module, so Ray workers can import them)."""

import os
import time

import ray

import engine as workflow


def note(path, text):
    """Append one line to a file: how the tests count executions."""
    with open(path, "a") as f:
        f.write(text + "\n")


def count(path, text=None):
    if not os.path.exists(path):
        return 0
    lines = open(path).read().splitlines()
    return len(lines) if text is None else lines.count(text)


@ray.remote
def add(a, b):
    return a + b


@ray.remote
def counted_add(path, name, a, b):
    note(path, name)
    return a + b


@ray.remote
def total(items):
    """Sum a list: DAG nodes nested in a list arrive as ObjectRefs (as in plain Ray and 2.47)."""
    return sum(ray.get(x) if isinstance(x, ray.ObjectRef) else x for x in items)


def _shown(value):
    if isinstance(value, ray.ObjectRef):
        return ("ref", _shown(ray.get(value)))
    if isinstance(value, list):
        return [_shown(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_shown(v) for v in value)
    if isinstance(value, dict):
        return {k: _shown(v) for k, v in value.items()}
    return value


@ray.remote
def describe(*args, **kwargs):
    """What the task was given, with every ObjectRef shown as ("ref", its value)."""
    return {"args": _shown(list(args)), "kwargs": _shown(kwargs)}


@ray.remote
def collect(*args, **kwargs):
    return {"args": list(args), "kwargs": kwargs}


@ray.remote
def identity(x):
    return x


@ray.remote
def slow(x, seconds):
    time.sleep(seconds)
    return x


GATE_BOUND_S = 600  # generous: a gate is opened by the test, this only ends a forgotten one


@ray.remote
def gated(x, gate):
    """Returns ``x`` once the file ``gate`` exists: a task that runs exactly as long as the test
    needs it to, however slow the machine (no fixed sleep to outlast)."""
    deadline = time.monotonic() + GATE_BOUND_S
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.02)
    return x


@ray.remote
def boom(message):
    raise ValueError(message)


@ray.remote
def factorial(n):
    if n <= 1:
        return 1
    return workflow.continuation(mul.bind(n, factorial.bind(n - 1)))


@ray.remote
def mul(a, b):
    return a * b


@ray.remote
def countdown(n, acc):
    if n == 0:
        return acc
    return workflow.continuation(countdown.bind(n - 1, acc + 1))


@ray.remote
def flaky(path, fail_times):
    """Raises until it has been called fail_times times."""
    note(path, "call")
    if count(path, "call") <= fail_times:
        raise RuntimeError(f"flaky failure #{count(path, 'call')}")
    return "ok"


@ray.remote
def kill_worker_until(marker, path):
    """Kills its own worker process (a system failure) until ``marker`` exists."""
    note(path, "call")
    if not os.path.exists(marker):
        os.kill(os.getpid(), 9)
    return "survived"


@ray.remote
def unpicklable_output():
    import threading

    return threading.Lock()


@ray.remote
def resources_seen():
    return {"cpus": ray.get_runtime_context().get_assigned_resources().get("CPU"),
            "env": os.environ.get("RD_TEST_ENV")}


@ray.remote
def big_output(n):
    return b"x" * n


@ray.remote
def chain_step(prev, index, counter, kill_at, driver_pid, flag):
    """Step ``index`` of a chain; at ``kill_at`` it kill -9s the driver, the first time only."""
    if index == kill_at and not os.path.exists(flag):
        open(flag, "w").close()
        time.sleep(1.0)  # let the manager record the steps before it (completions are group-committed)
        os.kill(driver_pid, 9)
        time.sleep(60)
    note(counter, f"{index}:{os.environ.get('RD_WF_ENV')}")
    return prev + 1


class Fragile:
    """Pickles until ``Fragile.broken`` is set (like an object that later opens a connection)."""

    broken = False

    def __reduce__(self):
        if Fragile.broken:
            raise TypeError("Fragile refuses to be pickled now")
        return (Fragile, ())


@ray.remote
def fails_until(marker, value):
    """An application error until ``marker`` exists."""
    if not os.path.exists(marker):
        raise RuntimeError(f"no marker at {marker}")
    return value


@ray.remote
def counted_slow_step(prev, counter, index):
    note(counter, str(index))
    time.sleep(0.5)
    return prev + 1


@ray.remote
def fail_then_slow(counter, name, marker):
    """Fails without ``marker``; with it, takes half a second. Every call is counted."""
    note(counter, name)
    if not os.path.exists(marker):
        raise RuntimeError("not yet")
    time.sleep(0.5)
    return name


@ray.remote
def needs_test_env(value, firsts):
    """Fails outside the engine tests (their workers have RAY_DURABLE_TEST set); see golden/."""
    if not os.environ.get("RAY_DURABLE_TEST"):
        raise RuntimeError("RAY_DURABLE_TEST is not set")
    return value + sum(firsts)


def tid(name: str, n: int = 0) -> str:
    """The default task id of this module's function ``name`` (2.47's ``<module>.<qualname>``),
    numbered as its ``n``-th use in one workflow."""
    base = f"{__name__}.{name}"
    return base if n == 0 else f"{base}_{n}"


@ray.remote
def counted_sum(items, counter, marker):
    """Sums a list of ObjectRefs; fails until ``marker`` exists. Every call is counted."""
    note(counter, "sum")
    if not os.path.exists(marker):
        raise RuntimeError("no marker yet")
    assert all(isinstance(x, ray.ObjectRef) for x in items), items
    return sum(ray.get(items))


@ray.remote
def counted_value(counter, name, value):
    note(counter, name)
    return value


@ray.remote
def continue_into(kind):
    """Returns a continuation whose output task fails ("root"), whose inner task fails
    ("inner"), or that succeeds ("ok"): the three cases of catch_exceptions + continuation."""
    if kind == "root":
        return workflow.continuation(boom.bind("root bad"))
    if kind == "inner":
        return workflow.continuation(identity.bind(boom.bind("inner bad")))
    return workflow.continuation(identity.bind(5))


@ray.remote
def named_factorial(n):
    """A recursive continuation whose every level asks for the same task_id."""
    if n <= 1:
        return 1
    inner = workflow.options(task_id="fact")(named_factorial).bind(n - 1)
    return workflow.continuation(workflow.options(task_id="mul")(mul).bind(n, inner))


class LockedError(Exception):
    """An exception that cannot be pickled (it holds a lock), as HTTP clients' errors can."""

    def __init__(self, message):
        super().__init__(message)
        import threading

        self.lock = threading.Lock()


@ray.remote
def call_api():
    raise LockedError("HTTP 503 from upstream")
