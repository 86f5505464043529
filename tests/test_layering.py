"""The core packages never reach up into a front end.

``assistant``, ``planners``, ``tools`` and ``sessions`` are the core; ``cli`` and
``tui`` are front ends on top of it (docs/ARCHITECTURE.md, "Dependency
direction"). A core module that imported a front end would make the core
unusable without it and drag its start-up cost into every caller, so this test
reads every core source file and fails on any import of ``imagent.cli`` or
``imagent.tui`` — module-level or inside a function, ``import`` statement or
``importlib.import_module``/``__import__`` with a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORE = ("assistant", "planners", "tools", "sessions")
FRONT_ENDS = ("imagent.cli", "imagent.tui")


def _is_front_end(module: str) -> bool:
    return any(module == f or module.startswith(f + ".") for f in FRONT_ENDS)


def front_end_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for every import of a front end found in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _is_front_end(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            hits = [n for n in names if _is_front_end(n)]
            found += [(node.lineno, hits[0])] if hits else []
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0].value
            if name in ("import_module", "__import__") and isinstance(arg, str) and _is_front_end(arg):
                found.append((node.lineno, arg))
    return found


def test_the_scanner_sees_every_form_of_import():
    src = ("import imagent.cli\n"
           "from imagent.tui.app import ChatApp\n"
           "from imagent import cli\n"
           "def f():\n    import importlib\n    importlib.import_module('imagent.cli.cmd_run')\n"
           "import imagent.clip_helpers\n"
           "from imagent.assistant import core\n")
    assert [line for line, _ in front_end_imports(src)] == [1, 2, 3, 6]


def test_core_packages_do_not_import_front_ends():
    offenders = []
    files = [p for pkg in CORE for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert len(files) > 20, "the core packages were not found"
    for path in files:
        for line, module in front_end_imports(path.read_text(encoding="utf-8")):
            offenders.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert not offenders, "core imports a front end:\n" + "\n".join(offenders)
