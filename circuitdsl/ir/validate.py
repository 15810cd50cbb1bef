"""What `CircuitIR.from_json` checks beyond the schema: the IR a backend may trust.

The schema (pydantic) says which fields exist and their types; this module says the values make sense:
the schema version is this one, every number is finite, sizes are >= 1, every name refers to something
that exists (targets, ports, models, parameters, sources of signals, shared entries), index arrays stay in
range, and the whole fits the default resource limits.  Nesting is measured on the text before it is
parsed, so 5,000 nested brackets are refused without a RecursionError; every walk here uses an explicit
stack.  Failures raise `InvalidIR` (a ValueError) naming the place: `projections[3].target: ...`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import numpy as np
from pydantic import BaseModel

from circuitdsl.functions import FUNCTIONS
from circuitdsl.ir import operators as operator_layout
from circuitdsl.ir.arrays import Array
from circuitdsl.limits import Limits, fits_float32

if TYPE_CHECKING:
    from circuitdsl.ir import model as ir

# brackets nested deeper than this are refused before parsing: pydantic's JSON parser stops at 200 levels with
# an opaque message, Python's at about 1,000 with a RecursionError.  An elaborated IR nests two levels per
# expression node; shared subexpressions (`Shared`) keep long chains of lets shallow
MAX_NESTING: Final = 200

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)


class InvalidIR(ValueError):
    """An IR text that parses but does not describe a circuit a backend can run."""


def nesting(text: str) -> int:
    """The deepest nesting of [ and { in JSON text (brackets inside strings are not counted), without recursion."""
    codes = np.frombuffer(_STRING.sub('""', text).encode("utf-8"), dtype=np.uint8)
    steps = np.zeros(len(codes), dtype=np.int64)
    steps[(codes == ord("[")) | (codes == ord("{"))] = 1
    steps[(codes == ord("]")) | (codes == ord("}"))] = -1
    return int(np.cumsum(steps).max(initial=0))


def from_json(model: type[ir.CircuitIR], text: str) -> ir.CircuitIR:
    """`CircuitIR.from_json`: the nesting measured, the schema validated, then the meaning (`check`)."""
    if (depth := nesting(text)) > MAX_NESTING:
        raise InvalidIR(f"the JSON nests {depth} levels deep, over {MAX_NESTING} (what the JSON parser reads)")
    circuit = model.model_validate_json(text)
    check(circuit)
    return circuit


def check(circuit: ir.CircuitIR, limits: Limits | None = None) -> None:
    """Raise InvalidIR at the first value that makes no sense (see the module docstring)."""
    from circuitdsl.ir.model import SCHEMA_VERSION

    if circuit.schema_version != SCHEMA_VERSION:
        raise InvalidIR(f"schema_version {circuit.schema_version}: this circuitdsl reads version {SCHEMA_VERSION}")
    for where, value in _leaves(circuit, "ir"):
        _check_leaf(where, value)
    _check_sizes(circuit, limits or Limits())
    _check_references(circuit)


def _leaves(root: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every (path, value) of a model that is a number, an Array or an axis, depth first with a stack."""
    stack: list[tuple[str, Any]] = [(path, root)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, BaseModel):
            if type(node).__name__ == "Axis":
                yield where, node
            stack.extend((f"{where}.{name}", getattr(node, name)) for name in type(node).model_fields)
        elif isinstance(node, list | tuple):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(node))
        elif isinstance(node, dict):
            stack.extend((f"{where}.{key}", item) for key, item in node.items())
        elif isinstance(node, float | Array):
            yield where, node


def _check_leaf(where: str, value: Any) -> None:
    if isinstance(value, float) and not fits_float32(value):
        raise InvalidIR(f"{where}: {value} is not a finite number that fits a float32 tensor")
    if isinstance(value, Array) and value.data.dtype.kind == "f" and not np.all(np.isfinite(value.data)):
        raise InvalidIR(f"{where}: the array holds a value that is not finite")
    if type(value).__name__ == "Axis" and value.size < 1:
        raise InvalidIR(f"{where}: axis '{value.name}' has size {value.size}; sizes are >= 1")
    if type(value).__name__ == "Axis" and value.labels is not None and len(value.labels) != value.size:
        raise InvalidIR(f"{where}: axis '{value.name}' has {len(value.labels)} labels for {value.size} units")


def _check_sizes(circuit: ir.CircuitIR, limits: Limits) -> None:
    for i, p in enumerate(circuit.parameters):
        if any(n < 1 for n in p.shape):
            raise InvalidIR(f"ir.parameters[{i}] '{p.name}': shape {p.shape}; sizes are >= 1")
        _check_init(f"ir.parameters[{i}] '{p.name}'", p.init, p.shape)
        if p.mask is not None and p.mask.data.size != p.size:
            raise InvalidIR(f"ir.parameters[{i}] '{p.name}': a mask of {p.mask.data.size} for {p.size} values")
    for i, proj in enumerate(circuit.projections):
        if proj.synapses < 0 or proj.delay < 0:
            raise InvalidIR(f"ir.projections[{i}] '{proj.id}': {proj.synapses} synapses, delay {proj.delay}")
        if proj.learnable_delay is not None and not 1 <= proj.learnable_delay.max == proj.delay:
            raise InvalidIR(f"ir.projections[{i}] '{proj.id}': a learnable delay keeps max = delay >= 1 steps")
    for i, output in enumerate(circuit.outputs):
        for j, piece in enumerate(output.pieces):
            _selected(f"ir.outputs[{i}].pieces[{j}]", output.shape, piece.select)
    totals = {"units": circuit.units, "synapses": circuit.synapses,
              "parameters": sum(p.size for p in circuit.parameters)}
    for name, total in totals.items():
        if total > getattr(limits, name):
            raise InvalidIR(f"the circuit holds {total} {name}, {limits.over(name)}")


def _check_references(circuit: ir.CircuitIR) -> None:
    populations = {p.name: p for p in circuit.populations}
    parameters = {p.name: p for p in circuit.parameters}
    signals = {**{p.name: p.shape for p in circuit.populations}, **{p.name: p.shape for p in circuit.inputs}}
    for i, population in enumerate(circuit.populations):
        if population.model not in circuit.neurons:
            raise InvalidIR(f"ir.populations[{i}] '{population.name}': no neuron model '{population.model}'")
    for i, proj in enumerate(circuit.projections):
        where = f"ir.projections[{i}] '{proj.id}'"
        target = populations.get(proj.target)
        if target is None:
            raise InvalidIR(f"{where}: no population '{proj.target}' to project into")
        if proj.port not in {port.name for port in circuit.neurons[target.model].inputs}:
            raise InvalidIR(f"{where}: model '{target.model}' has no input '{proj.port}'")
        named = [proj.weight.param, *([proj.learnable_delay.param, proj.learnable_delay.sigma]
                                      if proj.learnable_delay else []),
                 *([proj.operator.bias] if proj.operator and proj.operator.bias else [])]
        if missing := [name for name in named if name not in parameters]:
            raise InvalidIR(f"{where}: no parameter '{missing[0]}'")
        _check_connectivity(where, proj)
        _check_target(where, proj, target, circuit)
        _check_weights(where, proj, parameters[proj.weight.param].size)
        if proj.operator is not None:
            _check_operator(where, proj, proj.operator, parameters)
    for key, neuron in circuit.neurons.items():
        _check_neuron_names(f"ir.neurons.{key}", neuron)
    for i, source in enumerate(circuit.sources):
        if source.population not in populations:
            raise InvalidIR(f"ir.sources[{i}]: no population '{source.population}'")
    _check_expressions(circuit, signals)


def _check_connectivity(where: str, proj: ir.Projection) -> None:
    c = proj.connectivity
    if c.pre is None or c.post is None:
        if c.rule not in ("one_to_one", "all_to_all") and proj.operator is None:
            raise InvalidIR(f"{where}: the rule {c.rule} lists its synapses in pre and post")
        return
    if not len(c.pre) == len(c.post) == proj.synapses:
        raise InvalidIR(f"{where}: {len(c.pre)} pre and {len(c.post)} post indices for {proj.synapses} synapses")
    for side, indices, shape in (("pre", c.pre, proj.source_shape), ("post", c.post, proj.target_shape)):
        n = math.prod(a.size for a in shape)
        if indices.data.size and (indices.data.min() < 0 or indices.data.max() >= n):
            raise InvalidIR(f"{where}: a '{side}' index is outside the {n} units")


_INIT_ARGS: dict[str, int] = {"constant": 1, "uniform": 2, "normal": 2, "data": 0, "random_sign": 1,
                               "orthogonal": 1, "low_rank": 2}
"""How many arguments each init rule takes (circuitdsl/ir/model.py's `Init`)."""


def _check_init(where: str, init: ir.Init, shape: list[int]) -> None:
    """An init rule with the arguments it takes: constant(c), uniform(low <= high), normal(mean, std >= 0),
    random_sign(value), orthogonal(gain) and low_rank(rank, norm) on a matrix (1 <= rank <= its smaller side,
    rank whole), or data with one value per element."""
    size = math.prod(shape)
    wanted = _INIT_ARGS[init.rule]
    if len(init.args) != wanted:
        raise InvalidIR(f"{where}: init {init.rule} takes {wanted} arguments, not {len(init.args)}")
    if (init.rule == "uniform" and init.args[0] > init.args[1]) or (init.rule == "normal" and init.args[1] < 0):
        raise InvalidIR(f"{where}: init {init.rule}{tuple(init.args)} draws from no distribution")
    if init.rule in ("orthogonal", "low_rank") and len(shape) != 2:
        raise InvalidIR(f"{where}: init {init.rule} draws a matrix, not a parameter of shape {shape}")
    if init.rule == "low_rank" and not (init.args[0] == int(init.args[0]) and 1 <= init.args[0] <= min(shape)):
        raise InvalidIR(f"{where}: init low_rank of rank {init.args[0]:g} for a {shape[0]} x {shape[1]} matrix")
    if (init.rule == "data") != (init.values is not None):
        raise InvalidIR(f"{where}: init values are given with the rule data, and only with it")
    if init.values is not None and init.values.data.size not in (size, 0) and size % max(init.values.data.size, 1):
        raise InvalidIR(f"{where}: {init.values.data.size} init values for {size} elements")


def _selected(where: str, shape: list[ir.Axis], select: list[ir.AxisSel] | None) -> int:
    """The units a selection of `shape` keeps, every index checked against its axis."""
    if select is None:
        return math.prod(a.size for a in shape)
    if len(select) != len(shape):
        raise InvalidIR(f"{where}: {len(select)} axis selections for {len(shape)} axes")
    kept = 1
    for axis, sel in zip(shape, select, strict=True):
        if isinstance(sel, int):
            indices = np.array([sel])
        elif isinstance(sel, Array):
            indices = sel.data
        elif hasattr(sel, "indices"):
            indices = sel.indices.data
        else:
            indices = np.arange(sel.start, sel.stop, sel.step) if sel.step else np.zeros(0, np.int64)
        if indices.size == 0 or indices.min() < 0 or indices.max() >= axis.size:
            raise InvalidIR(f"{where}: a selection of axis '{axis.name}' is empty or outside its {axis.size} units")
        kept *= 1 if isinstance(sel, int) else int(indices.size)
    return kept


def _check_target(where: str, proj: ir.Projection, target: ir.Population, circuit: ir.CircuitIR) -> None:
    """The target's units (its selection, times the port's internal axes) are the projection's target shape,
    and a rule without index lists has the synapse count its shapes give."""
    port = next(p for p in circuit.neurons[target.model].inputs if p.name == proj.port)
    units = _selected(where, target.shape, proj.target_select) * math.prod(a.size for a in port.shape)
    n_target = math.prod(a.size for a in proj.target_shape)
    if proj.operator is None and units != n_target:
        raise InvalidIR(f"{where}: the target's {units} units are not its target shape's {n_target}")
    n_source = math.prod(a.size for a in proj.source_shape)
    implied = {"one_to_one": n_target, "all_to_all": n_source * n_target}.get(proj.connectivity.rule)
    if proj.operator is None and implied is not None and (proj.synapses != implied or (
            proj.connectivity.rule == "one_to_one" and n_source != n_target)):
        raise InvalidIR(f"{where}: {proj.connectivity.rule} between {n_source} and {n_target} units is not "
                        f"{proj.synapses} synapses")


def _check_operator(where: str, proj: ir.Projection, op: ir.Operator, parameters: dict[str, ir.Parameter]) -> None:
    """Both ends carry the operator's grid axes last, alike; its weights and bias hold what its layout needs."""
    if op.kind in ("linear", "layer_norm"):
        c_in, c_out = _named_operator(where, proj, op)
        _check_operator_params(where, op, proj.weight.param, c_in, c_out, parameters)
        return
    grid = len(op.axes)
    for side, shape in (("source", proj.source_shape), ("target", proj.target_shape)):
        tail = shape[len(shape) - grid:] if grid else []
        if [a.name for a in tail] != op.axes or len(shape) - grid > 1:
            raise InvalidIR(f"{where}: the {side} is not [channel,] {', '.join(op.axes)}")
    if [a.size for a in proj.source_shape[len(proj.source_shape) - grid:]] != \
            [a.size for a in proj.target_shape[len(proj.target_shape) - grid:]]:
        raise InvalidIR(f"{where}: the source and the target grids differ")
    c_in, c_out = (shape[0].size if len(shape) > grid else 1 for shape in (proj.source_shape, proj.target_shape))
    _check_operator_params(where, op, proj.weight.param, c_in, c_out, parameters)


def _check_operator_params(where: str, op: ir.Operator, weight: str, c_in: int, c_out: int,
                           parameters: dict[str, ir.Parameter]) -> None:
    """The operator's weights and bias hold what its layout needs for c_in and c_out channels."""
    wanted = {weight: operator_layout.weight_count(op, c_in, c_out)}
    if op.bias is not None:
        wanted[op.bias] = math.prod(operator_layout.bias_shape(op, c_out))
    for name, count in wanted.items():
        if parameters[name].size != count:
            raise InvalidIR(f"{where}: parameter '{name}' holds {parameters[name].size} values, not {count}")


def _named_operator(where: str, proj: ir.Projection, op: ir.Operator) -> tuple[int, int]:
    """A linear or layer_norm operator: both ends have its channel axis and the same other axes (a layer norm
    keeps the channel's size too); its size on either end."""
    names = [[a.name for a in shape] for shape in (proj.source_shape, proj.target_shape)]
    if op.axes or op.channel is None or names[0] != names[1] or op.channel not in names[0]:
        raise InvalidIR(f"{where}: a {op.kind} operator maps axes {names[0]} to the same axes, over one of them")
    at = names[0].index(op.channel)
    others = [[(a.name, a.size) for i, a in enumerate(shape) if i != at]
              for shape in (proj.source_shape, proj.target_shape)]
    c_in, c_out = proj.source_shape[at].size, proj.target_shape[at].size
    if others[0] != others[1] or (op.kind == "layer_norm" and c_in != c_out):
        raise InvalidIR(f"{where}: the source and the target of a {op.kind} operator differ beyond its axis")
    return c_in, c_out


def _check_weights(where: str, proj: ir.Projection, size: int) -> None:
    """Every synapse reads an element of its parameter; per-synapse arrays hold one entry per synapse."""
    w, n = proj.weight, proj.synapses
    if w.index is not None:
        if len(w.index) != n or (n and (w.index.data.min() < 0 or w.index.data.max() >= size)):
            raise InvalidIR(f"{where}: the weight index does not give each of {n} synapses an element of {size}")
    elif proj.operator is None and n and not (0 <= w.offset < size and 0 <= w.offset + w.stride * (n - 1) < size):
        raise InvalidIR(f"{where}: synapses read elements {w.offset} .. {w.offset + w.stride * (n - 1)} of a "
                        f"parameter of {size}")
    for name, array in (("sign", w.sign), ("scale", w.scale)):
        if array is not None and len(array) != n:
            raise InvalidIR(f"{where}: {len(array)} weight {name}s for {n} synapses")


def _check_neuron_names(where: str, neuron: ir.NeuronModel) -> None:
    """Every name a neuron's equations read is one of its arguments, states, inputs, params or equations."""
    known = {*neuron.args, *(s.name for s in neuron.states), *(p.name for p in neuron.inputs),
             *(p.name for p in neuron.params), "dt"}
    for i, equation in enumerate(neuron.equations):  # a let or a spike is read after its equation only
        stack: list[Any] = [equation.expr]
        while stack:
            node = stack.pop()
            if getattr(node, "node", None) == "var" and node.name not in known:
                raise InvalidIR(f"{where}.equations[{i}]: '{node.name}' is no argument, state, input, param, or "
                                "equation before it")
            if isinstance(node, BaseModel):
                stack.extend(getattr(node, name) for name in type(node).model_fields)
            elif isinstance(node, list):
                stack.extend(node)
        known.add(equation.target)


def _check_expressions(circuit: ir.CircuitIR, signals: dict[str, list[ir.Axis]]) -> None:
    """Every Ref names a population or an input; every Shared index an entry (an entry only earlier ones)."""
    roots: list[tuple[str, Any, int]] = [(f"ir.shared[{i}]", e, i) for i, e in enumerate(circuit.shared)]
    roots += [(f"ir.projections[{i}].source", p.source, len(circuit.shared))
              for i, p in enumerate(circuit.projections)]
    roots += [(f"ir.outputs[{i}]", o, len(circuit.shared)) for i, o in enumerate(circuit.outputs)]
    roots += [(f"ir.neurons.{k}", m, len(circuit.shared)) for k, m in circuit.neurons.items()]
    for where, root, bound in roots:
        stack = [root]
        while stack:
            node = stack.pop()
            kind = getattr(node, "node", None)
            if kind == "ref" and node.source not in signals:
                raise InvalidIR(f"{where}: no population or input '{node.source}'")
            if kind == "ref":
                _selected(f"{where}: '{node.source}'", signals[node.source], node.select)
            if kind == "shared" and not 0 <= node.index < bound:
                raise InvalidIR(f"{where}: no shared entry {node.index} (there are {bound} before it)")
            if kind == "call" and node.fn not in FUNCTIONS:
                raise InvalidIR(f"{where}: no function '{node.fn}'")
            if isinstance(node, BaseModel):
                stack.extend(getattr(node, name) for name in type(node).model_fields)
            elif isinstance(node, list | tuple):
                stack.extend(node)
            elif isinstance(node, dict):
                stack.extend(node.values())
