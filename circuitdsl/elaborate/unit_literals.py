"""Compound units in literals: `10 mV/ms`, `1 uF/cm**2`, `0.1/ms`.

The parser reads `10 mV/ms` as `(10 mV) / ms`; here a unit name that follows a literal through `*` or `/`
(optionally raised to a whole power) is read as that unit, unless the name is bound in scope: a state `m` or
`h` in `120 mS/cm**2 * m**3 * h` stays the state.  Anywhere else an unbound unit name is an error whose hint
says how to write it.
"""

from __future__ import annotations

from circuitdsl import ast, units
from circuitdsl.elaborate.scope import Scope
from circuitdsl.units import Quantity


def unit_term(node: ast.Expr, scope: Scope) -> Quantity | None:
    """`ms`, `cm**2` or `s**-1` as a quantity of one unit, when the name is a unit and not bound in scope."""
    exponent = 1
    if isinstance(node, ast.Binary) and node.op == "**":
        exponent = _whole(node.right)  # type: ignore[assignment]
        node = node.left
    if exponent is None or not isinstance(node, ast.Name) or node.id not in units.UNITS:
        return None
    if scope.lookup(node.id) is not None:
        return None
    scale, dim = units.UNITS[node.id]
    return Quantity(scale ** exponent, units.power(dim, exponent))


def _whole(node: ast.Expr) -> int | None:
    sign = 1
    if isinstance(node, ast.Unary) and node.op in ("+", "-"):
        sign, node = (-1 if node.op == "-" else 1), node.operand
    if isinstance(node, ast.Number) and isinstance(node.value, int):
        return sign * node.value
    return None


def is_literal(node: ast.Expr, scope: Scope) -> bool:
    """A number with or without units: `10`, `-65 mV`, `10 mV/ms`."""
    if isinstance(node, ast.Number | ast.Quantity):
        return True
    if isinstance(node, ast.Unary) and node.op in ("+", "-"):
        return is_literal(node.operand, scope)
    return isinstance(node, ast.Binary) and unit_suffix(node, scope) is not None


def unit_suffix(node: ast.Binary, scope: Scope) -> Quantity | None:
    """The unit `node` multiplies or divides a literal by (`/ms` in `10 mV/ms`), or None."""
    if node.op not in ("*", "/") or not is_literal(node.left, scope):
        return None
    return unit_term(node.right, scope)


def unit_name_hint(name: str) -> str | None:
    """For a unit name read where a value is expected: how to write a quantity with it."""
    if name not in units.UNITS:
        return None
    return f"'{name}' is a unit: write it after a number, as in 1 {name} or 10 mV/{name}"


def unknown_unit(node: ast.Binary, scope: Scope) -> ast.Name | None:
    """The name after a literal in `1 uF/cmm**2` that is neither a unit nor bound: read as a misspelt unit."""
    right = node.right.left if isinstance(node.right, ast.Binary) and node.right.op == "**" else node.right
    if node.op not in ("*", "/") or not isinstance(right, ast.Name) or not is_literal(node.left, scope):
        return None
    return right if right.id not in units.UNITS and scope.lookup(right.id) is None else None
