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

from circuitdsl.elaborate.limits import Limits
from circuitdsl.ir.arrays import Array

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
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidIR(f"{where}: {value} is not a finite number")
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
    for i, proj in enumerate(circuit.projections):
        if proj.synapses < 0:
            raise InvalidIR(f"ir.projections[{i}] '{proj.id}': {proj.synapses} synapses")
    totals = {"units": circuit.units, "synapses": circuit.synapses,
              "parameters": sum(p.size for p in circuit.parameters)}
    for name, total in totals.items():
        if total > getattr(limits, name):
            raise InvalidIR(f"the circuit holds {total} {name}, {limits.over(name)}")


def _check_references(circuit: ir.CircuitIR) -> None:
    populations = {p.name: p for p in circuit.populations}
    parameters = {p.name: p for p in circuit.parameters}
    signals = {*populations, *(p.name for p in circuit.inputs)}
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
    for i, source in enumerate(circuit.sources):
        if source.population not in populations:
            raise InvalidIR(f"ir.sources[{i}]: no population '{source.population}'")
    _check_expressions(circuit, signals)


def _check_connectivity(where: str, proj: ir.Projection) -> None:
    c = proj.connectivity
    if c.pre is None or c.post is None:
        return
    if not len(c.pre) == len(c.post) == proj.synapses:
        raise InvalidIR(f"{where}: {len(c.pre)} pre and {len(c.post)} post indices for {proj.synapses} synapses")
    for side, indices, shape in (("pre", c.pre, proj.source_shape), ("post", c.post, proj.target_shape)):
        n = math.prod(a.size for a in shape)
        if indices.data.size and (indices.data.min() < 0 or indices.data.max() >= n):
            raise InvalidIR(f"{where}: a '{side}' index is outside the {n} units")


def _check_expressions(circuit: ir.CircuitIR, signals: set[str]) -> None:
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
            if kind == "shared" and not 0 <= node.index < bound:
                raise InvalidIR(f"{where}: no shared entry {node.index} (there are {bound} before it)")
            if isinstance(node, BaseModel):
                stack.extend(getattr(node, name) for name in type(node).model_fields)
            elif isinstance(node, list | tuple):
                stack.extend(node)
            elif isinstance(node, dict):
                stack.extend(node.values())


def expression_size(root: Any) -> int:
    """The nodes of an expression, each distinct node object counted once (a `let` read twice is one node)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, BaseModel):
            stack.extend(getattr(node, name) for name in type(node).model_fields)
        elif isinstance(node, list | tuple):
            stack.extend(node)
    return len(seen)
