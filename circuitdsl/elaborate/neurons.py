"""Neuron definitions -> `ir.NeuronModel`: equations as expression trees, every term's unit checked.

A model is elaborated once per distinct set of argument values; the arguments are folded into the
equations as constants, so each IR model is self-contained (its name lists the values, e.g.
`SquareWave(period=60, phase=0.5)`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Literal

import numpy as np

from circuitdsl import ast, units
from circuitdsl.elaborate import init_rules
from circuitdsl.elaborate.evaluate import Abort, Evaluator, Poisoned, dim_of, format_shape, magnitude, touch
from circuitdsl.elaborate.integrators import NotExact, NotLinear, Ode, derivative_equations, update_equations
from circuitdsl.elaborate.scope import Binding, Scope
from circuitdsl.elaborate.values import ENUMS, WITH_BOOLS, Definition, InitRule, Signal, Symbol, choices, describe
from circuitdsl.errors import CircuitError, Problem, Reporter, Span, did_you_mean
from circuitdsl.functions import SURROGATES
from circuitdsl.ir import model as ir
from circuitdsl.ir.arrays import Array
from circuitdsl.ir.units import class_groups
from circuitdsl.units import DIMENSIONLESS, Dim, Quantity, format_dim

_CIRCUIT_ONLY = {
    ast.PopulationDecl: "population", ast.Projection: "projection",
    ast.For: "for", ast.OutputDecl: "output", ast.InputProjection: "projection",
}


def bind_arguments(evaluator: Evaluator, definition: Definition, given: Iterable[tuple[ast.Ident | None, object, Span]],
                   scope: Scope, call_span: Span, extra: set[str] = frozenset()) -> dict[str, object]:  # type: ignore[assignment]
    """Match call arguments to a definition's typed parameters (keywords or positions); check each type.

    Keywords named in `extra` (a circuit's params and inputs) are passed back untouched under their names.
    """
    params = definition.node.params
    names = [p.name.name for p in params]
    bound: dict[str, object] = {}
    spans: dict[str, Span] = {}
    position = 0
    for ident, value, span in given:
        if ident is None:
            if position >= len(params):
                raise evaluator.fail("E203", f"'{definition.name}' takes {len(params)} positional argument"
                                             f"{'s' * (len(params) != 1)}", span)
            name = names[position]
            position += 1
        else:
            name = ident.name
            if name not in names and name not in extra:
                raise evaluator.fail("E203", f"'{definition.name}' has no argument '{name}'", ident.span,
                                     [did_you_mean(name, [*names, *extra]),
                                      f"arguments: {', '.join(names) or 'none'}"])
        if name in bound:
            raise evaluator.fail("E202", f"argument '{name}' is given twice", span)
        bound[name] = value
        spans[name] = span
    result: dict[str, object] = {}
    for param in params:
        name = param.name.name
        if name in bound:
            value, span = bound[name], spans[name]
        elif param.default is not None:
            value = evaluator.eval(param.default, scope, expect=param.type.name)
            span = param.default.span
        else:
            raise evaluator.fail("E204", f"'{definition.name}' needs the argument '{name}'", call_span,
                                 [f"declared at {param.span}"])
        result[name] = check_type(evaluator, value, param, span)
        scope.define(name, result[name], param.name.span, "argument", evaluator.reporter)
        scope.names[name].used = True
    for name, value in bound.items():
        if name not in result:
            result[name] = value
    return result


_PLAIN_TYPES = {"int", "float", "bool", "str"}


def check_type(evaluator: Evaluator, value: object, param: ast.ArgDecl, span: Span) -> object:
    """The value converted to the declared type (an int is a float where a float is wanted), or an E301/E401."""
    kind = param.type.name
    if kind in ENUMS:
        if isinstance(value, str) and value in ENUMS[kind]:
            return Symbol(value, kind)
        if kind in WITH_BOOLS and isinstance(value, bool):
            return value
        if isinstance(value, Symbol) and value.enum == kind:
            return value
        raise evaluator.fail("E301", f"'{param.name.name}' must be one of {', '.join(choices(kind))}, "
                                     f"not {describe(value)}", span)
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif kind == "float":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, Quantity):
            raise evaluator.fail("E401", f"'{param.name.name}' is dimensionless, got {format_dim(value.dim)}", span)
    elif kind == "bool":
        if isinstance(value, bool):
            return value
    elif kind == "str":
        if isinstance(value, str):
            return value
    elif kind == "init":  # an init rule as an argument: `init: init = constant(1)`, `--arg init=uniform(0, 1)`
        if isinstance(value, InitRule):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return InitRule("constant", (float(value),))
    elif kind in units.DIMENSIONS or isinstance(param.type, ast.Dimension):
        expected = evaluator.dimension(param.type)
        if isinstance(value, int | float | Quantity) and not isinstance(value, bool):
            if dim_of(value) != expected:
                raise evaluator.fail("E401", f"'{param.name.name}' must be a {format_dim(expected)}, got "
                                             f"{format_dim(dim_of(value))}", span, [_unit_hint(format_dim(expected))])
            return value
    else:
        types = sorted([*_PLAIN_TYPES, "init", *ENUMS, *units.DIMENSIONS])
        raise evaluator.fail("E201", f"unknown type '{kind}'", param.type.span,
                             [did_you_mean(kind, types), f"types: {', '.join(types)}"])
    raise evaluator.fail("E301", f"'{param.name.name}' must be {_article(kind)}, not {describe(value)}", span)


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"


def _unit_hint(kind: str) -> str:
    examples = {"time": "10 ms", "voltage": "-65 mV", "current": "1 nA", "conductance": "5 nS",
                "capacitance": "100 pF", "frequency": "5 Hz", "resistance": "100 Mohm", "length": "10 um",
                "concentration": "1 mM", "charge": "1 pC", "area": "100 um**2", "temperature": "279.45 K",
                "voltage / time": "10 mV/ms", "conductance / area": "120 mS/cm**2",
                "capacitance / area": "1 uF/cm**2", "current / area": "10 uA/cm**2"}
    if kind == "dimensionless":
        return "write a plain number"
    return f"for example {examples[kind]}" if kind in examples else "write a number with units of that dimension"


def plain(value: object) -> ir.Value:
    """A bound argument as an IR value (quantities in canonical units, enum members by name)."""
    if isinstance(value, Symbol):
        return value.name
    if isinstance(value, Quantity):
        return value.value
    if isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, InitRule):
        return init_rules.text(value)
    raise TypeError(f"not a plain value: {value!r}")


def model_key(name: str, args: dict[str, ir.Value]) -> str:
    if not args:
        return name
    return f"{name}(" + ", ".join(f"{k}={_format_value(v)}" for k, v in args.items()) + ")"


def _format_value(value: ir.Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, str) else str(value)


class NeuronBuilder:
    """Elaborates one neuron definition with one set of argument values."""

    def __init__(self, evaluator: Evaluator, definition: Definition, args: dict[str, object], key: str) -> None:
        self.evaluator = evaluator
        self.reporter: Reporter = evaluator.reporter
        self.definition = definition
        self.args = args
        self.key = key
        self.scope = Scope(parent=definition.module.scope)
        self.states: dict[str, ir.StateVar] = {}
        self.state_dims: dict[str, Dim] = {}
        self.inputs: list[ir.NeuronInput] = []
        self.params: list[ir.NeuronParam] = []
        self.equations: list[ir.Equation] = []
        self.output_dim: Dim | None = None
        self.output_shape: tuple[ir.Axis, ...] = ()
        self.input_dims: dict[str, Dim] = {}
        self.state_shapes: dict[str, tuple[ir.Axis, ...]] = {}
        self.out_failed = False  # `out = ...` failed (and was reported): no E804 on top of that
        self.method = "euler"  # the integrator: the argument `method: solver`, if the model has one
        self.step = 0.0  # dt, in ms
        self.odes: list[Ode] = []
        self.ode_span: tuple[int, int] = (0, 0)  # equations from the first dx/dt's to the last one's
        self.writes: list[tuple[int, str, Span]] = []  # (equation index, state, span) of each state update

    def build(self) -> ir.NeuronModel:
        for name, value in self.args.items():
            self.scope.define(name, value, None, "argument", self.reporter)
            self.scope.names[name].used = True
        method = self.scope.lookup("method")
        if method is not None and isinstance(method.value, Symbol) and method.value.enum == "solver":
            self.method = method.value.name
        body = self.definition.node.body
        if not any(isinstance(s, ast.InputDecl) for s in body):
            self._input("in", DIMENSIONLESS, None)
        self._run(body)
        self._integrate()
        if self.output_dim is None:
            if self.out_failed:
                raise Abort()
            self.reporter.error("E804", f"neuron '{self.definition.name}' never sets its output", self.definition.node.name.span,
                                ["add a line such as `out = v`"])
            raise Abort()
        return ir.NeuronModel(name=self.key, definition=self.definition.name, doc=self.definition.node.doc,
                              args={k: plain(v) for k, v in self.args.items()}, inputs=self.inputs,
                              states=list(self.states.values()), equations=self.equations,
                              output_dim=format_dim(self.output_dim), params=self.params,
                              output_shape=list(self.output_shape),
                              span=self.definition.node.span)

    def _input(self, name: str, dim: Dim, span: Span | None, shape: tuple[ir.Axis, ...] = ()) -> None:
        self.inputs.append(ir.NeuronInput(name=name, dim=format_dim(dim), shape=list(shape)))
        self.input_dims[name] = dim
        self.scope.define(name, Signal(ir.Var(name=name), shape, dim), span, "input", self.reporter)
        self.scope.names[name].used = True

    def _axes(self, shape: tuple[ast.Axis, ...] | None, span: Span, what: str, most: int = 1) -> tuple[ir.Axis, ...]:
        """The internal axes of a port, state or param (`input context[segment = 5]`): named, constant sizes >= 1."""
        if shape is None:
            return ()
        if len(shape) > most or any(axis.name is None for axis in shape):
            raise self.evaluator.fail("E302", f"a neuron {what} has at most {most} named ax{'es' if most > 1 else 'is'}",
                                      span, [f"{what} x[segment = 4]"])
        axes = []
        for axis in shape:
            size = self.evaluator.constant(axis.size, self.scope, f"the size of a {what}'s axis")
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                raise self.evaluator.fail("E301", f"the size of a {what}'s axis is a whole number >= 1, not {size!r}",
                                          axis.span)
            axes.append(ir.Axis(name=axis.name.name, size=size))  # type: ignore[union-attr]
        limits = self.evaluator.limits
        if (n := math.prod(a.size for a in axes)) > limits.private_weights:  # before any init is computed
            raise self.evaluator.fail("E706", f"a neuron {what} of {n} values per unit is "
                                      f"{limits.over('private_weights')}", span, [limits.hint("private_weights")])
        if len({a.name for a in axes}) < len(axes):
            raise self.evaluator.fail("E302", f"a neuron {what}'s axes need different names", span)
        return tuple(axes)

    def _run(self, statements: Iterable[ast.Stmt]) -> None:
        for statement in statements:
            try:
                self._statement(statement)
            except (Abort, CircuitError):
                names = [p.name for p in statement.ports] if isinstance(statement, ast.InputDecl) else \
                    [statement.name] if isinstance(statement, ast.StateDecl | ast.Spike | ast.Let) else \
                    list(statement.names) if isinstance(statement, ast.ParamDecl) else []
                for ident in names:  # later uses of what the statement declared fail quietly
                    self.scope.names.setdefault(ident.name, Binding(Poisoned(), ident.span, "poisoned", True))
                if isinstance(statement, ast.Assign) and isinstance(statement.target, ast.Name) \
                        and statement.target.id == "out":
                    self.out_failed = True

    def _statement(self, s: ast.Stmt) -> None:
        if isinstance(s, ast.Docstring):
            return
        if type(s) in _CIRCUIT_ONLY:
            raise self.evaluator.fail("E005", f"'{_CIRCUIT_ONLY[type(s)]}' belongs in a circuit, not in a neuron",
                                      s.span)
        if isinstance(s, ast.InputDecl):
            for port in s.ports:
                if port.value is not None:
                    raise self.evaluator.fail("E005", "a neuron input is a name with an optional shape and "
                                                      "dimension", port.span, [f"input {port.name.name}: current"])
                self._input(port.name.name, self.evaluator.dimension(port.dim), port.name.span,
                            self._axes(port.shape, port.span, "port"))
        elif isinstance(s, ast.StateDecl):
            self._state(s)
        elif isinstance(s, ast.ParamDecl):
            self._param(s)
        elif isinstance(s, ast.Let):
            value = self._value(s.value, vector=True)
            self.scope.define(s.name.name, Signal(ir.Var(name=s.name.name), value.shape, value.dim), s.name.span,
                              "let", self.reporter)
            self.equations.append(ir.Equation(kind="let", target=s.name.name, expr=value.expr))
        elif isinstance(s, ast.Assign):
            self._assign(s)
        elif isinstance(s, ast.Spike):
            self._spike(s)
        elif isinstance(s, ast.If):
            cond = self.evaluator.eval(s.cond, self.scope)
            if not isinstance(cond, bool):
                raise self.evaluator.fail("E803", "an 'if' in a neuron tests its arguments, not its state",
                                          s.cond.span, ["for a condition on the state, write where(c, a, b)"])
            touch(s.orelse if cond else s.body, self.scope)
            self._run(s.body if cond else (s.orelse or ()))

    def _value(self, node: ast.Expr, vector: bool = False) -> Signal:
        """An equation's right side: one value per unit, or with `vector` at most one internal axis."""
        value = self.evaluator.eval(node, self.scope)
        if isinstance(value, Signal):
            if len(value.shape) > int(vector):
                hint = "a matrix param is read through matvec(W, x)" if value.shape[1:] else \
                    "reduce the axis: reduce_absmax, reduce_max or reduce_sum"
                raise self.evaluator.fail("E302", "a neuron equation works on one unit; this has the shape "
                                                  f"{format_shape(value.shape)}", node.span, [hint])
            return value
        if isinstance(value, int | float | Quantity):
            self.evaluator.runtime_number(magnitude(value), node.span)
            return Signal(ir.Const(value=magnitude(value)), (), dim_of(value))
        raise self.evaluator.fail("E301", f"expected a number, got {describe(value)}", node.span)

    def _param(self, s: ast.ParamDecl) -> None:
        """`param w[hidden = 8, memory = 4] : free = uniform(-0.5, 0.5)`: private weights of every unit."""
        sign = self.evaluator.constant(s.sign, self.scope, "a sign class", expect="sign")
        if not isinstance(sign, Symbol) or sign.name not in ("free", "fixed"):
            raise self.evaluator.fail("E301", f"a neuron's param is free (learnt) or fixed, not {describe(sign)}",
                                      s.sign.span, ["param w[hidden = 8] : free = uniform(-0.1, 0.1)"])
        shared: object = False  # true, false or the symbol `class`, checked as it is read
        for option in s.options:
            if option.name is None or option.name.name != "shared":
                raise self.evaluator.fail("E203", "a neuron's param takes one option, `shared`", option.span)
            shared = self.evaluator.constant(option.value, self.scope, "the option 'shared'", expect="unit_share")
            if not isinstance(shared, bool | Symbol) or isinstance(shared, Symbol) and shared.enum != "unit_share":
                raise self.evaluator.fail("E301", f"shared is true (one value for the whole population), false or "
                                                  f"class (one per cell class), not {describe(shared)}",
                                          option.value.span)
        if len(s.names) != 1:
            raise self.evaluator.fail("E006", "declare a neuron's params one per line", s.span)
        ident = s.names[0]
        shape = self._axes(s.shape, s.span, "param", most=2)
        init = self._init(s.init, shape, s.span)
        self.params.append(ir.NeuronParam(name=ident.name, shape=list(shape), init=init,
                                          trainable=sign.name == "free", shared=shared is True,
                                          by_class=isinstance(shared, Symbol)))
        self.scope.define(ident.name, Signal(ir.Var(name=ident.name), shape, DIMENSIONLESS), ident.span, "state",
                          self.reporter)
        self.scope.names[ident.name].used = True

    def _init(self, node: ast.Expr | None, shape: tuple[ir.Axis, ...], span: Span) -> ir.Init:
        """A neuron param's init for one unit: a number, uniform/normal(...), or logspace(low, high) over its
        last axis (e.g. time constants spread from low to high)."""
        if node is None:
            raise self.evaluator.fail("E204", "a neuron's param needs its init", span,
                                      ["param w[hidden = 8] : free = uniform(-0.1, 0.1)"])
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "logspace":
            bounds = [self.evaluator.constant(a.value, self.scope, "an argument of logspace()") for a in node.args]
            if len(bounds) != 2 or not all(isinstance(b, int | float) and not isinstance(b, bool) and b > 0
                                           for b in bounds):
                raise self.evaluator.fail("E301", "logspace(low, high) takes two positive numbers", node.span)
            if not shape:
                raise self.evaluator.fail("E302", "logspace() spreads values over a param's axis; this has none",
                                          node.span)
            line = np.geomspace(float(bounds[0]), float(bounds[1]), shape[-1].size)  # type: ignore[arg-type]
            values = np.broadcast_to(line, tuple(a.size for a in shape))
            return ir.Init(rule="data", args=[], values=Array(values.astype(np.float64).ravel()))
        value = self.evaluator.constant(node, self.scope, "an initial value")
        if isinstance(value, InitRule) and not value.fixed and value.dim == DIMENSIONLESS and value.values is None:
            return ir.Init(rule=value.rule, args=list(value.args))  # type: ignore[arg-type]
        if isinstance(value, int | float) and not isinstance(value, bool):
            return ir.Init(rule="constant", args=[float(value)])
        raise self.evaluator.fail("E301", f"a neuron's param starts from a plain number, uniform(...), normal(...) "
                                          f"or logspace(...), not {describe(value)}", node.span)

    def _state(self, s: ast.StateDecl) -> None:
        init = self.evaluator.constant(s.init, self.scope, f"the initial value of '{s.name.name}'")
        if not isinstance(init, int | float | Quantity):
            raise self.evaluator.fail("E301", f"a state starts from a number, not {describe(init)}", s.init.span)
        dim = dim_of(init)
        shape = self._axes(s.shape, s.span, "state")
        self.state_dims[s.name.name] = dim
        self.state_shapes[s.name.name] = shape
        self.states[s.name.name] = ir.StateVar(name=s.name.name, init=ir.Const(value=magnitude(init)),
                                               dim=format_dim(dim), shape=list(shape))
        self.scope.define(s.name.name, Signal(ir.Var(name=s.name.name), shape, dim), s.name.span, "state",
                          self.reporter)
        self.scope.names[s.name.name].used = True
        self.evaluator.runtime_number(magnitude(init), s.init.span)  # after the state is declared: no E201 later

    def _assign(self, s: ast.Assign) -> None:
        target = s.target
        if (isinstance(target, ast.Binary) and target.op == "/" and isinstance(target.left, ast.Name)
                and isinstance(target.right, ast.Name)):
            self._ode(s, target.left, target.right)
            return
        if not isinstance(target, ast.Name):
            raise self.evaluator.fail("E006", "a neuron assigns to a state, to `out`, or writes dv/dt = ...",
                                      target.span)
        value = self._value(s.value, vector=True)
        if target.id == "out":
            if self.output_dim is not None:
                raise self.evaluator.fail("E202", "the output `out` is set twice", target.span)
            self.output_dim = value.dim
            self.output_shape = value.shape
            self.equations.append(ir.Equation(kind="out", target="out", expr=value.expr))
            return
        state = self._state_named(target.id, target.span)
        shape = self.state_shapes[target.id]
        if value.shape and [(a.name, a.size) for a in value.shape] != [(a.name, a.size) for a in shape]:
            raise self.evaluator.fail("E302", f"'{target.id}' has the shape {format_shape(shape)} but the right side "
                                              f"{format_shape(value.shape)}", s.value.span)
        if value.dim != self.state_dims[target.id]:
            raise self.evaluator.fail("E401", f"'{target.id}' is a {state.dim} but the right side is a "
                                              f"{format_dim(value.dim)}", s.value.span)
        self.writes.append((len(self.equations), target.id, s.span))
        self.equations.append(ir.Equation(kind="update", target=target.id, expr=value.expr))

    def _state_named(self, name: str, span: Span) -> ir.StateVar:
        if name not in self.states:
            raise self.evaluator.fail("E201", f"unknown state '{name}'", span,
                                      [did_you_mean(name, self.states), f"declare it first: state {name} = 0"])
        return self.states[name]

    def _ode(self, s: ast.Assign, numerator: ast.Name, denominator: ast.Name) -> None:
        if not numerator.id.startswith("d") or denominator.id != "dt" or len(numerator.id) < 2:
            raise self.evaluator.fail("E006", "a differential equation is written dx/dt = ...", s.target.span)
        name = numerator.id[1:]
        self._state_named(name, numerator.span)
        dt = self.scope.lookup("dt")
        if dt is None or dim_of(dt.value) != units.DIMENSIONS["time"]:
            raise self.evaluator.fail("E804", f"neuron '{self.definition.name}' has dx/dt equations but no "
                                              "`dt: time` argument", s.target.span,
                                      ["add `dt: time = 1 ms` to its arguments"])
        value = self._value(s.value)
        expected = units.div(self.state_dims[name], units.DIMENSIONS["time"])
        if value.dim != expected:
            raise self.evaluator.fail("E401", f"d{name}/dt is a rate ({format_dim(self.state_dims[name])} per time), "
                                              f"but the right side is {format_dim(value.dim)}", s.value.span,
                                      ["a rate divides by a time constant, e.g. (-v + in) / tau with tau in ms"])
        if any(o.state == name for o in self.odes):
            raise self.evaluator.fail("E202", f"d{name}/dt is written twice", s.target.span)
        self.step = float(magnitude(dt.value))
        ode = Ode(name, value.expr, s.value.span)
        try:
            derivative = derivative_equations(self.method, ode, self.equations)
        except NotLinear:
            raise self.evaluator.fail("E804", f"exponential_euler needs d{name}/dt linear in {name} (A * {name} + B, "
                                              f"with A and B free of {name}); this one is not", s.value.span,
                                      ["use method = rk4 or euler for this neuron"]) from None
        if not self.odes:
            self.ode_span = (len(self.equations), 0)
        self.odes.append(ode)
        self.equations.extend(derivative)
        self.ode_span = (self.ode_span[0], len(self.equations))

    def _integrate(self) -> None:
        """Assign every state's new value after the last dx/dt: all derivatives were evaluated where written,
        from one set of values, so no state may be updated between the first dx/dt and the last."""
        if not self.odes:
            return
        first, last = self.ode_span
        for index, state, span in self.writes:
            if first <= index < last:
                self.reporter.error("E804", f"'{state}' is updated between the dx/dt equations, which are "
                                            "integrated together from one state", span,
                                    ["move the update above the first dx/dt or below the last"])
                raise Abort()
        if self.method == "euler" and len(self.odes) == 1:  # nothing to keep apart: x = x + dt * rate in place
            ode = self.odes[0]
            self.equations[first] = ir.Equation(kind="ode", target=ode.state, expr=ir.Binary(
                op="+", left=ir.Var(name=ode.state), right=ir.Binary(op="*", left=ir.Const(value=self.step),
                                                                     right=ode.rate)))
            return
        try:
            self.equations[last:last] = update_equations(self.method, self.odes, self.equations[:last], self.step,
                                                         set(self.states))
        except NotExact as error:
            self.reporter.error("E804", f"method = exact needs a linear system with constant coefficients: "
                                        f"{error.reason}", error.ode.span, ["use method = rk4 or exponential_euler"])
            raise Abort() from None

    def _spike(self, s: ast.Spike) -> None:
        cond = s.condition
        if not (isinstance(cond, ast.Binary) and cond.op in (">", ">=")):
            raise self.evaluator.fail("E006", "a spike condition compares: spike s = v > threshold", cond.span)
        left, right = self._value(cond.left), self._value(cond.right)
        if left.dim != right.dim:
            raise self.evaluator.fail("E401", f"cannot compare {format_dim(left.dim)} with {format_dim(right.dim)}",
                                      cond.span)
        surrogate, surrogate_args = "atan", dict(SURROGATES["atan"])
        for option in s.options:
            if option.name is None or option.name.name != "surrogate":
                raise self.evaluator.fail("E203", "a spike takes one option, `surrogate`", option.span)
            surrogate, surrogate_args = self._surrogate(option.value)
        diff = ir.Binary(op="-", left=left.expr, right=right.expr)
        if s.name.name in self.states:
            self.writes.append((len(self.equations), s.name.name, s.span))
        self.equations.append(ir.Equation(kind="spike", target=s.name.name, expr=diff, surrogate=surrogate,
                                          surrogate_args=surrogate_args))
        if s.name.name in self.states:
            if self.state_dims[s.name.name] != DIMENSIONLESS:
                raise self.evaluator.fail("E401", f"spike '{s.name.name}' is 0 or 1, but its state has a unit",
                                          s.name.span)
        else:
            self.scope.define(s.name.name, Signal(ir.Var(name=s.name.name), (), DIMENSIONLESS), s.name.span, "let",
                              self.reporter)

    def _surrogate(self, node: ast.Expr) -> tuple[str, dict[str, float]]:
        func, args = (node.func, node.args) if isinstance(node, ast.Call) else (node, ())
        value = self.evaluator.eval(func, self.scope, expect="surrogate")
        if not isinstance(value, Symbol) or value.name not in SURROGATES:
            raise self.evaluator.fail("E201", "unknown surrogate gradient", func.span,
                                      [f"surrogates: {', '.join(SURROGATES)}"])
        params = dict(SURROGATES[value.name])
        for arg in args:
            if arg.name is None or arg.name.name not in params:
                raise self.evaluator.fail("E203", f"surrogate '{value.name}' takes "
                                                  f"{', '.join(params) or 'no arguments'}", arg.span)
            number = self.evaluator.constant(arg.value, self.scope, "a surrogate parameter")
            if not isinstance(number, int | float) or isinstance(number, bool):
                raise self.evaluator.fail("E301", "a surrogate parameter is a plain number", arg.value.span)
            params[arg.name.name] = float(number)
        return value.name, params


def unit_parameters(population: str, units: int, model: ir.NeuronModel, classes: list[str] | None,
                    span: Span | None) -> list[ir.Parameter]:
    """A population's own copies of its neuron model's params: `<population>.<name>`, shape [units, *axes]
    ([*axes] where the param is shared by all units, [classes, *axes] where it is shared per cell class)."""
    parameters = []
    for param in model.params:
        if param.by_class and classes is None:
            raise Problem("E505", f"param '{param.name}' of {model.name} is shared per class, but the units of "
                                  f"'{population}' have no classes",
                          ("a population made `from` a connectome has them (its neurons' classes)",))
        copies = 1 if param.shared else len(class_groups(classes)[1]) if param.by_class and classes else units
        init = param.init
        if init.values is not None and copies > 1:  # one unit's values (logspace), the same for every unit
            init = ir.Init(rule="data", args=[], values=Array(np.tile(init.values.data, copies)))
        shape = [*([] if param.shared else [copies]), *(a.size for a in param.shape)]
        share: Literal["population", "class", "unit"] = (
            "population" if param.shared else "class" if param.by_class else "unit")
        parameters.append(ir.Parameter(name=f"{population}.{param.name}", shape=shape,
                                       sign="free" if param.trainable else "fixed", enforce="none", init=init,
                                       trainable=param.trainable, share=share, dim=param.dim, span=span))
    return parameters
