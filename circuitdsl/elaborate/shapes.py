"""The axes of declared ports and populations (`B[joint = 5]`, `N[cell = {AVA, AVB}]`, `u[x = grid(...)]`),
checked against the limits before anything is allocated."""

from __future__ import annotations

import math

from circuitdsl import ast
from circuitdsl.elaborate import operators
from circuitdsl.elaborate.network import Network
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import Symbol, describe
from circuitdsl.errors import Span
from circuitdsl.ir import model as ir


def unit_count(shape: tuple[ir.Axis, ...]) -> int:
    """How many units a shape holds."""
    return math.prod(axis.size for axis in shape)


def declared_shape(net: Network, axes: tuple[ast.Axis, ...] | None, scope: Scope) -> tuple[ir.Axis, ...]:
    """The axes as written, each named once and of a size within the limits."""
    out: list[ir.Axis] = []
    for axis in axes or ():
        out.append(_axis(net, axis, scope, out))
    return tuple(out)


def _axis(net: Network, axis: ast.Axis, scope: Scope, earlier: list[ir.Axis]) -> ir.Axis:
    ev = net.evaluator
    if axis.name is None:
        raise ev.fail("E304", "an axis needs a name", axis.span, ["write it as name = size, e.g. B[joint = 5]"])
    value = ev.constant(axis.size, scope, f"the size of axis '{axis.name.name}'")
    labels, domain = None, None
    if isinstance(value, operators.Grid):
        domain, value = value.domain, value.size
    if isinstance(value, frozenset):
        if not all(isinstance(v, Symbol | str) for v in value):
            raise ev.fail("E301", "unit names are names or strings", axis.size.span)
        labels = sorted(v.name if isinstance(v, Symbol) else v for v in value)
        size = len(labels)
    else:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ev.fail("E301", f"an axis size is a whole number, not {describe(value)}", axis.size.span)
        size = value
    if size < 1:
        raise ev.fail("E304", f"axis '{axis.name.name}' has size {size}; it needs at least 1", axis.size.span)
    if size > net.limits.units:
        raise ev.fail("E702", f"axis '{axis.name.name}' has {size} units, {net.limits.over('units')}",
                      axis.size.span, [net.limits.hint("units")])
    if any(a.name == axis.name.name for a in earlier):
        raise ev.fail("E304", f"axis '{axis.name.name}' appears twice", axis.name.span)
    return ir.Axis(name=axis.name.name, size=size, labels=labels, domain=domain)


def checked_size(net: Network, shape: tuple[ir.Axis, ...], span: Span) -> int:
    """The units of `shape`, E702 should they pass the limit together with the units declared so far."""
    n = unit_count(shape)
    if net.counts.units + n > net.limits.units:
        raise net.evaluator.fail("E702", f"{n} more units make {net.counts.units + n}, {net.limits.over('units')}",
                                 span, [net.limits.hint("units")])
    return n
