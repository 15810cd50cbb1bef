"""The elaborator stays readable: no function in circuitdsl/elaborate/ runs over 60 lines.

Every .py file there is parsed with `ast`; each function and method (nested ones included) is measured from
its `def` line to its last line, decorators not counted.
"""

from __future__ import annotations

import ast
from pathlib import Path

ELABORATE = Path(__file__).resolve().parent.parent / "circuitdsl" / "elaborate"
MAX_LINES = 60


def long_functions(source: str, filename: str, limit: int = MAX_LINES) -> list[str]:
    """`file:line name (n lines)` for each function of `source` longer than `limit` lines."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            assert node.end_lineno is not None
            lines = node.end_lineno - node.lineno + 1
            if lines > limit:
                found.append(f"{filename}:{node.lineno} {node.name} ({lines} lines)")
    return found


def test_no_function_in_the_elaborator_is_over_60_lines() -> None:
    files = sorted(ELABORATE.glob("*.py"))
    assert len(files) > 10  # the package is where this test looks for it
    too_long = [hit for path in files for hit in long_functions(path.read_text(encoding="utf-8"), path.name)]
    assert not too_long, "split these into named helpers:\n" + "\n".join(too_long)


def _lines(n: int, indent: int) -> str:
    return "".join(f"{' ' * indent}x{i} = {i}\n" for i in range(n))


def test_the_measure_counts_every_line_of_nested_functions_and_methods() -> None:
    source = (f"def exactly_sixty():\n{_lines(59, 4)}"  # lines 1-60
              f"class C:\n    def method(self):\n{_lines(60, 8)}"  # method: lines 62-122
              f"def outer():\n    async def inner():\n{_lines(60, 8)}    return inner\n")  # 123-185, 124-184
    assert sorted(long_functions(source, "m.py")) == ["m.py:123 outer (63 lines)", "m.py:124 inner (61 lines)",
                                                      "m.py:62 method (61 lines)"]
