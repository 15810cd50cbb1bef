"""IR -> an execution plan that any backend runs: evaluation order and index arrays, in numpy.

The plan holds everything a step needs that does not depend on the array library: which populations
are computed in which order, where each projection reads and writes (flat unit indices), and how each
parameter is laid out, and how each projection is lowered (by its density, see `lowering_of`).  Backends
turn the index arrays into their own arrays once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import networkx as nx
import numpy as np

from circuitdsl.errors import did_you_mean
from circuitdsl.ir.expr import refs
from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.model import (
    Axis,
    AxisSel,
    CircuitIR,
    Expr,
    NeuronModel,
    Operator,
    Parameter,
    Projection,
    Ref,
)
from circuitdsl.ir.units import port_size, selected_units

DENSE_ABOVE: Final = 0.1
"""An explicit projection whose synapses fill more than this fraction of its [target, source] matrix runs as
one matmul (its weights scattered into the matrix each step); a sparser one gathers and scatters.  Measured on
one CPU thread (200 units, recurrent): sparse is faster below about 5% at batch 64 and below about 30% at
batch 1, in torch and in JAX; 10% lies between, and dense only gains on accelerators."""

AXIS_OPERATORS: Final = ("linear", "layer_norm")
"""Operator kinds on any named axes (circuitdsl/ir/axes.py), not on a field's grid."""

LOWERINGS: Final = ("auto", "dense", "sparse")
"""`auto` picks each projection's lowering by its rule and density; `dense` and `sparse` force one for all."""


def flat_index(sizes: list[int], select: list[AxisSel] | None) -> np.ndarray | None:
    """Row-major flat indices of the selected units, in selection order; None when all units are selected."""
    return None if select is None else selected_units(sizes, select)


@dataclass(frozen=True)
class PopulationPlan:
    name: str
    size: int
    model: NeuronModel


@dataclass(frozen=True)
class ProjectionPlan:
    """One projection: read `source` (an expression over refs), weight it, add it into `target`'s `port`.

    `lowering` says how its synapses run: `elementwise` (one_to_one: source * w), `dense` (all_to_all: a
    matmul with the weights in place), `masked` (the synapses' weights scattered into a dense [target,
    source] matrix, then a matmul) or `sparse` (gather the sources at `pre`, scatter-add into `post`).
    `pre` and `post` list every synapse's flat units for the masked and sparse lowerings.
    """

    id: str
    kind: str
    source: Expr
    source_size: int
    target: str
    target_index: np.ndarray | None  # flat units of the target this projection reaches (None: all)
    target_size: int  # units reached
    port: str
    rule: str  # one_to_one | all_to_all | explicit
    lowering: str  # elementwise | dense | masked | sparse
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
    gather: np.ndarray | None = None  # each synapse's element of the parameter (shared groups), if not offset/stride
    factor: np.ndarray | None = None  # each synapse's fixed factor (sign × scale of connectome data)
    delay_param: str | None = None  # learnable delays: the param of each synapse's delay ...
    delay_sigma: str | None = None  # ... and of the kernel width (the history is `delay` steps; see delays.py)
    operator: Operator | None = None  # fields: the operator (see operators.py) ...
    channels: tuple[int, int] = (1, 1)  # ... the channels it maps from and to ...
    grid: tuple[int, ...] = ()  # ... and the points of each grid axis it acts on
    named: tuple[Axis, ...] = ()  # a linear or layer_norm operator: the source's named axes


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


def make_plan(ir: CircuitIR, lowering: str = "auto") -> Plan:
    """The plan of `ir`, each projection lowered as `lowering` (one of LOWERINGS) says."""
    if lowering not in LOWERINGS:
        from circuitdsl.backends.interface import CircuitRuntimeError  # here: interface imports step, step this

        hint = did_you_mean(str(lowering), LOWERINGS)
        raise CircuitRuntimeError(f"unknown lowering {lowering!r}; lowerings: {', '.join(LOWERINGS)}"
                                  + (f"; {hint}" if hint else ""))
    sizes = {p.name: [a.size for a in p.shape] for p in ir.populations}
    sizes.update({p.name: [a.size for a in p.shape] for p in ir.inputs})
    populations = {p.name: PopulationPlan(p.name, math.prod(sizes[p.name]), ir.neurons[p.model])
                   for p in ir.populations}
    ref_index: dict[tuple[str, str], np.ndarray | None] = {}
    exprs = [p.source for p in ir.projections] + [piece.expr for o in ir.outputs for piece in o.pieces]
    for expr in exprs:
        for ref in refs(expr, ir.shared):
            ref_index.setdefault(ref_key(ref), flat_index(sizes[ref.source], ref.select))
    output_index = {(o.name, i): flat_index([a.size for a in o.shape], piece.select)
                    for o in ir.outputs for i, piece in enumerate(o.pieces)}
    projections = [_projection(p, sizes, populations, lowering) for p in ir.projections]
    return Plan(ir, _order(ir), populations, projections, list(ir.parameters), ref_index, output_index, sizes)


def lowering_of(rule: str, synapses: int, target_size: int, source_size: int, force: str = "auto") -> str:
    """How a projection's synapses run: by rule, and for explicit synapses by density against DENSE_ABOVE."""
    if force == "dense":
        return "dense" if rule == "all_to_all" else "masked"
    if force in ("sparse", "operator"):
        return force
    if rule in ("one_to_one", "all_to_all"):
        return "elementwise" if rule == "one_to_one" else "dense"
    return "masked" if synapses > DENSE_ABOVE * target_size * source_size else "sparse"


def _synapse_units(rule: str, target_size: int, source_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) flat units of every synapse of a one_to_one or all_to_all rule, in synapse order."""
    if rule == "one_to_one":
        return np.arange(target_size, dtype=np.int64), np.arange(target_size, dtype=np.int64)
    post, pre = np.meshgrid(np.arange(target_size), np.arange(source_size), indexing="ij")
    return pre.ravel().astype(np.int64), post.ravel().astype(np.int64)


def _projection(p: Projection, sizes: dict[str, list[int]], populations: dict[str, PopulationPlan],
                force: str) -> ProjectionPlan:
    c = p.connectivity
    source_size, target_size = math.prod(a.size for a in p.source_shape), math.prod(a.size for a in p.target_shape)
    rule = c.rule if c.rule in ("one_to_one", "all_to_all") else "explicit"
    pre = None if c.pre is None else np.array(c.pre.data, dtype=np.int64)  # copies: the IR's arrays are read-only
    post = None if c.post is None else np.array(c.post.data, dtype=np.int64)
    extra: dict[str, object] = {}
    if p.kind == "electrical":
        if not isinstance(p.source, Ref) or p.source.source not in populations:
            raise ValueError(f"gap junction {p.id!r} needs a population on its source side")
        if rule != "explicit":
            pre, post = _synapse_units(rule, target_size, source_size)
        rule = "explicit"
        index = flat_index(sizes[p.source.source], p.source.select)
        extra = {"source_population": p.source.source,
                 "source_index": np.arange(source_size, dtype=np.int64) if index is None else index,
                 "source_port": populations[p.source.source].model.inputs[0].name}
    if p.weight.index is not None:
        extra["gather"] = np.array(p.weight.index.data, dtype=np.int64)
    if p.weight.sign is not None or p.weight.scale is not None:
        factor = np.ones(p.synapses)  # float64: a float64 circuit keeps count * 0.1 exact; the ops cast it to theirs
        for part in (p.weight.sign, p.weight.scale):
            if part is not None:
                factor *= part.data.astype(np.float64)
        extra["factor"] = factor
    if p.operator is not None:
        extra.update(operator=p.operator, channels=(_channels(p.source_shape), _channels(p.target_shape)),
                     grid=tuple(a.size for a in p.target_shape if a.domain is not None))
        rule = force = "operator"
        if p.operator.kind in AXIS_OPERATORS:
            extra["named"] = tuple(p.source_shape)
    if p.learnable_delay is not None:  # each synapse reads its own mix of the history: gather, then scatter
        extra.update(delay_param=p.learnable_delay.param, delay_sigma=p.learnable_delay.sigma)
        force = "sparse"
    lowering = lowering_of(rule, p.synapses, target_size, source_size, force)
    if lowering in ("masked", "sparse") and rule != "explicit":
        pre, post = _synapse_units(rule, target_size, source_size)
    return ProjectionPlan(
        id=p.id, kind=p.kind, source=p.source, source_size=source_size, target=p.target,
        target_index=_target_index(p, sizes[p.target], populations[p.target].model), target_size=target_size,
        port=p.port,
        rule=rule, lowering=lowering, pre=pre, post=post, param=p.weight.param, offset=p.weight.offset,
        stride=p.weight.stride, synapses=p.synapses, delay=p.delay, recurrent=p.recurrent,
        **extra)  # type: ignore[arg-type]


def _target_index(p: Projection, sizes: list[int], model: NeuronModel) -> np.ndarray | None:
    """Flat elements of the target port this projection reaches: units, times the port's segments if it has them."""
    segments = port_size(model, p.port)
    if p.target_select is None or segments == 1:
        return flat_index(sizes, p.target_select)
    units = flat_index(sizes, p.target_select)
    return (units[:, None] * segments + np.arange(segments)).ravel()  # type: ignore[index]


def _channels(shape: list[Axis]) -> int:
    """The channels of a field: the size of its one axis without a domain, 1 when it has none."""
    return math.prod(a.size for a in shape if a.domain is None)


def read_later(plan: Plan) -> frozenset[str]:
    """The populations whose output a step reads again the step after (the sources of recurrent edges without a
    delay line, both ends of a gap junction): the only last outputs a state keeps.  Any other population's output
    is recomputed from its inputs every step; `record=` gives it."""
    names: set[str] = set()
    for p in plan.projections:
        if p.kind == "electrical":
            assert p.source_population is not None
            names.update((p.target, p.source_population))
        elif p.recurrent and not p.delay:
            names.update(r.source for r in refs(p.source, plan.ir.shared) if r.source in plan.populations)
    return frozenset(names)


def _order(ir: CircuitIR) -> list[str]:
    """Topological order over the within-step edges (acyclic: elaboration marked cycle-closing ones
    recurrent), ties broken by declaration order."""
    position = {p.name: i for i, p in enumerate(ir.populations)}
    graph = nx.DiGraph()
    graph.add_nodes_from(position)
    for p in ir.projections:
        if p.kind == "chemical" and p.delay == 0 and not p.recurrent:
            graph.add_edges_from((s, p.target) for s in signal_sources(p.source, ir.shared) if s in position)
    return list(nx.lexicographical_topological_sort(graph, key=position.__getitem__))

