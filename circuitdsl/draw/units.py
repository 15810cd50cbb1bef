"""The IR at neuron level: unit names, the units a selection picks, the unit pairs each projection joins."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

from circuitdsl.ir.model import Axis, AxisSel, Parameter, Projection
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
