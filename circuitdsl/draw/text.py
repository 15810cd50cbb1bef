"""Text on diagrams: numbers, axes, selections and signal expressions, with selections merged across folds.

An expression is printed as a *template* (its structure, with a hole per leaf) and *slots* (what fills each
hole: a name and a selection).  Repeats that share a template fold into one diagram element whose slots merge
their selections: `q[0]`, `q[1]`, `q[2]` become `q[0:3]`.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from circuitdsl.ir import axes as axis_ops
from circuitdsl.ir.expr import fold
from circuitdsl.ir.model import Axis, AxisSel, Binary, Call, Cond, Const, Contract, Domain, Expr, Init, SliceSel, Unary

HOLE = "\x00"

_PRECEDENCE = {"or": 1, "and": 2, "==": 4, "!=": 4, "<": 4, "<=": 4, ">": 4, ">=": 4,
               "+": 5, "-": 5, "*": 6, "/": 6, "%": 6, "**": 8}
_UNARY = 7  # between * and **, as in the language
_ATOM = 100  # a number, a call or a hole: never parenthesised


@dataclass(frozen=True)
class Slot:
    """A leaf of a printed expression: a display name and the selection on it (None: all of it)."""

    name: str
    select: tuple[AxisSel, ...] | None = None
    shape: tuple[Axis, ...] = ()  # the axes `select` indexes, for labels


def number(value: float | bool) -> str:
    """A short, stable rendering of a number: 3 significant digits, no trailing zeros."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3g}"


def axes(shape: Sequence[Axis]) -> str:
    """`joint=5`, `channel=2 × x=8`, a grid as `x=128 on [0,1)`; empty for a single unit."""
    return " × ".join(f"{a.name}={a.size}" + (_domain(a.domain) if a.domain else "") for a in shape)


def _domain(domain: Domain) -> str:
    """` on [0,1)` for a periodic grid over [0, 1] (the end point is the start), ` on [0,1]` otherwise."""
    return f" on [{number(domain.low)},{number(domain.high)}{')' if domain.periodic else ']'}"


def indices(values: Sequence[int]) -> str:
    """A set of indices as written in the language where possible: `3`, `0:4`, `1:9:2`, else `{0,3,7}`."""
    unique = sorted(set(values))
    if len(unique) == 1:
        return str(unique[0])
    steps = {b - a for a, b in itertools.pairwise(unique)}
    if len(steps) == 1:
        step = steps.pop()
        return f"{unique[0]}:{unique[-1] + 1}" + (f":{step}" if step != 1 else "")
    shown = ",".join(str(v) for v in unique[:6])
    return "{" + shown + (",…" if len(unique) > 6 else "") + "}"


def merged_selection(selects: Sequence[Sequence[AxisSel] | None], shape: Sequence[Axis] = ()) -> str:
    """The selections of folded repeats as one (`[0]`, `[1:5]`, `[AVAL]`, `[0, 2:4]`): labelled units by name,
    trailing whole axes left out, single indices of repeats merged into a range, else `…`."""
    if all(s is None for s in selects):
        return ""
    first = selects[0]
    if first is None or any(s is None or len(s) != len(first) for s in selects):
        return "[…]"
    parts = [_merged_axis([s[i] for s in selects if s is not None], shape[i] if i < len(shape) else None)
             for i in range(len(first))]
    while parts and parts[-1] == ":":
        parts.pop()
    return "[" + ", ".join(parts) + "]" if parts else ""


def _merged_axis(column: list[AxisSel], axis: Axis | None) -> str:
    """One axis of folded selections: the common pick, their indices merged, or `…`."""
    if all(c == column[0] for c in column):
        return _axis_sel(column[0], axis)
    if all(isinstance(c, int) for c in column):
        return _units([int(c) for c in column], axis)  # type: ignore[arg-type]
    return "…"


def _axis_sel(sel: AxisSel, axis: Axis | None) -> str:
    """One axis of a selection: an index (or label), a slice (`:` for the whole axis), a list."""
    if isinstance(sel, int):
        return _units([sel], axis)
    if isinstance(sel, SliceSel):
        if axis is not None and (sel.start, sel.stop, sel.step) == (0, axis.size, 1):
            return ":"
        return f"{sel.start}:{sel.stop}" + (f":{sel.step}" if sel.step != 1 else "")
    return _units([int(i) for i in sel.indices.data], axis)


def _units(values: list[int], axis: Axis | None) -> str:
    """Indices of one axis: by label where the axis has labels (`AVAL`, `{AVAL,AVAR}`), else as a range."""
    if axis is None or not axis.labels:
        return indices(values)
    names = [axis.labels[v] for v in sorted(set(values))]
    return names[0] if len(names) == 1 else "{" + ",".join(names) + "}"


def template(expr: Expr, leaf: Callable[[Expr], Slot | str | None],
             shared: Sequence[Expr] = ()) -> tuple[str, list[Slot]]:
    """Print `expr` with a hole for every subexpression `leaf` claims with a slot (every `Ref` must be
    claimed), and as plain text those it claims with a string (a shared entry by its name); a `Shared` node
    `leaf` leaves alone prints as its entry of `shared`."""
    def claim(node: Expr) -> _Printed | None:
        slot = leaf(node)
        if isinstance(slot, str):
            return _Printed(slot, _ATOM, ())
        return None if slot is None else _Printed(HOLE, _ATOM, (slot,))

    printed = fold(expr, _show, shared, cut=claim)
    return printed.text, list(printed.slots)


@dataclass(frozen=True)
class _Printed:
    """A printed subexpression: its text, how tightly it binds, and the slots of its holes in order."""

    text: str
    precedence: int
    slots: tuple[Slot, ...]


def _show(node: Expr, parts: tuple[_Printed, ...]) -> _Printed:
    if isinstance(node, Const):
        return _Printed(number(node.value), _ATOM, ())
    if isinstance(node, Unary):
        mine = _UNARY if node.op == "-" else 3
        return _Printed(("-" if node.op == "-" else "not ") + _inside(parts[0], mine), mine, parts[0].slots)
    if isinstance(node, Binary):
        mine = _PRECEDENCE[node.op]
        right_bias = 0 if node.op == "**" else 1  # `a - (b - c)`; `**` groups to the right
        left_bias = 1 if node.op == "**" or mine == _PRECEDENCE["<"] else 0  # comparisons do not chain
        left, right = parts
        text = f"{_inside(left, mine + left_bias)} {node.op} {_inside(right, mine + right_bias)}"
        return _Printed(text, mine, left.slots + right.slots)
    if isinstance(node, Call):
        return _Printed(f"{node.fn}({', '.join(p.text for p in parts)})", _ATOM, tuple(s for p in parts for s in p.slots))
    if isinstance(node, Cond):
        cond, then, other = parts
        text = f"{_inside(then, 1)} if {_inside(cond, 1)} else {_inside(other, 0)}"
        return _Printed(text, 0, then.slots + cond.slots + other.slots)
    if isinstance(node, axis_ops.AXIS_NODES):
        text = axis_ops.spelling(node, [_inside(p, 1) for p in parts])
        return _Printed(text, 0 if isinstance(node, Contract) else _ATOM, tuple(s for p in parts for s in p.slots))
    raise TypeError(f"unexpected expression node {node!r}")  # a Var outside a neuron, or a new node kind


def _inside(part: _Printed, outer: int) -> str:
    """A subexpression's text, parenthesised where it binds looser than its context."""
    return f"({part.text})" if part.precedence < outer else part.text


def fill(shape: str, slots_of_repeats: Sequence[Sequence[Slot]]) -> str:
    """Fill a template's holes with the slots of all its repeats, selections merged."""
    parts = shape.split(HOLE)
    out = [parts[0]]
    for i, rest in enumerate(parts[1:]):
        column = [slots[i] for slots in slots_of_repeats]
        out.append(column[0].name + merged_selection([s.select for s in column], column[0].shape) + rest)
    return "".join(out)


def initial(rule: Init) -> str:
    """An initial value: `0.5`, `U(0, 0.71)`, `N(0, 0.1)`."""
    if rule.rule == "constant":
        return number(rule.args[0])
    letter = {"uniform": "U", "normal": "N"}[rule.rule]
    return f"{letter}({', '.join(number(a) for a in rule.args)})"


def weight(rule: Init, fixed: bool) -> str:
    """An anonymous weight by its initial value: `w=0.5`, `w~U(0, 0.71)`, `fixed 1`."""
    if fixed:
        return f"fixed {initial(rule)}"
    return ("w=" if rule.rule == "constant" else "w~") + initial(rule)


def wrap(items: Sequence[str], width: int = 36) -> list[str]:
    """Comma-separated items broken into lines of about `width` characters."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 2 <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return lines


def html(text: str) -> str:
    """Text for a graphviz HTML-like label."""
    return escape(text, quote=True)
