"""Shared subexpressions stored once: the elaborated circuit's signals, built in memory as a DAG (a `let` read
twice is one object under two parents), become trees over `CircuitIR.shared` (see ir/expr.py `Sharing`).

Without this a chain of thirty lets `let a1 = a0 + a0` ... would serialise as 2^30 nodes and run as many
operations; with it, each let is one entry, stored and computed once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from circuitdsl.ir import model as ir
from circuitdsl.ir.expr import Sharing


@dataclass(frozen=True)
class Shared:
    """The circuit's signals over one shared table."""

    projections: list[ir.Projection]
    outputs: list[ir.Output]
    hierarchy: ir.Instance
    table: list[ir.Expr]
    names: list[str]


def share(projections: list[ir.Projection], outputs: list[ir.Output], hierarchy: ir.Instance,
          names: Mapping[int, str]) -> Shared:
    """Projections' sources and output pieces (what computes) hoisted into one table, and the ports' wires in
    the hierarchy (what diagrams read through) rewritten over the same table so they still match."""
    sharing = Sharing([p.source for p in projections] + [piece.expr for o in outputs for piece in o.pieces], names)
    projections = [_with_source(p, sharing.rewrite(p.source)) for p in projections]
    outputs = [o.model_copy(update={"pieces": [piece.model_copy(update={"expr": sharing.rewrite(piece.expr)})
                                               for piece in o.pieces]}) for o in outputs]
    return Shared(projections, outputs, _wires(hierarchy, sharing), sharing.table, sharing.table_names)


def _with_source(projection: ir.Projection, source: ir.Expr) -> ir.Projection:
    """The projection reading `source` (itself when that is its source already: IR records are frozen, and a
    copy of each of thousands of projections cost more than the rewriting)."""
    return projection if source is projection.source else projection.model_copy(update={"source": source})


def _wires(instance: ir.Instance, sharing: Sharing) -> ir.Instance:
    """The instance tree with every bound and exported wire over the shared table."""
    def rewired(wires: list[ir.Wire]) -> list[ir.Wire]:
        return [w.model_copy(update={"expr": sharing.rewrite(w.expr)}) for w in wires]

    return instance.model_copy(update={"bound": rewired(instance.bound), "exported": rewired(instance.exported),
                                       "children": [_wires(child, sharing) for child in instance.children]})
