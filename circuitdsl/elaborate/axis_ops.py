"""Operations over named axes in signal expressions: checked at elaboration, recorded as the IR's axis nodes.

- `sum(x over token)`, `mean(x over a, b)`, `max(x over key)`: a reduction (`ir.Reduce`); `max(a, b)` with two
  signals stays the element-wise maximum;
- `softmax(s over key)`, `softmax(s over key, causal = query)`: normalised along an axis, optionally causal
  (`ir.Softmax`);
- `Q · K over head_dim` (or `Q @ K over head_dim`, `... over (a, b)`): a contraction (`ir.Contract`);
- `rename(k, token = key)`, `transpose(s over head, key, query)`, `split(q over feature, head = 2, head_dim = 4)`,
  `merge(o over head, head_dim, feature = 8)`: the axes relabelled or reordered (`ir.Rearrange`).

Every mistake names the axes on both sides: E308 an axis the signal lacks (with a did-you-mean), E309 a
contraction whose sides do not line up, E310 a split or merge whose sizes do not multiply.  The semantics are
in circuitdsl/ir/axes.py.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from circuitdsl import ast, units
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import Signal
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.ir.axes import MAX_CONTRACTED
from circuitdsl.ir.expr import walk
from circuitdsl.units import DIMENSIONLESS, format_dim

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator

REDUCTIONS = ("sum", "mean", "max")
REARRANGEMENTS = ("rename", "transpose", "split", "merge")
NAMES = (*REDUCTIONS, "softmax", *REARRANGEMENTS)
"""The built-in names of axis operations (`max` is also the element-wise maximum of two signals)."""


def is_axis_call(name: str, node: ast.Call) -> bool:
    """Whether a call of the built-in `name` is an axis operation (`max` only with `over`)."""
    return name in NAMES and (name != "max" or any(isinstance(a.value, ast.Over) for a in node.args))


def shape_text(shape: tuple[ir.Axis, ...] | list[ir.Axis]) -> str:
    """`[token=4, feature=8]`, or `a single unit` for none."""
    return "[" + ", ".join(f"{a.name}={a.size}" for a in shape) + "]" if shape else "a single unit"


def call(ev: Evaluator, node: ast.Call, scope: Scope, name: str) -> Signal:
    """An axis operation written as a call: its operand, axes and keywords checked against the operand's shape."""
    if name == "rename":
        return _rename(ev, node, scope)
    x, over, keywords = _operand(ev, node, scope, name)
    if name in REDUCTIONS:
        _no_keywords(ev, name, keywords)
        names = _axes(ev, x, over, name)
        shape = tuple(a for a in x.shape if a.name not in names)
        reduced = ir.Reduce.model_validate({"op": name, "x": x.expr, "shape": list(x.shape), "axes": names})
        return Signal(reduced, shape, x.dim)
    if name == "softmax":
        return _softmax(ev, node, x, over, keywords)
    if name == "transpose":
        _no_keywords(ev, name, keywords)
        return _transpose(ev, node, x, over)
    if name == "split":
        return _split(ev, node, scope, x, over, keywords)
    return _merge(ev, node, scope, x, over, keywords)


def _operand(ev: Evaluator, node: ast.Call, scope: Scope,
             name: str) -> tuple[Signal, tuple[ast.Ident, ...], list[ast.Arg]]:
    """`name(x over a, b, keyword = ...)`: the signal x, the axes after `over`, and the keywords."""
    positional = [a for a in node.args if a.name is None]
    if len(positional) != 1 or not isinstance(positional[0].value, ast.Over):
        raise ev.fail("E301", f"{name}() takes one signal and the axes it acts on: {_EXAMPLES[name]}", node.span,
                      ["`over` names the axes"])
    over = positional[0].value
    return _signal(ev, over.value, scope, name), over.axes, [a for a in node.args if a.name is not None]


_EXAMPLES = {"sum": "sum(x over token)", "mean": "mean(x over token)", "max": "max(s over key)",
             "softmax": "softmax(s over key, causal = query)", "transpose": "transpose(s over head, key, query)",
             "split": "split(q over feature, head = 2, head_dim = 4)",
             "merge": "merge(o over head, head_dim, feature = 8)", "rename": "rename(k, token = key)"}


def _signal(ev: Evaluator, node: ast.Expr, scope: Scope, name: str) -> Signal:
    """The operand of an axis operation: a circuit signal with axes (not a constant, not inside a neuron)."""
    x = ev.signal(ev.eval(node, scope), node.span)
    if any(isinstance(n, ir.Var) for n in walk(x.expr)):
        raise ev.fail("E206", f"{name}() acts on a circuit's signals, not inside a neuron model", node.span)
    if not x.shape:
        raise ev.fail("E308", f"{name}() acts on named axes, but this signal is a single unit", node.span,
                      [f"e.g. {_EXAMPLES[name]}"])
    return x


def _no_keywords(ev: Evaluator, name: str, keywords: list[ast.Arg]) -> None:
    if keywords:
        assert keywords[0].name is not None
        raise ev.fail("E203", f"{name}() takes no option '{keywords[0].name.name}'", keywords[0].name.span,
                      [f"e.g. {_EXAMPLES[name]}"])


def find(ev: Evaluator, shape: tuple[ir.Axis, ...], axis: ast.Ident, what: str) -> int:
    """The position of a named axis in `shape`, or E308 naming the axes there are (and the closest one)."""
    names = [a.name for a in shape]
    if axis.name not in names:
        raise ev.fail("E308", f"{what} {shape_text(shape)} has no axis '{axis.name}'", axis.span,
                      [did_you_mean(axis.name, names), f"its axes: {', '.join(names) or 'none'}"])
    return names.index(axis.name)


def _axes(ev: Evaluator, x: Signal, over: tuple[ast.Ident, ...], name: str) -> list[str]:
    """The distinct axes named after `over`, each an axis of x."""
    names: list[str] = []
    for axis in over:
        find(ev, x.shape, axis, f"the signal of {name}()")
        if axis.name in names:
            raise ev.fail("E304", f"axis '{axis.name}' is named twice", axis.span)
        names.append(axis.name)
    return names


def _softmax(ev: Evaluator, node: ast.Call, x: Signal, over: tuple[ast.Ident, ...],
             keywords: list[ast.Arg]) -> Signal:
    """softmax over one axis of a dimensionless signal; `causal = query` masks the units after the query's."""
    if len(over) != 1:
        raise ev.fail("E304", "softmax() normalises along one axis", over[1].span, ["e.g. softmax(s over key)"])
    (axis_name,) = _axes(ev, x, over, "softmax")
    if x.dim != DIMENSIONLESS:
        raise ev.fail("E401", f"softmax() needs a dimensionless signal, got {format_dim(x.dim)}", node.span)
    causal = None
    for keyword in keywords:
        assert keyword.name is not None
        if keyword.name.name != "causal" or not isinstance(keyword.value, ast.Name):
            raise ev.fail("E203", f"softmax() takes one option, causal = <the query axis>, not "
                                  f"'{keyword.name.name}'", keyword.span,
                          [did_you_mean(keyword.name.name, ["causal"]), "e.g. softmax(s over key, causal = query)"])
        query = ast.Ident(keyword.value.span, keyword.value.id)
        at = find(ev, x.shape, query, "the signal of softmax()")
        size = next(a.size for a in x.shape if a.name == axis_name)
        if query.name == axis_name or x.shape[at].size != size:
            raise ev.fail("E302", f"a causal mask pairs '{axis_name}' ({size} units) with another axis of as many "
                                  f"units, not '{query.name}' of {shape_text(x.shape)}", keyword.value.span)
        causal = query.name
    return Signal(ir.Softmax(x=x.expr, shape=list(x.shape), axis=axis_name, causal=causal), x.shape, x.dim)


def _transpose(ev: Evaluator, node: ast.Call, x: Signal, over: tuple[ast.Ident, ...]) -> Signal:
    """The axes in the order named, each once."""
    names = _axes(ev, x, over, "transpose")
    if len(names) != len(x.shape):
        missing = [a.name for a in x.shape if a.name not in names]
        raise ev.fail("E304", f"transpose() names every axis of {shape_text(x.shape)} once, in its new order; "
                              f"missing: {', '.join(missing)}", node.span)
    out = tuple(next(a for a in x.shape if a.name == name) for name in names)
    return _rearranged(ev, node, "transpose", x, out)


def _rename(ev: Evaluator, node: ast.Call, scope: Scope) -> Signal:
    """`rename(x, old = new, ...)`: axes get new names, in place."""
    positional = [a for a in node.args if a.name is None]
    keywords = [a for a in node.args if a.name is not None]
    if len(positional) != 1 or isinstance(positional[0].value, ast.Over) or not keywords:
        raise ev.fail("E301", f"rename() takes one signal, then old = new names: {_EXAMPLES['rename']}", node.span)
    x = _signal(ev, positional[0].value, scope, "rename")
    out = list(x.shape)
    for keyword in keywords:
        assert keyword.name is not None
        at = find(ev, x.shape, keyword.name, "the signal of rename()")
        if not isinstance(keyword.value, ast.Name):
            raise ev.fail("E301", "an axis is renamed to a name: rename(k, token = key)", keyword.value.span)
        out[at] = out[at].model_copy(update={"name": keyword.value.id})
    return _rearranged(ev, node, "rename", x, tuple(out))


def _rearranged(ev: Evaluator, node: ast.Call, op: str, x: Signal, out: tuple[ir.Axis, ...]) -> Signal:
    """The rearrangement's signal, its new axis names distinct."""
    names = [a.name for a in out]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise ev.fail("E304", f"{op}() gives two axes the name '{twice}': {shape_text(out)}", node.span)
    node_ir = ir.Rearrange.model_validate({"op": op, "x": x.expr, "shape": list(x.shape), "out": list(out)})
    return Signal(node_ir, out, x.dim)


def _sizes(ev: Evaluator, scope: Scope, keywords: list[ast.Arg]) -> list[tuple[ast.Ident, int]]:
    """`name = size` keywords: new axes, each of a whole size >= 1."""
    out = []
    for keyword in keywords:
        assert keyword.name is not None
        size = ev.integer(keyword.value, scope, f"the size of axis '{keyword.name.name}'")
        if size < 1:
            raise ev.fail("E304", f"axis '{keyword.name.name}' needs a size of at least 1, not {size}",
                          keyword.value.span)
        out.append((keyword.name, size))
    return out


def _split(ev: Evaluator, node: ast.Call, scope: Scope, x: Signal, over: tuple[ast.Ident, ...],
           keywords: list[ast.Arg]) -> Signal:
    """`split(x over feature, head = h, head_dim = d)`: one axis as several, major first, h × d its size."""
    if len(over) != 1 or len(keywords) < 2:
        raise ev.fail("E301", f"split() turns one axis into several: {_EXAMPLES['split']}", node.span)
    at = find(ev, x.shape, over[0], "the signal of split()")
    parts = _sizes(ev, scope, keywords)
    axis = x.shape[at]
    if math.prod(size for _, size in parts) != axis.size:
        product = " × ".join(f"{name.name}={size}" for name, size in parts)
        raise ev.fail("E310", f"split() of '{axis.name}' ({axis.size} units) into {product} = "
                              f"{math.prod(s for _, s in parts)} units: the sizes must multiply to {axis.size}",
                      node.span, [f"in {shape_text(x.shape)}"])
    new = tuple(ir.Axis(name=name.name, size=size) for name, size in parts)
    return _rearranged(ev, node, "split", x, x.shape[:at] + new + x.shape[at + 1:])


def _merge(ev: Evaluator, node: ast.Call, scope: Scope, x: Signal, over: tuple[ast.Ident, ...],
           keywords: list[ast.Arg]) -> Signal:
    """`merge(x over head, head_dim, feature = n)`: adjacent axes, in order, as one of their total size."""
    if len(over) < 2 or len(keywords) != 1:
        raise ev.fail("E301", f"merge() joins adjacent axes into one: {_EXAMPLES['merge']}", node.span)
    names = _axes(ev, x, over, "merge")
    at = [a.name for a in x.shape].index(names[0])
    if [a.name for a in x.shape[at:at + len(names)]] != names:
        raise ev.fail("E310", f"merge() joins adjacent axes in their order; {shape_text(x.shape)} does not hold "
                              f"{', '.join(names)} side by side", _joined(over),
                      ["transpose first: transpose(x over ...) puts them together"])
    ((name, size),) = _sizes(ev, scope, keywords)
    total = math.prod(a.size for a in x.shape[at:at + len(names)])
    if size != total:
        product = " × ".join(f"{a.name}={a.size}" for a in x.shape[at:at + len(names)])
        raise ev.fail("E310", f"merge() of {product} makes {total} units, not {name.name} = {size}",
                      keywords[0].span, [f"e.g. {name.name} = {total}"])
    out = x.shape[:at] + (ir.Axis(name=name.name, size=size),) + x.shape[at + len(names):]
    return _rearranged(ev, node, "merge", x, out)


def _joined(idents: tuple[ast.Ident, ...]) -> Span:
    """One span from the first identifier to the last."""
    last = idents[-1].span
    return idents[0].span.model_copy(update={"end_line": last.end_line, "end_column": last.end_column})


# ---- contraction ---------------------------------------------------------------------------------


def contraction(ev: Evaluator, node: ast.Contraction, scope: Scope) -> Signal:
    """`left · right over axes`: summed over `axes` (on both sides, one size each), matched on the other shared
    axes; the result is left's remaining axes, then right's that left lacks."""
    left = _signal(ev, node.left, scope, "a contraction ·")
    right = _signal(ev, node.right, scope, "a contraction ·")
    over: list[str] = []
    for axis in node.axes:
        for side, this, other in (("left", left, right), ("right", right, left)):
            if axis.name not in [a.name for a in this.shape]:
                raise ev.fail("E309", f"cannot contract over '{axis.name}': the {side} side {shape_text(this.shape)} "
                                      f"lacks it (the other side: {shape_text(other.shape)})", axis.span,
                              [did_you_mean(axis.name, [a.name for a in this.shape]),
                               "contract over an axis both sides have; rename(x, old = new) names it alike"])
        if axis.name in over:
            raise ev.fail("E304", f"axis '{axis.name}' is named twice", axis.span)
        over.append(axis.name)
    sizes = {a.name: a.size for a in left.shape}
    if len(sizes.keys() | {a.name for a in right.shape}) > MAX_CONTRACTED:
        raise ev.fail("E304", f"a contraction of {shape_text(left.shape)} and {shape_text(right.shape)} spans more "
                              f"than {MAX_CONTRACTED} distinct axes", node.span)
    for part in right.shape:
        if part.name in sizes and sizes[part.name] != part.size:
            role = "contracted" if part.name in over else "matched unit by unit"
            where = next((a.span for a in node.axes if a.name == part.name), node.span)
            raise ev.fail("E309", f"axis '{part.name}' is {role} but its sizes differ: {shape_text(left.shape)} · "
                                  f"{shape_text(right.shape)}", where)
    shape = tuple(a for a in left.shape if a.name not in over) + \
        tuple(a for a in right.shape if a.name not in sizes)
    if math.prod(a.size for a in shape) > ev.limits.units:
        raise ev.fail("E702", f"a contraction into {shape_text(shape)} is {ev.limits.over('units')}", node.span,
                      [ev.limits.hint("units")])
    contract = ir.Contract(left=left.expr, right=right.expr, left_shape=list(left.shape),
                           right_shape=list(right.shape), axes=over, shape=list(shape))
    return Signal(contract, shape, units.mul(left.dim, right.dim))
