"""Dependencies point one way: engine -> replay -> storage_backends (DESIGN.md).

An AST check over every .py file of the three packages: ``storage_backends``
must not import ``replay``, ``engine`` or ``ray``; ``replay`` must not import
``engine`` or ``ray``. Every form counts: ``import x``, ``import x.y``,
``from x import y``, ``from x.y import z``, relative imports that climb out of
the package (``from ..engine import y``), imports inside functions or under
``if TYPE_CHECKING``, and ``importlib.import_module("x")`` / ``__import__("x")``
with a literal name. The checker itself is tested on synthetic bad sources, so
this test cannot pass by checking nothing.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FORBIDDEN: dict[str, frozenset[str]] = {
    "storage_backends": frozenset({"replay", "engine", "ray"}),
    "replay": frozenset({"engine", "ray"}),
    "engine": frozenset(),
}


def imported_modules(source: str, module: str, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute dotted name) of every module ``source`` imports.

    ``module`` is the dotted name of the file (``replay._cli``; for an
    ``__init__.py`` the package's name with ``is_package``), used to resolve
    relative imports.
    """
    tree = ast.parse(source)
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                keep = len(package_parts) - (node.level - 1)
                base = package_parts[:keep] if keep > 0 else []
                if node.module:
                    found.append((node.lineno, ".".join(base + [node.module])))
                else:  # from .. import engine: each name may be a module
                    found.extend((node.lineno, ".".join(base + [alias.name])) for alias in node.names)
            elif node.module:
                found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value))
    return found


def layering_violations(source: str, module: str, is_package: bool = False) -> list[str]:
    """Messages for every import in ``source`` that reverses the layering."""
    forbidden = FORBIDDEN.get(module.split(".")[0], frozenset())
    return [
        f"{module} (line {line}) imports {name!r}"
        for line, name in imported_modules(source, module, is_package)
        if name and name.split(".")[0] in forbidden
    ]


def package_files() -> list[tuple[str, str, bool]]:
    """(path, dotted module name, is_package) of every .py file of the three packages."""
    files = []
    for package in FORBIDDEN:
        root = os.path.join(REPO, package)
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for filename in filenames:
                if filename.endswith(".py"):
                    path = os.path.join(dirpath, filename)
                    rel = os.path.relpath(path, REPO)[:-3].split(os.sep)
                    is_package = rel[-1] == "__init__"
                    if is_package:
                        rel = rel[:-1]
                    files.append((path, ".".join(rel), is_package))
    return sorted(files)


def test_the_check_sees_every_package():
    modules = {module for _path, module, _pkg in package_files()}
    for expected in ("storage_backends", "storage_backends._local", "storage_backends._s3", "replay",
                     "replay._codec", "replay._fold", "replay._cli", "engine", "engine.api._workflows",
                     "engine.runtime._manager", "engine.cli._main"):
        assert expected in modules, f"{expected} not found: the layering check would check nothing"


@pytest.mark.parametrize("path,module,is_package",
                         [pytest.param(*f, id=f[1] + (".__init__" if f[2] else "")) for f in package_files()])
def test_no_import_reverses_the_layering(path, module, is_package):
    with open(path, encoding="utf-8") as f:
        source = f.read()
    assert layering_violations(source, module, is_package) == []


# --- inside engine: rooms that depend one way, and no import circles -------------------

# A module may import engine modules of its own room or of a room ranked below it. Shared names
# sit at the bottom so the runtime, the API and the workers never need one another to find the
# manager; the public package (engine/__init__) imports its rooms lazily, by name.
ENGINE_ROOMS: dict[str, int] = {
    "engine._names": 0, "engine.exceptions": 0, "engine.event_listener": 0,
    "engine.store": 1,
    "engine.graph": 2,
    "engine.runtime": 3,
    "engine.api": 4,
    "engine.management": 5, "engine.http_event_provider": 5,
    "engine": 6,
    "engine.ui": 7,
    "engine.cli": 8,
    "engine.__main__": 9, "engine.demo": 9,
}


def engine_room(module: str) -> str:
    """The room of an engine module: the longest ENGINE_ROOMS key it is, or is inside."""
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in ENGINE_ROOMS:
            return candidate
    raise KeyError(f"{module} is in no room of ENGINE_ROOMS; add its package there")


def engine_imports(source: str, module: str, is_package: bool, known: set[str]) -> list[tuple[int, str]]:
    """Engine modules ``source`` imports; ``from pkg import name`` counts as pkg.name when that
    is a module (``from ..store import _payloads`` depends on engine.store._payloads)."""
    found = []
    for line, name in imported_modules(source, module, is_package):
        if name.split(".")[0] != "engine":
            continue
        found.append((line, name))
    tree = ast.parse(source)
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if not node.level else ".".join(
                package_parts[:len(package_parts) - (node.level - 1)] + [node.module])
            for alias in node.names:
                if f"{base}.{alias.name}" in known:
                    found.append((node.lineno, f"{base}.{alias.name}"))
    return found


def engine_room_violations(source: str, module: str, is_package: bool = False,
                           known: set[str] = frozenset()) -> list[str]:
    room = engine_room(module)
    out = []
    for line, name in engine_imports(source, module, is_package, set(known)):
        other = engine_room(name)
        if other != room and ENGINE_ROOMS[other] >= ENGINE_ROOMS[room]:
            out.append(f"{module} (line {line}) imports {name!r}: room {other} is not below {room}")
    return out


def _engine_files() -> list[tuple[str, str, bool]]:
    return [f for f in package_files() if f[1].split(".")[0] == "engine"]


@pytest.mark.parametrize("path,module,is_package",
                         [pytest.param(*f, id=f[1] + (".__init__" if f[2] else "")) for f in _engine_files()])
def test_engine_rooms_depend_one_way(path, module, is_package):
    known = {m for _p, m, _pkg in _engine_files()}
    with open(path, encoding="utf-8") as f:
        assert engine_room_violations(f.read(), module, is_package, known) == []


def find_import_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules that import one another in a circle (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, path + [nxt])
                if found:
                    return found
        state[node] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            found = visit(module, [module])
            if found:
                return found
    return None


def test_no_import_circle_inside_engine():
    """Every import counts, also one inside a function (the old _worker -> _manager one did)."""
    files = _engine_files()
    known = {m for _p, m, _pkg in files}
    graph: dict[str, set[str]] = {}
    for path, module, is_package in files:
        with open(path, encoding="utf-8") as f:
            graph[module] = {name for _l, name in engine_imports(f.read(), module, is_package, known)
                             if name in known and name != module}
    circle = find_import_circle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_circle_check_finds_one():
    assert find_import_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_import_circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_room_check_flags_an_upward_import():
    known = {"engine.runtime._worker", "engine.runtime._manager", "engine.api._init", "engine._names"}
    assert engine_room_violations("from ..api._init import context", "engine.runtime._worker", False, known)
    assert engine_room_violations("def f():\n    from ..api import _init", "engine.runtime._worker", False, known)
    assert not engine_room_violations("from .._names import NAMESPACE", "engine.runtime._worker", False, known)
    assert not engine_room_violations("from ._manager import X", "engine.runtime._worker", False, known)
    with pytest.raises(KeyError, match="no room"):
        engine_room("enginex.y")


# --- the checker flags what it must (and only that) ---------------------------------

BAD = [
    ("storage_backends._x", "import ray"),
    ("storage_backends._x", "import ray.util.queue"),
    ("storage_backends._x", "from ray import remote"),
    ("storage_backends._x", "from ray.util import ActorPool"),
    ("storage_backends._x", "import replay"),
    ("storage_backends._x", "from replay._codec import decode_event"),
    ("storage_backends._x", "import engine.api._workflows as api"),
    ("storage_backends._x", "from .. import replay"),
    ("storage_backends._x", "from ..engine import run"),
    ("storage_backends._x", "import os, json, ray"),
    ("storage_backends._x", "def f():\n    import ray\n    return ray"),
    ("storage_backends._x", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from replay import Event"),
    ("storage_backends._x", "import importlib\nimportlib.import_module('ray')"),
    ("storage_backends._x", "__import__('engine')"),
    ("storage_backends", "from ..replay import fold"),
    ("replay._x", "import ray"),
    ("replay._x", "from ray.dag import FunctionNode"),
    ("replay._x", "import engine"),
    ("replay._x", "from engine import run"),
    ("replay._x", "from .._engine_alias import x\nfrom ..engine._graph import Graph"),
    ("replay.sub._x", "from ...engine import run"),
    ("replay._x", "try:\n    import ray\nexcept ImportError:\n    ray = None"),
]

GOOD = [
    ("storage_backends._x", "import os\nimport aiofiles\nfrom ._framing import scan\nfrom . import _ids"),
    ("storage_backends._x", "import rayon\nimport raydium.x\nfrom engineering import y\nimport replayer"),
    ("storage_backends._x", "x = 'import ray'\n# import replay"),
    ("replay._x", "import storage_backends\nfrom storage_backends import open_storage\nfrom ._codec import x"),
    ("replay._x", "from . import _fold\nimport msgspec"),
    ("engine._x", "import ray\nimport replay\nfrom storage_backends import Storage\nfrom .. import replay"),
]


@pytest.mark.parametrize("module,source", BAD)
def test_checker_flags_a_bad_source(module, source):
    assert layering_violations(source, module), f"not flagged: {source!r}"


@pytest.mark.parametrize("module,source", GOOD)
def test_checker_passes_a_good_source(module, source):
    assert layering_violations(source, module) == []


def test_relative_imports_resolve_to_absolute_names():
    assert imported_modules("from .. import engine", "replay._cli") == [(1, "engine")]
    assert imported_modules("from ._codec import x", "replay._cli") == [(1, "replay._codec")]
    assert imported_modules("from ._codec import x", "replay", is_package=True) == [(1, "replay._codec")]
    assert imported_modules("from . import _fold", "replay", is_package=True) == [(1, "replay._fold")]


# --- and at run time, transitively ------------------------------------------------------

def test_importing_replay_and_storage_does_not_load_ray_or_the_engine():
    code = (
        "import sys\n"
        "import storage_backends\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'replay', 'engine'))\n"
        "assert not bad, f'storage_backends loaded {bad}'\n"
        "import replay, replay._cli\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'engine'))\n"
        "assert not bad, f'replay loaded {bad}'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
