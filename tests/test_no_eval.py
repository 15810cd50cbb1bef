"""No user text is ever run as Python: the package calls no eval, exec, compile or dynamic import."""

from __future__ import annotations

import ast
from pathlib import Path

FORBIDDEN = {"eval", "exec", "compile", "__import__"}
PACKAGE = Path(__file__).resolve().parent.parent / "circuitdsl"


def _calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN:
                found.append(func.id)
            if isinstance(func, ast.Attribute) and func.attr == "import_module":
                found.append("import_module")
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN and isinstance(func.value, ast.Name) \
                    and func.value.id == "builtins":
                found.append(f"builtins.{func.attr}")
    return found


def test_the_check_sees_a_forbidden_call() -> None:
    assert _calls(ast.parse("eval(text)\nx.compile()\nimportlib.import_module(n)")) == ["eval", "import_module"]


def test_package_never_evaluates_text() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 10
    offenders = {str(f.relative_to(PACKAGE)): calls for f in files if (calls := _calls(ast.parse(f.read_text())))}
    assert offenders == {}
