"""Test helper: expand an IR into its unit-level wiring, to compare circuits written in different ways.

Every synapse becomes (source as an element-wise formula over unit names, target unit, arrow, param element)
and every output unit its formula, with population names mapped through `rename` so that, for example,
`seg[2].Bd` (a single unit) and `Bd` unit 2 compare equal.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from circuitdsl.ir import units
from circuitdsl.ir.model import AxisSel, Binary, Call, CircuitIR, Cond, Const, Expr, Ref, Unary

Rename = Callable[[str, int], str]


def selected_units(sizes: list[int], select: list[AxisSel] | None) -> list[int]:
    """Flat (row-major) indices of the selected units, in selection order, as Python ints."""
    return [int(i) for i in units.selected_units(sizes, select)]


class UnitGraph:
    def __init__(self, ir: CircuitIR, rename: Rename) -> None:
        self.ir = ir
        self.rename = rename
        self.sizes = {p.name: [a.size for a in p.shape] for p in ir.populations}
        self.sizes.update({p.name: [a.size for a in p.shape] for p in ir.inputs})
        self.models = {p.name: p.model for p in ir.populations}

    def element(self, expr: Expr, k: int) -> str:
        """The formula of element k of an element-wise signal expression."""
        if isinstance(expr, Const):
            return repr(float(expr.value))
        if isinstance(expr, Ref):
            units = selected_units(self.sizes[expr.source], expr.select)
            unit = units[k] if len(units) > 1 else units[0]
            return self.rename(expr.source, unit)
        if isinstance(expr, Unary):
            return f"({expr.op}{self.element(expr.x, k)})"
        if isinstance(expr, Binary):
            return f"({self.element(expr.left, k)} {expr.op} {self.element(expr.right, k)})"
        if isinstance(expr, Call):
            return f"{expr.fn}(" + ", ".join(self.element(a, k) for a in expr.args) + ")"
        assert isinstance(expr, Cond)
        return f"({self.element(expr.then, k)} if {self.element(expr.cond, k)} else {self.element(expr.other, k)})"

    def synapses(self) -> set[tuple[str, str, str, str, int]]:
        out = set()
        for p in self.ir.projections:
            targets = selected_units(self.sizes[p.target], p.target_select)
            n_source = int(np.prod([a.size for a in p.source_shape])) if p.source_shape else 1
            c = p.connectivity
            if c.rule == "one_to_one":
                pairs = [(k, k) for k in range(p.synapses)]
            elif c.rule == "all_to_all":
                pairs = [(s, t) for t in range(len(targets)) for s in range(n_source)]
            else:
                assert c.pre is not None and c.post is not None
                pairs = list(zip(c.pre.data.tolist(), c.post.data.tolist()))
            for i, (s, t) in enumerate(pairs):
                element = p.weight.offset + p.weight.stride * i
                out.add((self.element(p.source, s), self.rename(p.target, targets[t]), p.arrow, p.weight.param,
                         element))
        return out

    def outputs(self) -> dict[str, list[str]]:
        result = {}
        for output in self.ir.outputs:
            sizes = [a.size for a in output.shape]
            n = int(np.prod(sizes)) if sizes else 1
            formulas: list[str | None] = [None] * n
            for piece in output.pieces:
                for k, unit in enumerate(selected_units(sizes, piece.select)):
                    formulas[unit] = self.element(piece.expr, k)
            result[output.name] = formulas
        return result

    def unit_models(self) -> dict[str, str]:
        return {self.rename(p.name, u): p.model for p in self.ir.populations
                for u in range(int(np.prod([a.size for a in p.shape])) if p.shape else 1)}
