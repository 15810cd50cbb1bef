"""Learned maps over one named axis of any signal, written as a projection's option:

- `x -> h : dense over feature, bias = true`: a matrix [out, in] over `feature` at every unit of the other
  axes, which source and target share (names, sizes, order), plus a learned bias [out] when asked;
  `dense over token` mixes tokens the same way;
- `x -> h : layer_norm over feature`: normalised over `feature` at every unit of the others, then scaled and
  shifted by learned vectors over `feature` (scale starting at 1, shift at 0), as torch.nn.LayerNorm.

On a field (grid axes on either side) `dense over channel` stays the field operator of circuitdsl/elaborate/
operators.py.  A source and target that differ beyond the axis (so that the weights or the bias could not
broadcast over them) are E311.  The semantics are in circuitdsl/ir/axes.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from circuitdsl import ast
from circuitdsl.elaborate.axis_ops import find, shape_text
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator

KINDS = {"dense": "linear", "layer_norm": "layer_norm"}
"""The option's name as written, and its operator kind in the IR."""


def applies(value: ast.Expr, source: tuple[ir.Axis, ...], target: tuple[ir.Axis, ...]) -> bool:
    """Whether an option is a learned map over a named axis: `layer_norm over ...`, or `dense over ...` between
    signals without grid axes (on a field it is the field operator)."""
    if not isinstance(value, ast.Over) or not isinstance(value.value, ast.Name):
        return False
    name = value.value.id
    return name == "layer_norm" or (name == "dense" and all(a.domain is None for a in (*source, *target)))


def parse(ev: Evaluator, option: ast.Arg, others: tuple[ast.Arg, ...], source: tuple[ir.Axis, ...],
          target: tuple[ir.Axis, ...]) -> tuple[ir.Operator, int, int, bool]:
    """The learned map an option describes, checked against the source and target shapes: its operator, its
    axis' size in the source and in the target, and whether it has a bias."""
    over = option.value
    assert isinstance(over, ast.Over) and isinstance(over.value, ast.Name)
    written = over.value.id
    if len(over.axes) != 1:
        raise ev.fail("E304", f"{written} acts over one axis, not {len(over.axes)}", over.span,
                      [f"e.g. {written} over feature"])
    axis = over.axes[0]
    at = find(ev, target, axis, f"the target of {written}")
    n_in = _matching(ev, written, axis, source, target, at, option.span)
    bias = _bias(ev, written, others, option)
    operator = ir.Operator.model_validate({"kind": KINDS[written], "axes": [], "channel": axis.name})
    return operator, n_in, target[at].size, bias


def _matching(ev: Evaluator, written: str, axis: ast.Ident, source: tuple[ir.Axis, ...],
              target: tuple[ir.Axis, ...], at: int, span: Span) -> int:
    """The source's size along the axis; the source has it at the same place, and every other axis alike."""
    source_at = find(ev, source, axis, f"the source of {written}")
    rest = [[(a.name, a.size) for i, a in enumerate(shape) if i != k] for shape, k in ((source, source_at),
                                                                                        (target, at))]
    if source_at != at or rest[0] != rest[1]:
        raise ev.fail("E311", f"{written} over '{axis.name}' maps {shape_text(source)} to {shape_text(target)}: "
                              f"the other axes must be the same on both sides", span,
                      ["its weights act on one axis and broadcast over the others, unchanged"])
    if written == "layer_norm" and source[source_at].size != target[at].size:
        raise ev.fail("E311", f"layer_norm over '{axis.name}' keeps its size: its scale and shift are "
                              f"[{axis.name}={source[source_at].size}], the target has "
                              f"[{axis.name}={target[at].size}]", span)
    return source[source_at].size


def _bias(ev: Evaluator, written: str, others: tuple[ast.Arg, ...], option: ast.Arg) -> bool:
    """`bias = true | false` for dense (a layer norm always has its shift); no other option."""
    bias = written == "layer_norm"
    for other in others:
        if other is option:
            continue
        name = other.name.name if other.name is not None else None
        if name == "bias" and written == "dense":
            if not isinstance(other.value, ast.Bool):
                raise ev.fail("E301", "a dense map's bias is `bias = true` (a learned vector over its output axis) "
                                      "or `bias = false`", other.value.span)
            bias = other.value.value
            continue
        where = other.name.span if other.name is not None else other.span
        allowed = "bias = true" if written == "dense" else "none (its scale and shift are its own)"
        raise ev.fail("E203", f"{written} over an axis takes no option {('`' + name + '`') if name else 'rule'}",
                      where, [did_you_mean(name, ["bias"]) if name and written == "dense" else None,
                              f"its options: {allowed}"])
    return bias
