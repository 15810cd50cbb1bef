"""IR -> an execution plan that any backend runs: evaluation order and index arrays, in numpy.

The plan holds everything a step needs that does not depend on the array library: which populations
are computed in which order, where each projection reads and writes (flat unit indices), and how each
parameter is laid out.  Backends turn the index arrays into their own arrays once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import networkx as nx
import numpy as np

from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.model import (
    AxisSel, Binary, Call, CircuitIR, Cond, Const, Expr, NeuronModel, Parameter, Projection, Ref, SliceSel, Unary,
)


def flat_index(sizes: list[int], select: list[AxisSel] | None) -> np.ndarray | None:
    """Row-major flat indices of the selected units, in selection order; None when all units are selected."""
    if select is None:
        return None
    picks = []
    for size, sel in zip(sizes, select, strict=True):
        if isinstance(sel, int):
            picks.append(np.array([sel]))
        elif isinstance(sel, SliceSel):
            picks.append(np.arange(sel.start, sel.stop, sel.step))
        else:
            picks.append(np.asarray(sel.indices.data, dtype=np.int64))
    mesh = np.meshgrid(*picks, indexing="ij")
    return np.ravel_multi_index([m.ravel() for m in mesh], sizes).astype(np.int64)


@dataclass(frozen=True)
class PopulationPlan:
    name: str
    size: int
    model: NeuronModel


@dataclass(frozen=True)
class ProjectionPlan:
    """One projection: read `source` (an expression over refs), weight it, add it into `target`'s `port`."""

    id: str
    kind: str
    source: Expr
    source_size: int
    target: str
    target_index: np.ndarray | None  # flat units of the target this projection reaches (None: all)
    target_size: int  # units reached
    port: str
    rule: str  # one_to_one | all_to_all | explicit
    pre: np.ndarray | None
    post: np.ndarray | None
    param: str
    offset: int
    stride: int
    synapses: int
    delay: int
    recurrent: bool
    source_population: str | None = None  # gap junctions: the population on the source side ...
    source_index: np.ndarray | None = None  # ... the flat units of it the junctions join ...
    source_port: str | None = None  # ... and the port their current enters there


@dataclass(frozen=True)
class Plan:
    ir: CircuitIR
    order: list[str]  # populations, each after every population it reads within the step
    populations: dict[str, PopulationPlan]
    projections: list[ProjectionPlan]
    parameters: list[Parameter]
    ref_index: dict[tuple[str, str], np.ndarray | None]  # (source, selection repr) -> flat indices
    output_index: dict[tuple[str, int], np.ndarray | None]  # (output, piece) -> flat units it fills
    sizes: dict[str, list[int]]  # every population's and input's axis sizes


def ref_key(ref: Ref) -> tuple[str, str]:
    return ref.source, "" if ref.select is None else repr(ref.select)


def _refs(expr: Expr) -> list[Ref]:
    if isinstance(expr, Ref):
        return [expr]
    if isinstance(expr, Unary):
        return _refs(expr.x)
    if isinstance(expr, Binary):
        return _refs(expr.left) + _refs(expr.right)
    if isinstance(expr, Call):
        return [r for a in expr.args for r in _refs(a)]
    if isinstance(expr, Cond):
        return _refs(expr.cond) + _refs(expr.then) + _refs(expr.other)
    if isinstance(expr, Const):
        return []
    raise TypeError(f"not a signal expression: {expr!r}")


def make_plan(ir: CircuitIR) -> Plan:
    sizes = {p.name: [a.size for a in p.shape] for p in ir.populations}
    sizes.update({p.name: [a.size for a in p.shape] for p in ir.inputs})
    populations = {p.name: PopulationPlan(p.name, math.prod(sizes[p.name]), ir.neurons[p.model])
                   for p in ir.populations}
    ref_index: dict[tuple[str, str], np.ndarray | None] = {}
    exprs = [p.source for p in ir.projections] + [piece.expr for o in ir.outputs for piece in o.pieces]
    for expr in exprs:
        for ref in _refs(expr):
            ref_index.setdefault(ref_key(ref), flat_index(sizes[ref.source], ref.select))
    output_index = {(o.name, i): flat_index([a.size for a in o.shape], piece.select)
                    for o in ir.outputs for i, piece in enumerate(o.pieces)}
    projections = [_projection(p, sizes, populations) for p in ir.projections]
    return Plan(ir, _order(ir), populations, projections, list(ir.parameters), ref_index, output_index, sizes)


def _projection(p: Projection, sizes: dict[str, list[int]], populations: dict[str, PopulationPlan]) -> ProjectionPlan:
    c = p.connectivity
    source_size, target_size = math.prod(a.size for a in p.source_shape), math.prod(a.size for a in p.target_shape)
    rule = c.rule if c.rule in ("one_to_one", "all_to_all") else "explicit"
    pre = None if c.pre is None else np.asarray(c.pre.data, dtype=np.int64)
    post = None if c.post is None else np.asarray(c.post.data, dtype=np.int64)
    extra: dict[str, object] = {}
    if p.kind == "electrical":
        if not isinstance(p.source, Ref) or p.source.source not in populations:
            raise ValueError(f"gap junction {p.id!r} needs a population on its source side")
        if rule == "one_to_one":
            pre = post = np.arange(target_size, dtype=np.int64)
        elif rule == "all_to_all":
            post, pre = (g.ravel().astype(np.int64) for g in np.meshgrid(np.arange(target_size),
                                                                          np.arange(source_size), indexing="ij"))
        rule = "explicit"
        index = flat_index(sizes[p.source.source], p.source.select)
        extra = dict(source_population=p.source.source,
                     source_index=np.arange(source_size, dtype=np.int64) if index is None else index,
                     source_port=populations[p.source.source].model.inputs[0].name)
    return ProjectionPlan(
        id=p.id, kind=p.kind, source=p.source, source_size=source_size, target=p.target,
        target_index=flat_index(sizes[p.target], p.target_select), target_size=target_size, port=p.port,
        rule=rule, pre=pre, post=post, param=p.weight.param, offset=p.weight.offset, stride=p.weight.stride,
        synapses=p.synapses, delay=p.delay, recurrent=p.recurrent, **extra)  # type: ignore[arg-type]


def _order(ir: CircuitIR) -> list[str]:
    """Topological order over the within-step edges (acyclic: elaboration marked cycle-closing ones
    recurrent), ties broken by declaration order."""
    position = {p.name: i for i, p in enumerate(ir.populations)}
    graph = nx.DiGraph()
    graph.add_nodes_from(position)
    for p in ir.projections:
        if p.kind == "chemical" and p.delay == 0 and not p.recurrent:
            graph.add_edges_from((s, p.target) for s in signal_sources(p.source) if s in position)
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))

