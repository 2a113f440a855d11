"""Unpickling stored graphs and task calls, including those written by earlier versions.

A stored graph pickles our own classes (``WorkflowGraph``, ``TaskSpec``, ``Dep``,
``TaskOptions``) by module path. ray-durable 0.1 kept them in ``engine._graph`` and
``engine._options``; a workflow submitted then and resumed now must still load, so those
paths are mapped to where the classes live today. Add a line here whenever one moves.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

MOVED_MODULES = {
    "engine._graph": "engine.graph._build",  # 0.1
    "engine._options": "engine.graph._options",  # 0.1
}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        return super().find_class(MOVED_MODULES.get(module, module), name)


def loads(data: bytes) -> Any:
    """``cloudpickle.loads``, with the module renames of :data:`MOVED_MODULES` applied."""
    return _Unpickler(io.BytesIO(data)).load()
