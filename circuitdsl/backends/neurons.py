"""A population's neuron model compiled once into closures: its equations in order, per step.

Inside a step every value is [batch, units, k] (k: its internal axis, 1 for a plain value) and a param of the
model [units or 1, *its axes], so per-unit values broadcast over a unit's axis; ports and states are flat
[batch, units * k] outside.  Constants are folded at compile time; nothing is walked at run time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from circuitdsl.backends.closures import Closure, Compiled, ExprCompiler, full_shaped
from circuitdsl.backends.plan import Plan
from circuitdsl.backends.step import Ops, State, surrogate_slope
from circuitdsl.ir.expr import fold, walk
from circuitdsl.ir.model import Expr, NeuronModel, Ref, Var
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

    def runner(self, ports: Mapping[str, Closure], private: str) -> Closure:
        """One step without records as one closure of the step's frame: it returns the output and writes the new
        states into `frame.new_state`.  `ports` reads each port the equations read (a closure of the frame);
        `private` is the key of the model's params in `frame.prepared`.  A flat model's equations are compiled
        into one tree of closures (`_single`); any other runs through `run`."""
        if self.flat:
            return self._single(ports, private)
        reads = list(ports.items())

        def general(fr: Any) -> Array:
            values = {port: read(fr) for port, read in reads}
            return self.run(values, fr.state, fr.prepared[private], fr.batch, fr.new_state)
        return general

    def _single(self, ports: Mapping[str, Closure], private: str) -> Closure:
        """A flat model's step as closures of the frame, equation by equation: a name reads the closure of its
        latest value (a port's input, a state, a param, a let, a state's update); a value read more than once is
        kept in the frame's memo for the step; a value known to be [batch, units] (full_shaped) is not broadcast.
        The closures are pure, so a value is never wrong, at worst computed twice."""
        ops, units, compiler = self.ops, self.units, ExprCompiler(self.ops)
        uses, before = _uses(self.model)
        env: dict[str, Compiled] = {port: _memo(read) if before[port] > 1 else read for port, read in ports.items()}
        full = set(ports)
        for key, name, _ in self.states:
            env[name] = _state_read(key)
            full.add(name)
        for name, *_ in self.params:
            env[name] = _param_read(private, name)
        out: Closure | None = None
        for (kind, target, _, surrogate, slope), equation in zip(self.equations, self.model.equations, strict=True):
            compiled = compiler.compile(equation.expr, lambda node: env[_name(node)])
            known = full_shaped(equation.expr, lambda node: _name(node) in full)
            if kind == "spike":
                compiled = _spike(compiled if known and callable(compiled) else _broadcast(compiled, units, ops),
                                  surrogate, slope, ops)
            elif kind != "let" and not known:
                compiled = _broadcast(compiled, units, ops)
            if kind == "out":
                assert callable(compiled)  # not known to be full: broadcast above
                out = compiled
                continue
            (full.add if kind != "let" or known else full.discard)(target)
            env[target] = _memo(compiled) if uses.pop(0) > 1 else compiled
        writes = []
        for key, name, _ in self.states:
            write = env[name]
            assert callable(write)  # a state's value is read or broadcast, never a bare constant
            writes.append((key, write))
        assert out is not None  # every model has an output (E804)
        return _with_writes(out, writes)

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


def _uses(model: NeuronModel) -> tuple[list[int], Counter[str]]:
    """How often each value is read per step: for each equation but the output, in order, the value it assigns
    (by the later equations until the name is assigned again, and, a state's last value, by the new state); and
    each name read before any equation assigns it (a port, a state, a param).  A subexpression that appears twice
    is read twice, though the IR may hold it as one object under two parents."""
    counts: list[int] = []
    before: Counter[str] = Counter()
    latest: dict[str, int] = {}  # a name -> the equation (its index in counts) that assigned it last
    for equation in model.equations:
        for name, n in fold(equation.expr, _reads).items():
            if name in latest:
                counts[latest[name]] += n
            else:
                before[name] += n
        if equation.kind != "out":
            latest[equation.target] = len(counts)
            counts.append(0)
    for variable in model.states:
        if variable.name in latest:
            counts[latest[variable.name]] += 1
    return counts, before


def _reads(node: Expr, kids: tuple[Counter[str], ...]) -> Counter[str]:
    """The names an expression reads, each as often as it is read (fold: a repeated child counts each time)."""
    if isinstance(node, Var):
        return Counter({node.name: 1})
    return sum(kids, Counter())


def _name(node: Var | Ref) -> str:
    assert isinstance(node, Var)  # a neuron's equations read names, never signals
    return node.name


def _state_read(key: str) -> Closure:
    return lambda fr: fr.state[key]


def _param_read(private: str, name: str) -> Closure:
    return lambda fr: fr.prepared[private][name]


def _broadcast(compiled: Compiled, units: int, ops: Ops) -> Closure:
    """A value as [batch, units] (a constant, a param, a single unit broadcast)."""
    broadcast = ops.broadcast
    if callable(compiled):
        run = compiled
        return lambda fr: broadcast(run(fr), (fr.batch, units))
    return lambda fr: broadcast(compiled, (fr.batch, units))


def _spike(compiled: Closure, surrogate: str, slope: float, ops: Ops) -> Closure:
    spike = ops.spike
    return lambda fr: spike(compiled(fr), surrogate, slope)


def _memo(compiled: Compiled) -> Compiled:
    """A value read more than once, computed once per step into the frame's memo (under a key of its own)."""
    if not callable(compiled):
        return compiled
    key, run = object(), compiled

    def memo(fr: Any) -> Array:
        found = fr.memo
        if key not in found:
            found[key] = run(fr)
        return found[key]
    return memo


def _with_writes(out: Closure, writes: list[tuple[str, Closure]]) -> Closure:
    """The output's closure, writing the new states into the frame's new state first (if the model has any)."""
    if not writes:
        return out
    if len(writes) == 1:
        ((key, write),) = writes

        def one(fr: Any) -> Array:
            fr.new_state[key] = write(fr)
            return out(fr)
        return one

    def run(fr: Any) -> Array:
        new_state = fr.new_state
        for key, write in writes:
            new_state[key] = write(fr)
        return out(fr)
    return run


def _leaf(node: Var | Ref) -> Any:
    """A neuron's name read from the step's values."""
    assert isinstance(node, Var)
    name = node.name
    return lambda values: values[name]  # (not operator.itemgetter, which torch.compile cannot trace)
