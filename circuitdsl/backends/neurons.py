"""A population's neuron model compiled once into closures: its equations in order, per step.

Inside a step every value is [batch, units, k] (k: its internal axis, 1 for a plain value) and a param of the
model [units or 1, *its axes], so per-unit values broadcast over a unit's axis; ports and states are flat
[batch, units * k] outside.  Constants are folded at compile time; nothing is walked at run time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from circuitdsl.backends.closures import ExprCompiler
from circuitdsl.backends.plan import Plan
from circuitdsl.backends.step import Ops, State, surrogate_slope
from circuitdsl.ir.expr import walk
from circuitdsl.ir.model import Ref, Var
from circuitdsl.ir.units import class_groups, port_size

Array = Any


class NeuronProgram:
    """One population's neuron model, for one backend."""

    def __init__(self, plan: Plan, population: str, ops: Ops) -> None:
        self.ops, self.name = ops, population
        self.model = model = plan.populations[population].model
        self.units = plan.populations[population].size
        compiler = ExprCompiler(ops)
        self.equations = [(e.kind, e.target, compiler.compile(e.expr, _leaf), e.surrogate or "atan",
                           surrogate_slope(e.surrogate_args)) for e in model.equations]
        self.states = [(f"{population}.{v.name}", v.name, math.prod(a.size for a in v.shape)) for v in model.states]
        self.state_size = {v.name: math.prod(a.size for a in v.shape) for v in model.states}
        self.ports = [(i.name, port_size(model, i.name)) for i in model.inputs]
        self.port_size = dict(self.ports)
        # the names the equations read: a port no equation reads is not computed (a clock's unused `in`)
        self.reads = {n.name for e in model.equations for n in walk(e.expr) if isinstance(n, Var)}
        # a model whose values are all one per unit runs on flat [batch, units] arrays: no reshapes per step
        self.flat = (all(size == 1 for _, size in self.ports) and all(size == 1 for *_, size in self.states)
                     and not model.output_shape and not any(p.shape for p in model.params))
        self.params = []  # (name, qualified param, copies, shape, by-class index or None)
        for param in model.params:
            index = None
            if param.by_class:
                rows = class_groups(plan.ir.population(population).shape[0].classes or [])[0]
                k = math.prod(a.size for a in param.shape)
                index = ops.asarray((rows[:, None] * k + np.arange(k)).reshape(-1))
            shape = [a.size for a in param.shape] or [1]
            self.params.append((param.name, f"{population}.{param.name}", 1 if param.shared else self.units, shape,
                                index))

    def private(self, weights: Mapping[str, Array]) -> dict[str, Array]:
        """The model's params for this call, each [units or 1, *shape] (per-class values gathered per unit)."""
        out = {}
        for name, qualified, copies, shape, index in self.params:
            values = weights[qualified]
            if index is not None:
                values = self.ops.take(values.reshape(1, -1), index).reshape(-1)
            out[name] = values.reshape(copies) if self.flat else values.reshape(copies, *shape)
        return out

    def run(self, values: dict[str, Array], state: Mapping[str, Array], private: Mapping[str, Array], batch: int,
            updates: State, keep: frozenset[str] = frozenset(), kept: dict[str, Array] | None = None) -> Array:
        """One step: the output [batch, units * out]; the new states go into `updates`, the lets and spikes named
        in `keep` into `kept`.  `values` holds the ports the equations read, flat, and is taken over."""
        ops, units = self.ops, self.units
        if self.flat:
            unit: tuple[int, ...] = (batch, units)
            for key, name, _ in self.states:
                values[name] = state[key]
        else:
            unit = (batch, units, 1)
            for name, x in values.items():
                values[name] = x.reshape(batch, units, self.port_size[name])
            for key, name, size in self.states:
                values[name] = state[key].reshape(batch, units, size)
        if private:
            values.update(private)
        out = None
        for kind, target, compiled, surrogate, slope in self.equations:
            result = compiled(values) if callable(compiled) else compiled
            if kind == "spike":
                result = ops.spike(ops.broadcast(result, unit), surrogate, slope)
            if kind == "out":
                out = ops.broadcast(result, unit)
                out = out if self.flat else out.reshape(batch, -1)
            elif kind in ("update", "ode"):
                values[target] = ops.broadcast(result, unit if self.flat else (batch, units, self.state_size[target]))
            else:
                values[target] = result if kind == "let" else ops.broadcast(result, unit)
        for key, name, size in self.states:
            updates[key] = values[name] if self.flat else ops.broadcast(values[name], (batch, units, size)).reshape(
                batch, -1)
        if kept is not None:
            kept.update({v: ops.broadcast(values[v], unit) for v in keep})
        return out


def _leaf(node: Var | Ref) -> Any:
    """A neuron's name read from the step's values."""
    assert isinstance(node, Var)
    name = node.name
    return lambda values: values[name]  # (not operator.itemgetter, which torch.compile cannot trace)
