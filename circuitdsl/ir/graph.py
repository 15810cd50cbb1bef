"""A networkx view of the IR: one node per population and port, one edge per projection (and output wire)."""

from __future__ import annotations

from collections.abc import Iterator

import networkx as nx

from circuitdsl.ir.model import Binary, Call, CircuitIR, Cond, Expr, Ref, Unary


def refs(expr: Expr) -> Iterator[Ref]:
    """The reads of populations and ports in a signal expression, with their selections, in order of appearance."""
    if isinstance(expr, Ref):
        yield expr
    elif isinstance(expr, Unary):
        yield from refs(expr.x)
    elif isinstance(expr, Binary):
        yield from refs(expr.left)
        yield from refs(expr.right)
    elif isinstance(expr, Call):
        for arg in expr.args:
            yield from refs(arg)
    elif isinstance(expr, Cond):
        for part in (expr.cond, expr.then, expr.other):
            yield from refs(part)


def signal_sources(expr: Expr) -> Iterator[str]:
    """The populations and ports a signal expression reads, in order of appearance."""
    return (ref.source for ref in refs(expr))


def to_networkx(ir: CircuitIR) -> nx.MultiDiGraph:
    """Nodes carry `kind` (population / input / output) and their IR record; edges carry the projection."""
    graph = nx.MultiDiGraph(name=ir.name)
    for port in ir.inputs:
        graph.add_node(port.name, kind="input", record=port)
    for population in ir.populations:
        graph.add_node(population.name, kind="population", record=population)
    for output in ir.outputs:
        graph.add_node(f"output:{output.name}", kind="output", record=output)
    for projection in ir.projections:
        for source in dict.fromkeys(signal_sources(projection.source)):
            graph.add_edge(source, projection.target, key=projection.id, kind=projection.kind,
                           arrow=projection.arrow, record=projection)
    for output in ir.outputs:
        for piece in output.pieces:
            for source in dict.fromkeys(signal_sources(piece.expr)):
                graph.add_edge(source, f"output:{output.name}", kind="readout")
    return graph
