"""The package never runs code it builds at run time: no eval, exec, compile, __import__ or import_module.

Every .py file of circuitdsl/ is parsed with `ast` and each call is inspected.  Bare names are builtins
(unless the module imports or defines something by that name); `builtins.eval(...)` and
`importlib.import_module(...)` are caught as attribute calls on those modules, while attribute calls on
anything else (`re.compile`, `self.compile`) are fine.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "circuitdsl"
FILES = sorted(PACKAGE.rglob("*.py"))

FORBIDDEN_BUILTINS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_ATTRIBUTES = {("builtins", name) for name in FORBIDDEN_BUILTINS} | {("importlib", "import_module")}


def _aliases(tree: ast.AST) -> tuple[dict[str, str], set[str]]:
    """Module aliases (`import importlib as il` -> {"il": "importlib"}) and names bound by from-imports to a
    forbidden function (`from importlib import import_module as im` -> {"im"})."""
    modules: dict[str, str] = {}
    forbidden_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                modules[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else alias.name.split(
                    ".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module in {"builtins", "importlib"}:
            for alias in node.names:
                if (node.module, alias.name) in FORBIDDEN_ATTRIBUTES:
                    forbidden_names.add(alias.asname or alias.name)
    return modules, forbidden_names


def forbidden_calls(source: str, filename: str = "<source>") -> list[str]:
    """Each forbidden call in `source`, as 'line: text'."""
    tree = ast.parse(source, filename)
    modules, imported = _aliases(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and (func.id in FORBIDDEN_BUILTINS or func.id in imported):
            found.append(f"{node.lineno}: {func.id}(...)")
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            module = modules.get(func.value.id)
            if (module, func.attr) in FORBIDDEN_ATTRIBUTES:
                found.append(f"{node.lineno}: {func.value.id}.{func.attr}(...)")
        elif isinstance(func, ast.Attribute) and func.attr == "import_module":  # importlib.util... chains
            found.append(f"{node.lineno}: ....import_module(...)")
    # getattr(builtins, "eval") and friends reach the same functions by name
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" \
                and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) \
                and node.args[1].value in FORBIDDEN_BUILTINS | {"import_module"}:
            found.append(f"{node.lineno}: getattr(..., {node.args[1].value!r})")
    return found


def test_the_package_has_python_files() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in FILES}
    assert {"__init__.py", "api.py", "parser.py", "elaborate/evaluate.py"} <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_dynamic_code(path: Path) -> None:
    found = forbidden_calls(path.read_text(encoding="utf-8"), str(path))
    assert not found, f"{path.relative_to(PACKAGE.parent)} runs dynamic code:\n" + "\n".join(found)


# ---- the checker itself ------------------------------------------------------------------------------
@pytest.mark.parametrize("source", [
    "eval('1 + 1')",
    "x = exec(code)",
    "compile(src, 'f', 'exec')",
    "__import__('os')",
    "import importlib\nimportlib.import_module('os')",
    "import importlib as il\nil.import_module('os')",
    "from importlib import import_module\nimport_module('os')",
    "from importlib import import_module as load\nload('os')",
    "import builtins\nbuiltins.eval('1')",
    "f = getattr(builtins, 'exec')",
    "def f():\n    return [eval(s) for s in xs]",
])
def test_checker_finds(source: str) -> None:
    assert forbidden_calls(source)


@pytest.mark.parametrize("source", [
    "import re\nre.compile('a+')",
    "pattern = re.compile(r'x')",
    "self.compile(tree)",
    "backend.eval(expr)",
    "model.eval()",
    "evaluator.eval(node, scope)",
    "def evaluate(x):\n    return x",
    "from importlib import resources\nresources.files('circuitdsl')",
    "'eval'",
    "x.exec_(1)",
])
def test_checker_allows(source: str) -> None:
    assert forbidden_calls(source) == []
