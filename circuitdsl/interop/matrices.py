"""A projection as data a converter can write: the dense [target units, source units] weight matrix it applies,
with each synapse's whole-step delay, computed from the IR and a compiled circuit's stored parameter values.

Exchange formats carry weight matrices, not parameter tables with sharing, signs and enforcement, so every
exporter reads projections through here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from circuitdsl.ir.model import CircuitIR, Projection, Ref
from circuitdsl.ir.params import NumpyOps, effective, synapse_units, synapse_weights
from circuitdsl.ir.units import selected_units


def stored_values(module: object) -> dict[str, np.ndarray]:
    """A compiled torch circuit's parameters by qualified name, as float64 numpy arrays.

    The module's `state_dict()` keys are `params.<name>` with '.' written as '/' (see README)."""
    state = module.state_dict()  # type: ignore[attr-defined]
    return {key[len("params."):].replace("/", "."): value.detach().cpu().double().numpy()
            for key, value in state.items() if key.startswith("params.")}


def synapse_weights_of(ir: CircuitIR, projection: Projection, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each synapse's weight: its element of the (enforced) parameter, times the connectome's sign and scale."""
    parameter = ir.parameter(projection.weight.param)
    raw = np.asarray(values[projection.weight.param], dtype=np.float64).reshape(-1)
    return synapse_weights(projection, effective(parameter, raw, NumpyOps()))


def synapse_delays(projection: Projection, values: Mapping[str, np.ndarray]) -> np.ndarray:
    """Each synapse's delay in whole steps: the fixed delay, or a learned one clamped to 1..K and rounded (what
    a learnable delay is when its kernel width sigma is 0)."""
    learned = projection.learnable_delay
    if learned is None:
        return np.full(projection.synapses, projection.delay, dtype=np.int64)
    d = np.clip(np.asarray(values[learned.param], dtype=np.float64).reshape(-1), 1.0, float(learned.max))
    return np.floor(d + 0.5).astype(np.int64)


def population_size(ir: CircuitIR, name: str) -> int:
    return math.prod(a.size for a in ir.population(name).shape)


def signal_size(ir: CircuitIR, name: str) -> int:
    """Units of a population or an input port."""
    for port in ir.inputs:
        if port.name == name:
            return math.prod(a.size for a in port.shape)
    return population_size(ir, name)


def matrices(ir: CircuitIR, projection: Projection, values: Mapping[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The projection as {delay in steps: [target population units, source signal units] matrix}, the weights
    of the synapses with that delay placed through both selections; its source must be a plain reference."""
    assert isinstance(projection.source, Ref)
    source_sizes = _sizes(ir, projection.source.source)
    target_sizes = [a.size for a in ir.population(projection.target).shape]
    columns = selected_units(source_sizes, projection.source.select)
    rows = selected_units(target_sizes, projection.target_select)
    pre, post = synapse_units(projection)
    weights = synapse_weights_of(ir, projection, values)
    steps = synapse_delays(projection, values)
    out: dict[int, np.ndarray] = {}
    for delay in np.unique(steps):
        chosen = steps == delay
        matrix = np.zeros((math.prod(target_sizes), math.prod(source_sizes)))
        np.add.at(matrix, (rows[post[chosen]], columns[pre[chosen]]), weights[chosen])
        out[int(delay)] = matrix
    return out


def _sizes(ir: CircuitIR, name: str) -> list[int]:
    for port in ir.inputs:
        if port.name == name:
            return [a.size for a in port.shape]
    return [a.size for a in ir.population(name).shape]
