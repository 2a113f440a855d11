"""How workflow options ride on a Ray task's own options, so ``f.options(**workflow.options(...))`` works.

ray.workflow 2.47 made ``workflow.options(...)`` a mapping ``{"_metadata": {...}}`` and let Ray
carry it on the bound FunctionNode. Ray 2.48+ removed the ``_metadata`` option and rejects any
option key it does not know, so the options need another carrier that Ray accepts on
``.options(...)``, keeps in ``FunctionNode._bound_options``, and passes harmlessly to a plain
``.remote()`` call:

* ``_labels`` (Ray's "key-value labels of a task": a ``dict[str, str]``, type-checked only)
  does all three today. Our options ride as ONE label, :data:`LABEL_KEY`, whose value is the
  options encoded as JSON (exception types, which JSON cannot hold, as base64 cloudpickle).
* A user's own labels beside ours are kept; :func:`take` removes only ours.

If a future Ray release drops or restricts ``_labels``, ``tests/engine/test_ray_carrier.py``
fails with a message saying what to change: this module is the only place that knows the
carrier, so switching to another option Ray accepts means editing :data:`CARRIER_OPTION` and
:func:`encode`/:func:`decode` here (old logs are unaffected: options are recorded in events).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import cloudpickle

CARRIER_OPTION = "_labels"
LABEL_KEY = "ray-durable.io/workflow-options"
_PICKLED = "__pickled_exception_types__"


def encode(options: dict[str, Any]) -> str:
    """Checked workflow options -> the label value (a str, as Ray's labels must be)."""
    plain = dict(options)
    retry = plain.get("retry_exceptions")
    if isinstance(retry, tuple):
        plain["retry_exceptions"] = {_PICKLED: base64.b64encode(cloudpickle.dumps(retry)).decode()}
    return json.dumps(plain, separators=(",", ":"), sort_keys=True)


def decode(value: str) -> dict[str, Any]:
    """The label value -> workflow options (inverse of :func:`encode`)."""
    options = json.loads(value)
    retry = options.get("retry_exceptions")
    if isinstance(retry, dict) and _PICKLED in retry:
        options["retry_exceptions"] = cloudpickle.loads(base64.b64decode(retry[_PICKLED]))
    return options


def mapping(options: dict[str, Any]) -> dict[str, Any]:
    """What ``**workflow.options(...)`` expands to in ``f.options(...)``."""
    return {CARRIER_OPTION: {LABEL_KEY: encode(options)}}


def take(ray_options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a task's Ray options into (workflow options, Ray options without our label).

    Other labels the user set stay in the Ray options; an emptied label dict is dropped.
    """
    labels = ray_options.get(CARRIER_OPTION)
    if not isinstance(labels, dict) or LABEL_KEY not in labels:
        return {}, ray_options
    rest = dict(ray_options)
    others = {k: v for k, v in labels.items() if k != LABEL_KEY}
    if others:
        rest[CARRIER_OPTION] = others
    else:
        del rest[CARRIER_OPTION]
    return decode(labels[LABEL_KEY]), rest


def merged_labels(ray_options: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """``ray_options`` with ``options`` layered over any workflow options they already carry."""
    current, rest = take(ray_options)
    labels = dict(rest.get(CARRIER_OPTION) or {})
    labels[LABEL_KEY] = encode({**current, **options})
    return {**rest, CARRIER_OPTION: labels}
