"""The IR at neuron level: unit names, the units a selection picks, the unit pairs each projection joins."""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from circuitdsl.ir.axes import AXIS_NODES
from circuitdsl.ir.expr import evaluate, refs, walk
from circuitdsl.ir.model import Axis, AxisSel, Expr, Parameter, Projection, Ref
from circuitdsl.ir.units import selected_units


def selected_axes(shape: Sequence[Axis], select: Sequence[AxisSel] | None) -> list[Axis]:
    """The axes left after a selection: an index drops its axis, a slice or list shortens it."""
    if select is None:
        return list(shape)
    kept = []
    for axis, sel in zip(shape, select, strict=True):
        if not isinstance(sel, int):
            size = len(selected_units([axis.size], [sel]))
            kept.append(Axis(name=axis.name, size=size))
    return kept


def unit_names(name: str, shape: Sequence[Axis]) -> list[str]:
    """Every unit of a population or port, row-major: `Bd[2]`, `N[AVAL]`, `h[1,0]`; a single unit is `name`."""
    if not shape:
        return [name]
    per_axis = [axis.labels or [str(i) for i in range(axis.size)] for axis in shape]
    return [f"{name}[{','.join(index)}]" for index in itertools.product(*per_axis)]


def synapses(projection: Projection) -> tuple[np.ndarray, np.ndarray]:
    """(source signal unit, target unit within the selection) of every synapse, in the IR's synapse order."""
    rule = projection.connectivity
    if rule.pre is not None and rule.post is not None:
        return np.asarray(rule.pre.data, dtype=np.int64), np.asarray(rule.post.data, dtype=np.int64)
    sources = math.prod(a.size for a in projection.source_shape)
    if rule.rule == "one_to_one":
        every = np.arange(sources, dtype=np.int64)
        return every, every
    targets = math.prod(a.size for a in projection.target_shape)
    target, source = np.divmod(np.arange(targets * sources, dtype=np.int64), sources)  # synapse t * n_source + s
    return source, target


def given_weights(projection: Projection, parameter: Parameter) -> np.ndarray | None:
    """Each synapse's initial weight where the IR gives it (a constant, or data such as a connectome's
    counts, with the synapse's fixed sign and scale); None where it is drawn at random, and for an operator (its
    weights are no synapses' weights: a layer norm's scale starts at 1)."""
    init = parameter.init
    if projection.operator is not None:
        return None
    if init.rule == "constant":
        values = np.full(max(math.prod(parameter.shape), 1), init.args[0], dtype=np.float64)
    elif init.rule == "data" and init.values is not None:
        values = np.asarray(init.values.data, dtype=np.float64).reshape(-1)
    else:
        return None
    ref = projection.weight
    synapse = np.arange(projection.synapses)
    index = np.asarray(ref.index.data, dtype=np.int64) if ref.index is not None else ref.offset + ref.stride * synapse
    weights = values[index]
    for factor in (ref.sign, ref.scale):
        if factor is not None:
            weights = weights * np.asarray(factor.data, dtype=np.float64)
    return weights


PROBED_UNITS = 4096
"""At most this many source units are probed one by one for what an expression mixing units depends on; past it,
every unit of the value is taken to read every unit of its sources."""


def mixes_units(expr: Expr, shared: Sequence[Expr] = ()) -> bool:
    """Whether a unit of the expression's value may read other units than its own (an operation over axes)."""
    return any(isinstance(node, AXIS_NODES) for node in walk(expr, shared, follow_shared=True))


def unit_dependencies(expr: Expr, shapes: Mapping[str, Sequence[Axis]],
                      shared: Sequence[Expr] = ()) -> dict[str, np.ndarray]:
    """For each population or input an expression that mixes units reads, a boolean [value unit, source unit]
    matrix of which units each unit of the value depends on.  Found by setting one source unit at a time to NaN
    and seeing where the value turns NaN: a sum, softmax or max spreads it exactly to the units that read it, a
    causal mask stops it (the reference evaluator, circuitdsl/ir/expr.py, computes the value)."""
    sources = list(dict.fromkeys(ref.source for ref in refs(expr, shared)))
    sizes = {name: math.prod(a.size for a in shapes[name]) for name in sources}

    def value(poisoned: str | None, unit: int) -> np.ndarray:
        def lookup(node: object) -> np.ndarray:
            assert isinstance(node, Ref)
            full = np.ones((1, sizes[node.source]))
            if node.source == poisoned:
                full[0, unit] = np.nan
            return full[:, selected_units([a.size for a in shapes[node.source]], node.select)]
        return np.asarray(evaluate(expr, lookup, shared), dtype=np.float64).reshape(-1)

    units = value(None, -1).size
    if sum(sizes.values()) > PROBED_UNITS:
        return {name: np.ones((units, size), dtype=bool) for name, size in sizes.items()}
    found = {}
    for name in sources:
        found[name] = np.stack([np.isnan(value(name, unit)) for unit in range(sizes[name])], axis=1)
    return found
