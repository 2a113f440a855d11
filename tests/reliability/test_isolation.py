"""Fault 7: the test suite joined other Ray clusters. Every ``ray.init`` in tests, subprocess
drivers and benchmarks names its address: ``"local"`` (a cluster of its own), or the address a
test hands it on purpose. A plain ``ray.init()`` joins whatever ``ray start`` left running."""

import ast
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _ray_init_calls():
    for top in ("tests", "benchmarks"):
        for directory, _dirs, files in os.walk(os.path.join(REPO, top)):
            for name in files:
                if not name.endswith(".py"):
                    continue
                path = os.path.join(directory, name)
                tree = ast.parse(open(path).read(), path)
                for node in ast.walk(tree):
                    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                            and node.func.attr == "init" and isinstance(node.func.value, ast.Name)
                            and node.func.value.id == "ray"):
                        yield os.path.relpath(path, REPO), node


def test_every_ray_init_names_its_address():
    calls = list(_ray_init_calls())
    assert len(calls) >= 8  # the scan found them (a scan that finds nothing proves nothing)
    unnamed = [f"{path}:{node.lineno}" for path, node in calls
               if not any(keyword.arg == "address" for keyword in node.keywords)]
    assert unnamed == [], f"ray.init without address= joins other clusters: {unnamed}"

