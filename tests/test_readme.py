"""The README's Python examples run, as written, and say what they claim.

Convention (for everyone who edits the README):

* every fenced block whose info string is exactly ``python`` is run; blocks fenced ``python no-run``
  (or any other word after ``python``), and blocks in other languages (``sh``, ``console``,
  ``text``), are not;
* the runnable blocks run in README order, in one fresh process with one namespace (a later block
  may use what an earlier one defined), on a local Ray of its own, with the storage path
  ``/tmp/ray/workflow_data`` replaced by a temporary directory;
* a statement line ending in ``# -> VALUE`` whose VALUE is a Python literal (``6``, ``"x"``,
  ``[1, 2]``) is checked: the statement's value must equal it. Other ``# ->`` comments (``# ->
  ray.ObjectRef``) are prose.

A failure names the block (its first line number in README.md) and shows the error.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
README = os.path.join(ROOT, "README.md")
_FENCE = re.compile(r"^```(.*)$")
_CLAIM = re.compile(r"^(?P<code>\S.*?)\s+# -> (?P<value>.+)$")


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """(first line number, source, runnable) of every ``python`` fenced block."""
    blocks, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        match = _FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        info = match.group(1).strip().split()
        start = i + 1
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        if info and info[0] == "python":
            blocks.append((start + 1, "\n".join(lines[start:i]) + "\n", len(info) == 1))
        i += 1
    return blocks


def with_checks(source: str) -> str:
    """``expr  # -> LITERAL`` becomes ``assert (expr) == LITERAL, ...`` where LITERAL is a literal."""
    out = []
    for line in source.splitlines():
        match = _CLAIM.match(line)
        if match is not None:
            try:
                expected = ast.literal_eval(match.group("value").strip())
                ast.parse(match.group("code"), mode="eval")
            except (ValueError, SyntaxError):
                expected = None
            else:
                line = (f"__got = ({match.group('code')})\n"
                        f"assert __got == {expected!r}, f'README says {expected!r}, got {{__got!r}}'")
        out.append(line)
    return "\n".join(out) + "\n"


def test_the_convention_is_applied():
    text = "```python\na = 1\n```\n```python no-run\nb\n```\n```sh\nc\n```\n"
    assert python_blocks(text) == [(2, "a = 1\n", True), (5, "b\n", False)]
    assert "assert __got == 6" in with_checks("add(1, 5)  # -> 6")
    assert with_checks("f()  # -> ray.ObjectRef") == "f()  # -> ray.ObjectRef\n"


def test_the_readme_examples_run(tmp_path):
    with open(README, encoding="utf-8") as f:
        blocks = [(line, source) for line, source, runnable in python_blocks(f.read()) if runnable]
    assert len(blocks) >= 2, "the README's examples were not found"
    storage = str(tmp_path / "workflow_data")
    program = ["import os, sys, traceback", "namespace = {'__name__': '__main__'}  # as in a user's script"]
    for line, source in blocks:
        code = with_checks(source.replace("/tmp/ray/workflow_data", storage))
        program += [f"try:\n    exec(compile({code!r}, 'README.md:{line}', 'exec'), namespace)",
                    f"except BaseException:\n    traceback.print_exc()\n"
                    f"    sys.exit('README block at line {line} failed')"]
    script = tmp_path / "readme_blocks.py"
    script.write_text("\n".join(program) + "\nprint('all README blocks ran')\n")
    ray_tmp = tempfile.mkdtemp(prefix="rd-readme-", dir="/tmp")  # no cluster record from elsewhere
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_TMPDIR=ray_tmp, PYTHONPATH=ROOT)
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path), env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "all README blocks ran" in proc.stdout
