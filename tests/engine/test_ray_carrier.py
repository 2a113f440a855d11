"""The guard for ``f.options(**workflow.options(...))`` on the Ray we run on.

ray.workflow 2.47 carried workflow options in Ray's ``_metadata`` task option, which Ray 2.48
removed; ``engine/graph/_ray_carrier.py`` carries them in ``_labels`` instead. If a Ray release
changes what ``_labels`` accepts or keeps, these tests fail and say what to change.
"""

import ray

from engine.graph import _ray_carrier

FIX = ("Ray {version} no longer {what}. engine/graph/_ray_carrier.py carries workflow options in "
       "the task option {option!r}; pick another option this Ray accepts on .options(...), keeps in "
       "FunctionNode._bound_options and passes harmlessly to .remote(), and change CARRIER_OPTION, "
       "encode/decode and take there.")


def _fail_message(what: str) -> str:
    return FIX.format(version=ray.__version__, what=what, option=_ray_carrier.CARRIER_OPTION)


@ray.remote
def _plus_one(x):
    return x + 1


OPTIONS = {"task_id": "x", "metadata": {"k": [1, "a"]}, "catch_exceptions": True, "checkpoint": False,
           "max_retries": 5, "retry_exceptions": (KeyError, ValueError)}


def test_ray_accepts_the_carrier_in_options():
    try:
        wrapped = _plus_one.options(**_ray_carrier.mapping(OPTIONS), num_cpus=0.5)
    except Exception as exc:  # what Ray raises for an option it does not know
        raise AssertionError(_fail_message(f"accepts it in .options() ({exc})")) from exc
    node = wrapped.bind(1)
    found, rest = _ray_carrier.take(node._bound_options)
    assert found == OPTIONS, _fail_message("keeps it in FunctionNode._bound_options")
    assert rest.get("num_cpus") == 0.5 and _ray_carrier.CARRIER_OPTION not in rest


def test_a_plain_remote_call_with_the_carrier_still_runs(ray_runtime):
    try:
        assert ray.get(_plus_one.options(**_ray_carrier.mapping(OPTIONS)).remote(1)) == 2
    except Exception as exc:
        raise AssertionError(_fail_message(f"runs a task that carries it ({exc})")) from exc


def test_other_labels_are_kept_and_layers_merge():
    options = {"_labels": {"team": "a"}}
    merged = _ray_carrier.merged_labels(options, {"task_id": "x"})
    merged = _ray_carrier.merged_labels(merged, {"metadata": {"m": 1}})
    found, rest = _ray_carrier.take(merged)
    assert found == {"task_id": "x", "metadata": {"m": 1}}
    assert rest == {"_labels": {"team": "a"}}
    assert _ray_carrier.take({"num_cpus": 1}) == ({}, {"num_cpus": 1})
