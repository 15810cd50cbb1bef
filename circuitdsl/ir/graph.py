"""A networkx view of the IR: one node per population and port, one edge per projection (and output wire)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from circuitdsl.ir.expr import refs
from circuitdsl.ir.model import CircuitIR, Expr

if TYPE_CHECKING:
    import networkx as nx

__all__ = ["refs", "signal_sources", "to_networkx"]


def signal_sources(expr: Expr, shared: Sequence[Expr] = ()) -> Iterator[str]:
    """The populations and ports a signal expression reads, in order of appearance (through `shared` entries)."""
    return (ref.source for ref in refs(expr, shared))


def to_networkx(ir: CircuitIR) -> nx.MultiDiGraph:
    """Nodes carry `kind` (population / input / output) and their IR record; edges carry the projection
    (networkx is imported here: elaboration reads `signal_sources` and needs no graph library)."""
    import networkx as nx

    graph = nx.MultiDiGraph(name=ir.name)
    for port in ir.inputs:
        graph.add_node(port.name, kind="input", record=port)
    for population in ir.populations:
        graph.add_node(population.name, kind="population", record=population)
    for output in ir.outputs:
        graph.add_node(f"output:{output.name}", kind="output", record=output)
    for projection in ir.projections:
        for source in dict.fromkeys(signal_sources(projection.source, ir.shared)):
            graph.add_edge(source, projection.target, key=projection.id, kind=projection.kind,
                           arrow=projection.arrow, record=projection)
    for output in ir.outputs:
        for piece in output.pieces:
            for source in dict.fromkeys(signal_sources(piece.expr, ir.shared)):
                graph.add_edge(source, f"output:{output.name}", kind="readout")
    return graph
