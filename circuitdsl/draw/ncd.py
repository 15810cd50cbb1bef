"""Which parts of a circuit are drawn as a Neural Circuit Diagram, and how a signal expression becomes glyphs.

A circuit is drawn in that notation when it works on named axes as deep learning does: it has an operator
projection (`dense over token`, a spectral layer, a layer norm) or an expression with an operation over named
axes (a reduction, softmax, contraction, rearrangement).  Then each operation of an expression is its own glyph
(circuitdsl/draw/glyphs.py) joined by wires labelled with the axes they carry; a subexpression read twice (a
`let`) is one glyph whose wire splits at a copy point.  Biological circuits keep the folded view's notation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from circuitdsl.draw import glyphs, text
from circuitdsl.draw.hierarchy import End, Hierarchy, Resolver
from circuitdsl.draw.units import selected_axes
from circuitdsl.ir.axes import AXIS_NODES
from circuitdsl.ir.expr import fold, walk
from circuitdsl.ir.model import (
    Axis,
    Binary,
    Call,
    CircuitIR,
    Cond,
    Const,
    Contract,
    Expr,
    Instance,
    NeuronModel,
    Operator,
    Rearrange,
    Reduce,
    Ref,
    Shared,
    Softmax,
    Unary,
)

Attrs = dict[str, str]


def applies(ir: CircuitIR) -> bool:
    """Whether the circuit works on named axes (an operator projection or an axis operation) and so is drawn as a
    Neural Circuit Diagram."""
    return any(p.operator is not None for p in ir.projections) or \
        any(isinstance(node, AXIS_NODES) for node in _signal_nodes(ir))


def parallel_axes(ir: CircuitIR) -> set[str]:
    """Axes some contraction matches unit by unit on both sides without summing them (attention heads): each is
    folded as `×name` on wires, as the paper draws parallel heads once."""
    return {a.name for node in _signal_nodes(ir) for a in _matched(node)}


def _signal_nodes(ir: CircuitIR) -> Iterator[Expr]:
    """Every node of every signal the diagram draws: projections' sources, sub-circuits' ports, outputs."""
    exprs = [p.source for p in ir.projections] + [piece.expr for o in ir.outputs for piece in o.pieces]
    stack = [ir.hierarchy]
    while stack:
        instance = stack.pop()
        exprs += [wire.expr for wire in (*instance.bound, *instance.exported)]
        stack.extend(instance.children)
    for expr in exprs:
        yield from walk(expr, ir.shared, follow_shared=True)


def _matched(node: Expr) -> list[Axis]:
    """The axes a contraction matches unit by unit without summing them (none for other nodes)."""
    if not isinstance(node, Contract):
        return []
    theirs = {a.name for a in node.right_shape}
    return [a for a in node.left_shape if a.name in theirs and a.name not in node.axes]


def wire_label(shape: Sequence[Axis], parallel: set[str]) -> str:
    """What a wire carries: its axes as `name=size`, a parallel axis first and folded as `×heads=2`."""
    folded = " ".join(f"×{a.name}={a.size}" for a in shape if a.name in parallel)
    rest = text.axes([a for a in shape if a.name not in parallel])
    return " | ".join(part for part in (folded, rest) if part)


def operator_glyph(operator: Operator, name: str, source: Sequence[Axis], rule: str) -> Attrs:
    """An operator projection as a learned map: **L** (LN for a layer norm) named after its target, `+` for a
    bias, the `rule` as written (`dense over feature + bias`), and the band of axes it broadcasts over."""
    pointwise = operator.kind in ("dense", "linear", "layer_norm")  # spectral, multigrid: act on every axis
    broadcast = [a for a in source if a.name != operator.channel] if pointwise else []
    if operator.kind == "layer_norm":
        return glyphs.node(f'<FONT POINT-SIZE="14"><B>LN</B></FONT><SUB>+</SUB><SUP>{text.html(name)}</SUP>',
                           glyphs.LEARNED, broadcast, f"learned · {rule}", corner=True)
    return glyphs.learned(name, operator.bias is not None, broadcast, f"learned · {rule}")


def stateless(model: NeuronModel) -> bool:
    """Whether a neuron model is a function of its summed input (Identity, Gelu, Relu): drawn as that function."""
    return not model.states and not model.params and len(model.inputs) == 1 and not model.output_shape


def population_glyph(name: str, model: NeuronModel, inputs: int) -> Attrs:
    """A stateless population in a circuit diagram: its name over its function's on-wire symbol (`▸ gelu ▸`),
    over a `+` where it sums several wires, nothing more for an Identity that reads one."""
    symbol = model.definition.lower()
    title = f'<TR><TD CELLPADDING="1"><B>{text.html(name)}</B></TD></TR>'
    rows = []
    if inputs > 1:
        rows.append(f'<TR><TD BORDER="1" STYLE="rounded" CELLPADDING="2">+ <FONT POINT-SIZE="8">sums {inputs}'
                    '</FONT></TD></TR>')
    if symbol != "identity":
        rows.append(f'<TR><TD BORDER="1" STYLE="rounded" BGCOLOR="{glyphs.ELEMENTWISE}" CELLPADDING="2">'
                    f'<FONT POINT-SIZE="10">▸ {text.html(symbol)} ▸</FONT></TD></TR>')
    table = '<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="1">' + title + "".join(rows) + "</TABLE>"
    return {"shape": "plain", "label": f"<{table}>"}


@dataclass
class Glyphs:
    """What an expression became: glyph nodes (id, attributes), wires (tail, head, the axes they carry), and the
    node whose output is the expression's value."""

    root: str = ""
    nodes: list[tuple[str, Attrs]] = field(default_factory=list)
    wires: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class _Out:
    """A subexpression as drawn so far: the node whose output it is (None for a constant), its axes, and the
    rearrangements applied to that node that are not drawn yet (outermost first: a chain becomes one box)."""

    node: str | None
    shape: tuple[Axis, ...]
    steps: tuple[Rearrange, ...] = ()


class Decomposer:
    """Turns signal expressions into glyphs, reading leaves through ports as the folded view does.  It folds
    the expression bottom-up without recursion (circuitdsl/ir/expr.py's `fold`), so a deep one draws too."""

    def __init__(self, hierarchy: Hierarchy, resolver: Resolver, place: Callable[[End], str],
                 parallel: set[str]) -> None:
        self.hierarchy = hierarchy
        self.resolver = resolver
        self.place = place
        self.parallel = parallel
        self.shared = hierarchy.ir.shared
        self.made: dict[tuple[str, int], _Out] = {}  # (instance, id of an inner node) -> its glyph, drawn once
        self.memos: dict[str, dict[int, _Out]] = {}  # per instance, the lets (shared entries) drawn
        self.shapes: dict[int, tuple[Axis, ...]] = {}
        self.count = 0

    def expression(self, expr: Expr, context: Instance, prefix: str) -> Glyphs:
        """The glyphs of `expr`, written in `context`; node ids start with `prefix`."""
        out = Glyphs()
        ports = bool(self.resolver.candidates(context))

        def leaf(node: Expr) -> _Out | None:
            made = self.made.get((context.name, id(node)))
            if made is not None or not (isinstance(node, Ref) or (ports and not isinstance(node, Shared | Const))):
                return made
            resolved = self.resolver.resolve(node, context)
            return _Out(self.place(resolved.ends[0]), self.shape(node)) if resolved.plain else None

        def visit(node: Expr, kids: tuple[_Out, ...]) -> _Out:
            if isinstance(node, Const):
                return _Out(None, ())
            if isinstance(node, Rearrange):
                return _Out(kids[0].node, tuple(node.out), (node, *kids[0].steps))
            operands = [self._drawn(kid, context, prefix, out) for kid in kids if kid.node is not None]
            ident = self._new(prefix, out, self._glyph(node))
            out.wires += [(kid.node, ident, wire_label(kid.shape, self.parallel)) for kid in operands
                          if kid.node is not None]
            made = _Out(ident, self.shape(node))
            self.made[(context.name, id(node))] = made
            return made

        root = fold(expr, visit, self.shared, self.memos.setdefault(context.name, {}), leaf)
        out.root = self._drawn(root, context, prefix, out).node or ""
        return out

    def _new(self, prefix: str, out: Glyphs, attrs: Attrs) -> str:
        """A new glyph node."""
        self.count += 1
        ident = f"{prefix}op {self.count}"
        out.nodes.append((ident, attrs))
        return ident

    def _drawn(self, value: _Out, context: Instance, prefix: str, out: Glyphs) -> _Out:
        """`value` with its pending rearrangements drawn: one einops box for the whole chain (split, rename)."""
        if not value.steps or value.node is None:
            return value
        key = (context.name, id(value.steps[0]))
        if key not in self.made:
            outer, inner = value.steps[0], value.steps[-1]
            ops = ", ".join(step.op for step in reversed(value.steps))
            ident = self._new(prefix, out, glyphs.rearrange(ops, inner.shape, outer.out))
            out.wires.append((value.node, ident, wire_label(inner.shape, self.parallel)))
            self.made[key] = _Out(ident, tuple(outer.out))
        return self.made[key]

    def _glyph(self, expr: Expr) -> Attrs:
        """The glyph of one operation (a rearrangement's, which may take several steps, is made in `_drawn`)."""
        if isinstance(expr, Binary):
            return glyphs.arithmetic(_binary(expr))
        if isinstance(expr, Unary):
            return glyphs.elementwise("−" if expr.op == "-" else "not")
        if isinstance(expr, Call):
            return glyphs.elementwise(_call(expr))
        if isinstance(expr, Cond):
            return glyphs.arithmetic("if")
        if isinstance(expr, Softmax):
            return glyphs.softmax(expr.axis, self._across([a for a in expr.shape if a.name != expr.axis]), expr.causal)
        if isinstance(expr, Reduce):
            return glyphs.reduction(expr.op, expr.axes, self._across(_result(expr)))
        if isinstance(expr, Contract):
            return glyphs.contraction(expr.axes, _matched(expr), self._across(expr.shape))
        raise TypeError(f"no glyph for the expression node {expr.node!r}")

    def _across(self, shape: Sequence[Axis]) -> list[Axis]:
        """The axes drawn passing across a glyph: those it broadcasts over, but the parallel ones (folded `×h`)."""
        return [a for a in shape if a.name not in self.parallel]

    def shape(self, expr: Expr) -> tuple[Axis, ...]:
        """The named axes of an expression's value: a leaf's selected axes, an operation's result axes, an
        element-wise operation's widest operand."""
        def visit(node: Expr, kids: tuple[tuple[Axis, ...], ...]) -> tuple[Axis, ...]:
            if isinstance(node, Ref):
                return tuple(selected_axes(self.hierarchy.shapes[node.source], node.select))
            if isinstance(node, AXIS_NODES):
                return tuple(_result(node))
            return max(kids, key=len, default=())

        return fold(expr, visit, self.shared, self.shapes)


def _result(expr: Reduce | Softmax | Contract | Rearrange) -> list[Axis]:
    """The axes of an axis operation's result."""
    if isinstance(expr, Reduce):
        return [a for a in expr.shape if a.name not in expr.axes]
    if isinstance(expr, Rearrange):
        return list(expr.out)
    return list(expr.shape)


def _binary(expr: Binary) -> str:
    """Arithmetic on a wire: `+`, `−`, and a scale by a constant written with it (`× 0.5`, `÷ 2`)."""
    symbol = {"-": "−", "*": "×", "/": "÷"}.get(expr.op, expr.op)
    for side in (expr.right, expr.left):
        if isinstance(side, Const):
            return f"{symbol} {text.number(side.value)}"
    return symbol


def _call(expr: Call) -> str:
    """A function on a wire: its name, with its constant arguments (`clamp(·, 0, 1)`)."""
    if all(not isinstance(a, Const) for a in expr.args):
        return expr.fn
    args = ["·" if not isinstance(a, Const) else text.number(a.value) for a in expr.args]
    return f"{expr.fn}({', '.join(args)})"
