"""Circuit definitions -> the network: instantiate, run the statements in order, collect the IR.

Sub-circuits are expanded in place with qualified names (`seg[2].Bd`); their inputs are bound at
instantiation to signals of the parent (`Segment(drive = clamp(q[i-1], 0, 1))`), and a parent's param
passed by name (`Segment(prop = prop)`) replaces the child's own declaration of it.  Independent mistakes
are all recorded; a statement that fails is skipped and the names it declared are poisoned.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import get_args

import networkx as nx
import numpy as np

from circuitdsl import ast, units
from circuitdsl.bulk import gc_paused
from circuitdsl.elaborate import connectivity, delays, init_rules, operators, select, shared
from circuitdsl.elaborate import connectome as data
from circuitdsl.elaborate.evaluate import (
    BUILTINS,
    Abort,
    CircuitCall,
    Evaluator,
    Poisoned,
    dim_of,
    format_shape,
    magnitude,
    touch,
)
from circuitdsl.elaborate.limits import FLOAT32_MAX, Limits, fits_float32
from circuitdsl.elaborate.neurons import NeuronBuilder, bind_arguments, model_key, plain, unit_parameters
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Binding, Scope
from circuitdsl.elaborate.values import (
    Builtin,
    DataCall,
    Definition,
    InitRule,
    InstanceArray,
    InstanceValue,
    Namespace,
    ParamHandle,
    PopulationRef,
    Rule,
    Signal,
    Symbol,
    Unbound,
    describe,
)
from circuitdsl.errors import CircuitError, Problem, Reporter, Span, did_you_mean
from circuitdsl.ir import arrays as ir_arrays
from circuitdsl.ir import model as ir
from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.operators import bias_shape
from circuitdsl.ir.validate import expression_size
from circuitdsl.units import DIMENSIONLESS, Dim, Quantity, format_dim

_NEURON_ONLY = {ast.StateDecl: "state", ast.Spike: "spike"}
_PROJECTION_OPTIONS = ("weight", "delay", "sparsity")
# the IR's words for a param's settings, looked up from the enum symbols the declaration was checked against
_SIGNS: dict[str, ir.Sign] = {word: word for word in get_args(ir.Sign)}
_ENFORCES: dict[str, ir.Enforce] = {word: word for word in get_args(ir.Enforce)}
_SHARES: dict[str, ir.Share] = {word: word for word in get_args(ir.Share)}
_SIGNS_OF_ARROWS = {"->": ("excitatory", "free", "fixed"), "-|": ("inhibitory", "fixed"),
                    "<->": ("excitatory", "free", "fixed")}


@dataclass
class _Output:
    name: str
    shape: tuple[ir.Axis, ...]
    dim: Dim
    span: Span
    pieces: list[tuple[tuple[select.AxisPick, ...], Signal, Span]] = field(default_factory=list)
    failed: bool = False  # an assignment to it failed (and was reported): no E306 on top of that


@dataclass
class _Pending:
    """A projection whose weight offsets are known only once every use of its param is seen."""

    fields: dict[str, object]
    param: ParamHandle
    use: int


@dataclass
class _Frame:
    """The state of one circuit instance while its body runs."""

    definition: Definition
    prefix: str
    scope: Scope
    top: bool
    bound_inputs: dict[str, Signal]
    bound_params: dict[str, ParamHandle]
    outputs: dict[str, _Output] = field(default_factory=dict)
    inputs: dict[str, ir.Port] = field(default_factory=dict)
    populations: dict[str, PopulationRef] = field(default_factory=dict)
    children: list[ir.Instance] = field(default_factory=list)


class CircuitBuilder:
    """Builds one `ir.CircuitIR` from a top circuit definition and its arguments."""

    def __init__(self, reporter: Reporter, limits: Limits, sandbox: Sandbox | None = None) -> None:
        self.reporter = reporter
        self.limits = limits
        self.output_dims: dict[str, Dim] = {}
        self.evaluator = Evaluator(reporter, self.output_dims, limits, sandbox)
        self.neurons: dict[str, ir.NeuronModel] = {}
        self.model_inputs: dict[str, dict[str, Dim]] = {}
        self.populations: list[ir.Population] = []
        self.params: list[ParamHandle] = []
        self.pending: list[_Pending | ir.Projection] = []  # ir.Projection: a connectome's, complete
        self.data_parameters: list[ir.Parameter] = []
        self.sources: list[ir.DataSource] = []
        self.projection_ids: set[str] = set()
        self.id_counts: dict[str, int] = {}  # projections so far between the same source(s), arrow and target
        self.winners: dict[str, int] = {}  # per neuron model, the k of its kwta(): its populations need k units
        self.active: list[Definition] = []
        self.counts = {"units": 0, "synapses": 0, "statements": 0, "instances": 0}
        self.let_names: dict[int, tuple[ir.Expr, str]] = {}  # a let's signal object -> (it, the let's name)

    # ---- entry -------------------------------------------------------------------------------------
    def build(self, definition: Definition, given: Iterable[tuple[ast.Ident | None, object, Span]],
              span: Span) -> ir.CircuitIR:
        with gc_paused():  # halves the time of a large circuit (circuitdsl/bulk.py)
            return self._build(definition, given, span)

    def _build(self, definition: Definition, given: Iterable[tuple[ast.Ident | None, object, Span]],
               span: Span) -> ir.CircuitIR:
        scope = Scope(parent=definition.module.scope)
        try:
            args = bind_arguments(self.evaluator, definition, given, scope, span)
        except Abort:
            raise CircuitError(self.reporter.errors) from None
        frame = _Frame(definition, "", scope, True, {}, {})
        self.active.append(definition)
        self._run(frame, definition.node.body, scope)
        self.active.pop()
        self._check_unused(frame)
        outputs = self._finish_outputs(frame)
        self.reporter.raise_if_errors()
        hierarchy = ir.Instance(name="", circuit=definition.name, args={k: plain(v) for k, v in args.items()},
                                doc=definition.node.doc, inputs=list(frame.inputs),
                                outputs=list(frame.outputs), populations=[p.name for p in frame.populations.values()],
                                children=frame.children, span=definition.node.span)
        try:
            parameters, projections = self._finish_weights()
        except Abort:  # an init rule that does not fit its param's shape
            raise CircuitError(self.reporter.errors) from None
        self._check_parameters(parameters)
        self._check_expressions(projections, outputs)
        self.reporter.raise_if_errors()
        signals = shared.share(_mark_recurrent(projections, self.populations), outputs, hierarchy,
                               {key: name for key, (_, name) in self.let_names.items()})
        return ir.CircuitIR(name=definition.name, doc=definition.node.doc, args=hierarchy.args,
                            inputs=list(frame.inputs.values()), outputs=signals.outputs, populations=self.populations,
                            projections=signals.projections, parameters=parameters,
                            neurons=self.neurons, hierarchy=signals.hierarchy, files=sorted(self.reporter.sources),
                            sources=self.sources, shared=signals.table, shared_names=signals.names)

    def _check_parameters(self, parameters: list[ir.Parameter]) -> None:
        """E706 when the parameters together pass the limit (before a backend allocates them); E801 when an
        init value would not fit a float32 tensor."""
        total = 0
        for p in parameters:
            total += p.size
            if total > self.limits.parameters:
                self.reporter.error("E706", f"with '{p.name}' ({p.size} values) the parameters hold {total} values, "
                                    f"{self.limits.over('parameters')}", p.span, [self.limits.hint("parameters")])
                return
            if any(isinstance(a, float | int) and not fits_float32(a) for a in p.init.args):
                self.reporter.error("E801", f"'{p.name}' starts from a value that does not fit a float32 tensor "
                                    f"(|x| <= {FLOAT32_MAX:.4g})", p.span,
                                    ["the backends compute in float32 by default"])

    def _check_expressions(self, projections: list[ir.Projection], outputs: list[ir.Output]) -> None:
        """E708 for an expression of more nodes than the limit (shared subexpressions counted once)."""
        roots = [(p.source, p.span) for p in projections]
        roots += [(piece.expr, o.span) for o in outputs for piece in o.pieces]
        for expr, span in roots:
            if (n := expression_size(expr)) > self.limits.expression_size:
                self.reporter.error("E708", f"this expression has {n} nodes, {self.limits.over('expression_size')}",
                                    span, [self.limits.hint("expression_size")])
                return

    # ---- statements --------------------------------------------------------------------------------
    def _run(self, frame: _Frame, statements: Iterable[ast.Stmt], scope: Scope) -> None:
        for statement in statements:
            self.counts["statements"] += 1
            if self.counts["statements"] > self.limits.statements:
                self.reporter.error("E704", f"this is statement {self.counts['statements']} executed, "
                                    f"{self.limits.over('statements')}", statement.span,
                                    [self.limits.hint("statements")])
                raise CircuitError(self.reporter.errors)
            try:
                self._statement(frame, statement, scope)
            except Abort:
                self._poison(statement, frame.scope)

    def _poison(self, statement: ast.Stmt, scope: Scope) -> None:
        names: list[ast.Ident] = []
        if isinstance(statement, ast.PopulationDecl):
            names = [p.name for p in statement.names]
        elif isinstance(statement, ast.ParamDecl):
            names = list(statement.names)
        elif isinstance(statement, ast.InputDecl | ast.OutputDecl):
            names = [p.name for p in statement.ports]
        elif isinstance(statement, ast.Let):
            names = [statement.name]
        elif isinstance(statement, ast.Assign):
            base = statement.target.value if isinstance(statement.target, ast.Subscript) else statement.target
            binding = scope.names.get(base.id) if isinstance(base, ast.Name) else None
            if binding is not None and isinstance(binding.value, _Output):
                binding.value.failed = True
            elif isinstance(statement.target, ast.Name):  # a failed instance
                names = [ast.Ident(statement.target.span, statement.target.id)]
        for ident in names:
            binding = scope.names.setdefault(ident.name, _poisoned(ident.span))
            if isinstance(binding.value, _Output):
                binding.value.failed = True

    def _statement(self, frame: _Frame, s: ast.Stmt, scope: Scope) -> None:
        ev = self.evaluator
        if isinstance(s, ast.Docstring):
            return
        if type(s) in _NEURON_ONLY:
            raise ev.fail("E005", f"'{_NEURON_ONLY[type(s)]}' belongs in a neuron, not in a circuit", s.span)
        if isinstance(s, ast.Let):
            value = ev.eval(s.value, scope)
            if isinstance(value, CircuitCall):
                raise ev.fail("E005", "instantiate a circuit with `name = Circuit(...)`, not with let", s.span)
            if isinstance(value, DataCall):
                value = data.build(ev, value, scope)
            if isinstance(value, Signal):  # named for diagrams, should it be stored as a shared entry
                self.let_names.setdefault(id(value.expr), (value.expr, s.name.name))
            scope.define(s.name.name, value, s.name.span, "let", self.reporter)
        elif isinstance(s, ast.InputDecl):
            for port in s.ports:
                self._input(frame, port, scope)
        elif isinstance(s, ast.InputProjection):
            self._input(frame, s.port, scope)
            # read the port back by name: marks it used (no W201) and, in an instance, raises E307 if unbound
            source = ev.eval(ast.Name(s.port.name.span, s.port.name.name), scope)
            self._project(frame, scope, source, s.port.span, s.arrow, s.target, s.options, s.span)
        elif isinstance(s, ast.OutputDecl):
            for port in s.ports:
                self._output(frame, port, scope)
        elif isinstance(s, ast.ParamDecl):
            self._param(frame, s, scope)
        elif isinstance(s, ast.PopulationDecl):
            self._population(frame, s, scope)
        elif isinstance(s, ast.Projection):
            for pair in s.pairs:
                try:
                    source = ev.eval(pair.source, scope)
                    self._project(frame, scope, source, pair.source.span, pair.arrow, pair.target, s.options, pair.span)
                except Abort:
                    continue
        elif isinstance(s, ast.Assign):
            self._assign(frame, s, scope)
        elif isinstance(s, ast.For):
            self._for(frame, s, scope)
        elif isinstance(s, ast.If):
            cond = ev.boolean(s.cond, scope, "an 'if' condition")
            touch(s.orelse if cond else s.body, scope)
            self._run(frame, s.body if cond else (s.orelse or ()), Scope(parent=scope))

    def _for(self, frame: _Frame, s: ast.For, scope: Scope) -> None:
        start = self.evaluator.integer(s.start, scope, "the start of a range")
        stop = self.evaluator.integer(s.stop, scope, "the end of a range")
        if stop - start > self.limits.loop_iterations:
            raise self.evaluator.fail("E701", f"this loop runs {stop - start} times, "
                                      f"{self.limits.over('loop_iterations')}", s.span,
                                      [self.limits.hint("loop_iterations")])
        for i in range(start, stop):
            inner = Scope(parent=scope)
            inner.define(s.var.name, i, s.var.span, "loop", self.reporter)
            inner.names[s.var.name].used = True
            self._run(frame, s.body, inner)

    # ---- shapes ------------------------------------------------------------------------------------
    def _shape(self, axes: tuple[ast.Axis, ...] | None, scope: Scope) -> tuple[ir.Axis, ...]:
        out: list[ir.Axis] = []
        for axis in axes or ():
            if axis.name is None:
                raise self.evaluator.fail("E304", "an axis needs a name", axis.span,
                                          ["write it as name = size, e.g. B[joint = 5]"])
            value = self.evaluator.constant(axis.size, scope, f"the size of axis '{axis.name.name}'")
            labels, domain = None, None
            if isinstance(value, operators.Grid):
                domain, value = value.domain, value.size
            if isinstance(value, frozenset):
                if not all(isinstance(v, Symbol | str) for v in value):
                    raise self.evaluator.fail("E301", "unit names are names or strings", axis.size.span)
                labels = [v.name if isinstance(v, Symbol) else v for v in value]
                labels = sorted(labels)
                size = len(labels)
            else:
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                if not isinstance(value, int) or isinstance(value, bool):
                    raise self.evaluator.fail("E301", f"an axis size is a whole number, not {describe(value)}",
                                              axis.size.span)
                size = value
            if size < 1:
                raise self.evaluator.fail("E304", f"axis '{axis.name.name}' has size {size}; it needs at least 1",
                                          axis.size.span)
            if size > self.limits.units:
                raise self.evaluator.fail("E702", f"axis '{axis.name.name}' has {size} units, "
                                          f"{self.limits.over('units')}", axis.size.span, [self.limits.hint("units")])
            if any(a.name == axis.name.name for a in out):
                raise self.evaluator.fail("E304", f"axis '{axis.name.name}' appears twice", axis.name.span)
            out.append(ir.Axis(name=axis.name.name, size=size, labels=labels, domain=domain))
        return tuple(out)

    def _size(self, shape: tuple[ir.Axis, ...], span: Span) -> int:
        n = _count(shape)
        if self.counts["units"] + n > self.limits.units:
            raise self.evaluator.fail("E702", f"{n} more units make {self.counts['units'] + n}, "
                                      f"{self.limits.over('units')}", span, [self.limits.hint("units")])
        return n

    # ---- ports -------------------------------------------------------------------------------------
    def _input(self, frame: _Frame, port: ast.Port, scope: Scope) -> Signal:
        ev = self.evaluator
        if port.value is not None:
            raise ev.fail("E005", "an input gets its signal from outside; only outputs are assigned", port.span)
        shape = self._shape(port.shape, scope)
        dim = self.evaluator.dimension(port.dim)
        name = port.name.name
        if name in frame.bound_inputs:
            signal = frame.bound_inputs[name]
            if signal.shape and [(a.name, a.size) for a in signal.shape] != [(a.name, a.size) for a in shape]:
                raise ev.fail("E302", f"input '{name}' of '{frame.prefix[:-1]}' is {format_shape(shape)} but is "
                                      f"given {format_shape(signal.shape)}", port.span)
            if signal.dim != dim:
                raise ev.fail("E401", f"input '{name}' is {format_dim(dim)} but is given {format_dim(signal.dim)}",
                              port.span)
            value: object = signal
        elif frame.top:
            self._size(shape, port.span)
            if name not in frame.scope.names:  # a second `input q` is E202 below and must not reshape the first
                frame.inputs[name] = ir.Port(name=name, shape=list(shape), dim=format_dim(dim), span=port.span)
                ev.ref_shapes[name] = shape
            value = Signal(ir.Ref(source=name), shape, dim)
        else:
            value = Unbound(name, frame.prefix[:-1])
        frame.scope.define(name, value, port.name.span, "input", self.reporter)
        return value if isinstance(value, Signal) else Signal(ir.Const(value=0), shape, dim)

    def _output(self, frame: _Frame, port: ast.Port, scope: Scope) -> None:
        name = port.name.name
        output = _Output(name, self._shape(port.shape, scope), self.evaluator.dimension(port.dim), port.span)
        if not frame.scope.define(name, output, port.name.span, "output", self.reporter):
            raise Abort()
        frame.scope.names[name].used = True
        frame.outputs[name] = output
        if port.value is not None:
            self._fill_output(output, select.full(output.shape), self.evaluator.eval(port.value, scope),
                              port.value.span)

    def _fill_output(self, output: _Output, picks: tuple[select.AxisPick, ...], value: object, span: Span) -> None:
        signal = self.evaluator.signal(value, span)
        shape = select.result_shape(output.shape, picks)
        if signal.shape and [(a.name, a.size) for a in signal.shape] != [(a.name, a.size) for a in shape]:
            raise self.evaluator.fail("E302", f"output '{output.name}' here is {format_shape(shape)} but the signal "
                                              f"is {format_shape(signal.shape)}", span)
        if signal.dim != output.dim:
            raise self.evaluator.fail("E401", f"output '{output.name}' is {format_dim(output.dim)} but the signal is "
                                              f"{format_dim(signal.dim)}", span)
        output.pieces.append((picks, signal, span))

    def _finish_outputs(self, frame: _Frame) -> list[ir.Output]:
        """Check each output is assigned exactly once per unit; return them as IR (top level only)."""
        result = []
        for output in frame.outputs.values():
            n = _count(output.shape)
            counts = np.zeros(n, dtype=np.int64)
            for picks, _, span in output.pieces:
                units_ = select.flat_units(output.shape, picks)
                if counts[units_].any():
                    self.reporter.error("E202", f"units of output '{output.name}' are assigned twice", span)
                np.add.at(counts, units_, 1)
            if not counts.all() and not output.failed:
                missing = int(np.argmin(counts))
                self.reporter.error("E306", f"output '{output.name}' is not assigned everywhere", output.span,
                                    [(f"{int((counts == 0).sum())} of {n} units are missing, the first at flat "
                                     f"index {missing}")])
            pieces = [ir.OutputPiece(select=_list(select.to_ir(output.shape, picks)), expr=signal.expr)
                      for picks, signal, _ in output.pieces]
            result.append(ir.Output(name=frame.prefix + output.name, shape=list(output.shape),
                                    dim=format_dim(output.dim), pieces=pieces, span=output.span))
        return result

    # ---- params ------------------------------------------------------------------------------------
    def _param(self, frame: _Frame, s: ast.ParamDecl, scope: Scope) -> None:
        ev = self.evaluator
        if s.shape is not None:
            raise ev.fail("E005", "a param with axes belongs in a neuron (private weights of each unit)", s.span,
                          ["a circuit's param takes its shape from the projections using it: `shared = ...`"])
        sign = ev.constant(s.sign, scope, "a sign class", expect="sign")
        if not isinstance(sign, Symbol) or sign.enum != "sign":
            raise ev.fail("E301", f"the sign class is excitatory, inhibitory, free or fixed, not {describe(sign)}",
                          s.sign.span)
        options = self._options(s.options, scope, {"shared": "share", "enforce": "enforce", "trainable": None},
                                "param")
        init = self._init(s.init, scope, sign.name, s.span)
        share = options.get("shared", Symbol("all", "share"))
        if isinstance(share, bool):
            share = Symbol("all" if share else "edge", "share")
        if not isinstance(share, Symbol) or share.enum != "share":
            raise ev.fail("E505", f"shared is true, false or one of all, population, projection, edge; "
                                  f"not {describe(share)}", _option_span(s.options, "shared", s.span))
        default_enforce = "clamp" if sign.name in ("excitatory", "inhibitory") else "none"
        enforce = options.get("enforce", Symbol(default_enforce, "enforce"))
        if not isinstance(enforce, Symbol) or enforce.enum != "enforce":
            raise ev.fail("E301", f"enforce is clamp, softplus, abs or none, not {describe(enforce)}",
                          _option_span(s.options, "enforce", s.span))
        trainable = options.get("trainable", sign.name != "fixed")
        if not isinstance(trainable, bool):
            raise ev.fail("E301", f"trainable is true or false, not {describe(trainable)}",
                          _option_span(s.options, "trainable", s.span))
        self._check_param(sign.name, enforce.name, init, trainable, s)
        for ident in s.names:
            name = ident.name
            if name in frame.bound_params:
                handle = frame.bound_params[name]
                if handle.sign != sign.name:
                    raise ev.fail("E501", f"'{name}' is declared {sign.name} here but the parent passes the "
                                          f"{handle.sign} param '{handle.name}'", s.sign.span)
            else:
                handle = ParamHandle(frame.prefix + name, _SIGNS[sign.name], _ENFORCES[enforce.name], init,
                                     trainable, _SHARES[share.name], ident.span)
                self.params.append(handle)
            frame.scope.define(name, handle, ident.span, "param", self.reporter)

    def _check_param(self, sign: str, enforce: str, init: InitRule, trainable: bool, s: ast.ParamDecl) -> None:
        ev = self.evaluator
        if sign in ("free", "fixed") and enforce != "none":
            raise ev.fail("E503", f"a {sign} parameter has no sign to enforce (enforce = {enforce})",
                          _option_span(s.options, "enforce", s.span), ["drop `enforce`, or give a sign class"])
        if sign == "fixed" and trainable:
            raise ev.fail("E504", "a fixed parameter cannot be trainable", _option_span(s.options, "trainable",
                                                                                       s.span))
        span = s.init.span if s.init is not None else s.span
        if enforce != "none":
            _check_init_sign(ev, init, sign, enforce, span)

    def _init(self, node: ast.Expr | None, scope: Scope, sign: str, span: Span) -> InitRule:
        if node is None:
            default = {"excitatory": ("uniform", (0.0, 1.0)), "inhibitory": ("uniform", (-1.0, 0.0)),
                       "free": ("uniform", (-1.0, 1.0))}
            if sign not in default:
                raise self.evaluator.fail("E204", "a fixed parameter needs its value", span,
                                          ["e.g. param g : fixed = 1"])
            rule, args = default[sign]
            return InitRule(rule, args)
        value = self.evaluator.constant(node, scope, "an initial value")
        if isinstance(value, InitRule):
            if value.fixed:
                raise self.evaluator.fail("E301", "fixed(...) is for weights on projections; declare the sign "
                                                  "class `fixed` instead", node.span)
            return value
        if isinstance(value, int | float | Quantity) and not isinstance(value, bool):
            return InitRule("constant", (float(magnitude(value)),), dim_of(value))
        raise self.evaluator.fail("E301", f"an initial value is a number or an init rule, not {describe(value)}",
                                  node.span, ["e.g. = 1, = uniform(0, 1), = normal(0, 0.1)"])

    def _options(self, options: tuple[ast.Arg, ...], scope: Scope, allowed: dict[str, str | None],
                 what: str) -> dict[str, object]:
        result: dict[str, object] = {}
        for option in options:
            if option.name is None:
                raise self.evaluator.fail("E006", f"a {what} option is written name = value", option.span,
                                          [f"options: {', '.join(allowed)}"])
            name = option.name.name
            if name not in allowed:
                raise self.evaluator.fail("E203", f"unknown {what} option '{name}'", option.name.span,
                                          [did_you_mean(name, allowed), f"options: {', '.join(allowed)}"])
            if name in result:
                raise self.evaluator.fail("E202", f"option '{name}' is given twice", option.name.span)
            result[name] = self.evaluator.constant(option.value, scope, f"the option '{name}'", expect=allowed[name])
        return result

    # ---- populations -------------------------------------------------------------------------------
    def _population(self, frame: _Frame, s: ast.PopulationDecl, scope: Scope) -> None:
        ev = self.evaluator
        model = self._model(s.model, scope)
        net = self._data_source(s, scope)
        for pop in s.names:
            try:
                shape = self._shape(pop.shape, scope) if net is None else data.population_shape(net)
                self._size(shape, pop.span)
                if self.winners.get(model.name, 0) > _count(shape):  # topk(k) of fewer units fails at run time
                    raise ev.fail("E302", f"{model.name} keeps the k = {self.winners[model.name]} largest outputs, "
                                  f"but '{pop.name.name}' has {_count(shape)} units", s.model.span)
            except Abort:
                frame.scope.names.setdefault(pop.name.name, _poisoned(pop.name.span))
                continue
            name = frame.prefix + pop.name.name
            ref = PopulationRef(name, shape, None, model.name)
            if not frame.scope.define(pop.name.name, ref, pop.name.span, "population", self.reporter):
                continue
            self.counts["units"] += self._size(shape, pop.span)
            ev.ref_shapes[name] = shape
            frame.populations[pop.name.name] = ref
            self.populations.append(ir.Population(name=name, shape=list(shape), model=model.name,
                                                  args=model.args, instance=frame.prefix[:-1], span=pop.span))
            classes = shape[0].classes if len(shape) == 1 else None
            try:
                self.data_parameters.extend(unit_parameters(name, _count(shape), model, classes, pop.span))
            except Problem as error:
                raise ev.fail(error.code, error.message, pop.span, list(error.notes)) from None
            if net is not None:
                self._wire_data(frame, net, name, model, s)

    def _data_source(self, s: ast.PopulationDecl, scope: Scope) -> data.Connectome | None:
        """The connectome of `population N : Model from net`, checked: one population, no shape, used once."""
        if s.source is None:
            return None
        ev = self.evaluator
        net = ev.eval(s.source, scope)
        if not isinstance(net, data.Connectome):
            raise ev.fail("E206", f"a population is made from a connectome, not from {describe(net)}", s.source.span,
                          ["net = celegans.connectome(\"Cook2019Herm\", neurons = {AVA, AVB}, sign = c302)"])
        if len(s.names) != 1 or s.names[0].shape is not None:
            raise ev.fail("E304", "a population from a connectome is one name without a shape", s.span,
                          ["its units are the selected neurons: population N : Leaky from net"])
        if net.populated:
            raise ev.fail("E202", f"this connectome already made the population '{net.populated[0]}'", s.source.span)
        return net

    def _wire_data(self, frame: _Frame, net: data.Connectome, name: str, model: ir.NeuronModel,
                   s: ast.PopulationDecl) -> None:
        """A connectome's synapses: one projection and one parameter per kind, onto its population."""
        synapses = sum(len(kind.synapses.pre) for kind in net.kinds)
        if self.counts["synapses"] + synapses > self.limits.synapses:
            raise self.evaluator.fail("E703", f"{synapses} more synapses make {self.counts['synapses'] + synapses}, "
                                      f"{self.limits.over('synapses')}", s.span, [self.limits.hint("synapses")])
        self.counts["synapses"] += synapses
        net.populated.append(name)
        frame.scope.names[s.names[0].name.name].used = True  # its own synapses read it
        port = model.inputs[0].name
        ids = {kind.name: self._projection_id(frame, ir.Ref(source=name), "<->" if kind.name == "electrical" else "->",
                                              name) for kind in net.kinds}
        parameters, projections = data.weights(net, name, ids, port, self.model_inputs[model.name][port],
                                               self.output_dims.get(model.name, DIMENSIONLESS), net.span,
                                               self.reporter)
        self.data_parameters.extend(parameters)
        self.pending.extend(projections)
        label = s.source.id if isinstance(s.source, ast.Name) else name
        self.sources.append(data.data_source(net, label, name))

    def _model(self, ref: ast.ModelRef, scope: Scope) -> ir.NeuronModel:
        ev = self.evaluator
        head = self._dotted(ref.path, scope)
        if not isinstance(head, Definition) or head.kind != "neuron":
            raise ev.fail("E206", f"'{ref.path[-1].name}' is {describe(head)}, not a neuron model", ref.span)
        given = [(a.name, ev.eval(a.value, scope, expect=_arg_type(head, a, i)), a.span)
                 for i, a in enumerate(ref.args or ())]
        args = bind_arguments(ev, head, given, Scope(parent=head.module.scope), ref.span)
        key = model_key(head.name, {k: plain(v) for k, v in args.items()})
        if key in self.neurons and self.neurons[key].span != head.node.span:  # a namesake from another file
            key = f"{head.module.name}:{key}"
        if key not in self.neurons:
            builder = NeuronBuilder(ev, head, args, key)
            ev.winners = 0
            self.neurons[key] = builder.build()
            self.winners[key] = ev.winners
            self.output_dims[key] = builder.output_dim or DIMENSIONLESS
            ev.output_axes[key] = tuple(self.neurons[key].output_shape)
            self.model_inputs[key] = builder.input_dims
        return self.neurons[key]

    def _dotted(self, path: tuple[ast.Ident, ...], scope: Scope) -> object:
        """`Graded` or `lib.Graded`: a name, then members of imported modules."""
        if len(path) == 1 and scope.lookup(path[0].name) is None and path[0].name not in BUILTINS:
            models = [n for n in scope.visible_names() if (b := scope.lookup(n)) is not None
                      and isinstance(b.value, Definition) and b.value.kind == "neuron"]
            raise self.evaluator.fail("E207", f"unknown neuron model '{path[0].name}'", path[0].span,
                                      [did_you_mean(path[0].name, models)])
        value = self.evaluator.eval(ast.Name(path[0].span, path[0].name), scope)
        for ident in path[1:]:
            if not isinstance(value, Namespace):
                raise self.evaluator.fail("E206", f"{describe(value)} has no members", ident.span)
            binding = value.module.scope.names.get(ident.name)
            if binding is None:
                raise self.evaluator.fail("E207", f"'{value.name}' has no definition '{ident.name}'", ident.span,
                                          [did_you_mean(ident.name, value.module.scope.names)])
            value = binding.value
        return value

    # ---- assignment: instances and outputs ----------------------------------------------------------
    def _assign(self, frame: _Frame, s: ast.Assign, scope: Scope) -> None:
        ev = self.evaluator
        target = s.target
        value = ev.eval(s.value, scope)
        if isinstance(value, CircuitCall):
            self._instantiate(frame, target, value, scope)
            return
        if isinstance(value, DataCall):
            if not isinstance(target, ast.Name):
                raise ev.fail("E006", "a connectome is named `name = celegans.connectome(...)`", target.span)
            frame.scope.define(target.id, data.build(ev, value, scope), target.span, "let", self.reporter)
            return
        base, indices = (target.value, target.indices) if isinstance(target, ast.Subscript) else (target, None)
        if isinstance(base, ast.Name):
            binding = frame.scope.names.get(base.id)
            if binding is not None and isinstance(binding.value, _Output):
                output = binding.value
                picks = select.full(output.shape)
                if indices is not None:
                    picks = ev.index_picks(ast.Subscript(target.span, base, indices), scope, output.shape, picks)
                self._fill_output(output, picks, value, s.value.span)
                return
        if isinstance(base, ast.Member):
            raise ev.fail("E005", "connect a sub-circuit's input where it is instantiated", target.span,
                          ["e.g. seg[i] = Segment(drive = clamp(q[i - 1], 0, 1))"])
        outputs = [n for n, b in frame.scope.names.items() if isinstance(b.value, _Output)]
        name = base.id if isinstance(base, ast.Name) else "this"
        raise ev.fail("E201", f"'{name}' is not an output of '{frame.definition.name}'", target.span,
                      [did_you_mean(name, outputs), "declare a constant with `let`, or an output with `output`"])

    def _instantiate(self, frame: _Frame, target: ast.Expr, call: CircuitCall, scope: Scope) -> None:
        ev = self.evaluator
        if isinstance(target, ast.Name):
            array, index, local = None, None, target.id
        elif isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and len(target.indices) == 1 \
                and not isinstance(target.indices[0], ast.Slice | ast.AxisIndex):
            array = target.value.id
            index = ev.integer(target.indices[0], scope, "an instance index")
            local = f"{array}[{index}]"
        else:
            raise ev.fail("E006", "an instance is named `name` or `name[i]`", target.span)
        definition = call.definition
        if definition in self.active:
            chain = " -> ".join(d.name for d in [*self.active[self.active.index(definition):], definition])
            raise ev.fail("E601", f"circuit '{definition.name}' instantiates itself", call.span, [f"chain: {chain}"])
        self.counts["instances"] += 1
        if self.counts["instances"] > self.limits.instances:
            raise ev.fail("E704", f"this is instance {self.counts['instances']}, {self.limits.over('instances')}",
                          call.span, [self.limits.hint("instances")])
        if len(self.active) >= self.limits.depth:
            raise ev.fail("E704", f"this instance is nested {len(self.active)} deep, {self.limits.over('depth')}",
                          call.span, [self.limits.hint("depth")])
        holder = frame.scope.names.get(array) if array is not None else None
        if array is not None:
            if holder is None:
                frame.scope.define(array, InstanceArray(array), target.span, "instance", self.reporter)
                holder = frame.scope.names[array]
            if not isinstance(holder.value, InstanceArray):
                raise ev.fail("E202", f"'{array}' is already defined as {describe(holder.value)}", target.span)
            if index in holder.value.items:
                raise ev.fail("E202", f"'{local}' is instantiated twice", target.span)
        elif frame.scope.names.get(local) is not None:
            raise ev.fail("E202", f"'{local}' is already defined", target.span)
        params, inputs = _declared_params_and_inputs(definition.node.body)
        child_scope = Scope(parent=definition.module.scope)
        args = bind_arguments(ev, definition, call.args, child_scope, call.span, extra=params | inputs)
        bound_params: dict[str, ParamHandle] = {}
        bound_inputs: dict[str, Signal] = {}
        spans = {ident.name: span for ident, _, span in call.args if ident is not None}
        for name in [n for n in args if n in params | inputs]:
            value = args.pop(name)
            if name in params:
                if not isinstance(value, ParamHandle):
                    raise ev.fail("E301", f"'{name}' is a param of '{definition.name}'; pass a param, not "
                                          f"{describe(value)}", spans[name])
                bound_params[name] = value
                child_scope.names.pop(name, None)
            else:
                bound_inputs[name] = ev.signal(value, spans[name])
        prefix = f"{frame.prefix}{local}."
        child = _Frame(definition, prefix, Scope(parent=child_scope), False, bound_inputs, bound_params)
        self.active.append(definition)
        self._run(child, definition.node.body, child.scope)
        self.active.pop()
        self._check_unused(child)
        self._finish_outputs(child)
        outputs = {name: o.pieces[0][1] for name, o in child.outputs.items()
                   if len(o.pieces) == 1 and select.is_full(o.shape, o.pieces[0][0])}
        record = ir.Instance(name=prefix[:-1], circuit=definition.name, args={k: plain(v) for k, v in args.items()},
                             doc=definition.node.doc, array=array, index=index, inputs=list(bound_inputs),
                             outputs=list(child.outputs), populations=[p.name for p in child.populations.values()],
                             children=child.children, bound=_wires(bound_inputs), exported=_wires(outputs),
                             span=call.span)
        frame.children.append(record)
        instance = InstanceValue(prefix[:-1], definition, outputs, bound_inputs, child.populations)
        if array is not None and holder is not None and isinstance(holder.value, InstanceArray):
            holder.value.items[index] = instance  # type: ignore[index]
        else:
            frame.scope.define(local, instance, target.span, "instance", self.reporter)

    # ---- projections -------------------------------------------------------------------------------
    def _project(self, frame: _Frame, scope: Scope, source_value: object, source_span: Span, arrow: str,
                 target_node: ast.Expr, options: tuple[ast.Arg, ...], span: Span) -> None:
        ev = self.evaluator
        if len(self.projection_ids) >= self.limits.projections:
            raise ev.fail("E703", f"this is projection {len(self.projection_ids) + 1}, "
                          f"{self.limits.over('projections')}", span, [self.limits.hint("projections")])
        source = ev.signal(source_value, source_span)
        target = ev.eval(target_node, scope)
        if not isinstance(target, PopulationRef):
            raise ev.fail("E206", f"a projection ends at a population, not at {describe(target)}", target_node.span)
        target_shape = select.result_shape(target.shape, select.from_ir(target.shape, target.select))
        inputs = self.model_inputs[target.model]
        if not inputs:  # a model whose inputs failed to build (reported), or one without inputs
            raise ev.fail("E205", f"neuron model '{target.model}' has no input to project into", target_node.span)
        port = target.port if target.port in inputs or target.port != "in" else next(iter(inputs))  # first input
        if port not in inputs:
            raise ev.fail("E205", f"neuron model '{target.model}' has no input '{target.port}'", target_node.span,
                          [did_you_mean(target.port, inputs), f"inputs: {', '.join(inputs)}"])
        target_shape += tuple(next(i.shape for i in self.neurons[target.model].inputs if i.name == port))
        options, sparsity = self._sparsity(options, scope)
        if arrow == "<->" and not (isinstance(source_value, PopulationRef) and source_value.port == "in"):
            raise ev.fail("E206", f"a gap junction joins two populations, not {describe(source_value)}", source_span,
                          ["electrical coupling needs a membrane on both sides; use '->' from an input or signal"])
        operator = operators.operator_option(options)
        if operator is not None:
            spec = operators.parse(ev, operator, options, scope, source.shape, target_shape, span)
            if arrow != "->" or units.mul(DIMENSIONLESS, source.dim) != inputs[port]:
                raise ev.fail("E301", f"an operator projection is written '->' between fields of one dimension, "
                                      f"into input '{port}' of {target.model}", span)
            self._operator(frame, spec, source, target, target_shape, port, span)
            return
        rule, weight_node, delay = self._projection_options(options, scope, span)
        if isinstance(delay, delays.Learnable) and arrow == "<->":
            raise ev.fail("E301", "a gap junction has no delay to learn", span,
                          ["learnable delays are for chemical projections, '->' or '-|'"])
        if rule is None:
            if source.size > 1 and len(target_shape) and _count(target_shape) > 1:
                raise ev.fail("E305", f"say how {format_shape(source.shape)} connects to {format_shape(target_shape)}",
                              span, ["add a rule: one_to_one, all_to_all, pairs(...) or random(p = ..., seed = ...)"])
            rule = Rule("all_to_all")
        try:
            wiring = connectivity.wire(rule, source.shape, target_shape, self.limits, self.counts["synapses"])
            self_loops = 0
            same = isinstance(source.expr, ir.Ref) and source.expr.source == target.name \
                and source.expr.select == _list(target.select)
            if arrow == "<->" and same:
                wiring, self_loops = connectivity.symmetric(wiring)
        except Problem as error:  # the caret goes under the rule (`pairs([[0.5, 1]])`), not the whole projection
            where = next((o.value.span for o in options if o.name is None), span)
            raise ev.fail(error.code, error.message, where, list(error.notes)) from None
        if self_loops:
            self.reporter.warn("W501", f"{self_loops} self-junction{'s' * (self_loops > 1)} dropped", span)
        self.counts["synapses"] += wiring.synapses
        projection_id = self._projection_id(frame, source.expr, arrow, target.name)
        handle = self._weight(frame, weight_node, scope, arrow, projection_id, wiring, source, span)
        if sparsity:
            if not handle.anonymous or wiring.connectivity.rule != "all_to_all":
                raise ev.fail("E305", "weight sparsity needs a dense projection with its own weights", span,
                              ["x -> h : dense, sparsity = 0.5 (weight = a number or an init rule, not a param)"])
            handle.mask = sparsity_mask(projection_id, _count(target_shape), source.size, sparsity)
        weight_dim = handle.init.dim
        port_dim = inputs[port]
        if units.mul(weight_dim, source.dim) != port_dim:
            raise ev.fail("E401", f"weight × source is {format_dim(units.mul(weight_dim, source.dim))} but input "
                                  f"'{port}' of {target.model} takes {format_dim(port_dim)}", span,
                          ["give the weight a unit, e.g. param w : excitatory = 1 nA"])
        fields: dict[str, object] = {
            "id": projection_id, "kind": "electrical" if arrow == "<->" else "chemical", "arrow": arrow,
            "source": source.expr, "source_shape": list(source.shape), "target": target.name,
            "target_select": _list(target.select), "target_shape": list(target_shape), "port": port,
            "connectivity": wiring.connectivity, "synapses": wiring.synapses, "delay": delay,
            "instance": frame.prefix[:-1], "span": span
        }
        if isinstance(delay, delays.Learnable):
            learned, sigma = delays.delay_params(projection_id, delay, span)
            learned.uses.append((projection_id, wiring.synapses, wiring.natural_shape, target.name))
            sigma.uses.append((projection_id, 1, (), target.name))
            self.params += [learned, sigma]
            fields.update(delay=delay.max, learnable_delay=delays.ir_delay(learned, sigma, delay))
        handle.uses.append((projection_id, wiring.synapses, wiring.natural_shape, target.name))
        self.pending.append(_Pending(fields, handle, len(handle.uses) - 1))

    def _sparsity(self, options: tuple[ast.Arg, ...], scope: Scope) -> tuple[tuple[ast.Arg, ...], float]:
        """The `sparsity = f` option (the fraction of each target unit's weights fixed at zero) and the others."""
        found = [o for o in options if o.name is not None and o.name.name == "sparsity"]
        if not found:
            return options, 0.0
        if len(found) > 1:
            raise self.evaluator.fail("E202", "option 'sparsity' is given twice", found[1].span)
        value = self.evaluator.constant(found[0].value, scope, "a weight sparsity")
        if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
            raise self.evaluator.fail("E301", f"a weight sparsity is a fraction in [0, 1), not {value!r}",
                                      found[0].value.span)
        return tuple(o for o in options if o is not found[0]), float(value)

    def _operator(self, frame: _Frame, spec: operators.OperatorSpec, source: Signal, target: PopulationRef,
                  target_shape: tuple[ir.Axis, ...], port: str, span: Span) -> None:
        """Record an operator projection: its weights (and function-valued bias) as params of its own."""
        projection_id = self._projection_id(frame, source.expr, "->", target.name)
        weights = ParamHandle(f"{projection_id}.weight", "free", "none", spec.init, True, "edge", span,
                              anonymous=True)
        weights.uses.append((projection_id, spec.weights, (spec.weights,), target.name))
        self.params.append(weights)
        operator = spec.operator
        if spec.bias:
            bias = ParamHandle(f"{projection_id}.bias", "free", "none", InitRule("constant", (0.0,)),
                               True, "edge", span, anonymous=True)  # starts as the zero function
            shape = bias_shape(spec.operator, spec.channels_out)
            bias.uses.append((projection_id, math.prod(shape), shape, target.name))
            self.params.append(bias)
            operator = operator.model_copy(update={"bias": bias.name})
        args: dict[str, ir.Value] = {}
        if operator.modes:  # as written: `modes = 12`, or `modes = [12, 12]` on two axes
            args["modes"] = operator.modes[0] if len(operator.modes) == 1 else f"[{', '.join(map(str, operator.modes))}]"
        if operator.kind == "multigrid":
            args = {"levels": operator.levels, "smoothing": "/".join(map(str, operator.smoothing))}
        fields: dict[str, object] = {
            "id": projection_id, "kind": "chemical", "arrow": "->", "source": source.expr,
            "source_shape": list(source.shape), "target": target.name, "target_select": _list(target.select),
            "target_shape": list(target_shape), "port": port,
            "connectivity": ir.Connectivity(rule=operator.kind, args=args), "synapses": 0,
            "operator": operator, "instance": frame.prefix[:-1], "span": span
        }
        self.pending.append(_Pending(fields, weights, 0))

    def _projection_options(self, options: tuple[ast.Arg, ...], scope: Scope,
                            span: Span) -> tuple[Rule | None, ast.Expr | None, int | delays.Learnable]:
        ev = self.evaluator
        rule: Rule | None = None
        weight: ast.Expr | None = None
        delay: int | delays.Learnable = 0
        seen: set[str] = set()
        for option in options:
            if option.name is None:
                value = ev.eval(option.value, scope)
                if isinstance(value, Builtin) and value.kind == "rule":
                    value = Rule(value.name)
                if not isinstance(value, Rule):
                    raise ev.fail("E305", f"expected a connectivity rule, got {describe(value)}", option.span,
                                  [f"rules: {', '.join(connectivity.RULES)}; options: weight = ..., delay = ..."])
                if rule is not None:
                    raise ev.fail("E305", "a projection has one connectivity rule", option.span)
                rule = value
                continue
            name = option.name.name
            if name not in _PROJECTION_OPTIONS:
                raise ev.fail("E203", f"unknown projection option '{name}'", option.name.span,
                              [did_you_mean(name, _PROJECTION_OPTIONS), "options: weight, delay"])
            if name in seen:
                raise ev.fail("E202", f"option '{name}' is given twice", option.name.span)
            seen.add(name)
            if name == "weight":
                weight = option.value
            elif delays.is_learnable(option.value):
                delay = delays.learnable(ev, option.value, scope, self.limits.delay)  # type: ignore[arg-type]
            else:
                value = ev.constant(option.value, scope, "a delay")
                if isinstance(value, Quantity):
                    raise ev.fail("E401", "a delay counts time steps; write a whole number", option.value.span)
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ev.fail("E301", f"a delay is a whole number of steps >= 0, not {value!r}",
                                  option.value.span)
                if value > self.limits.delay:
                    raise ev.fail("E705", f"a delay of {value} steps is {self.limits.over('delay')}",
                                  option.value.span, [self.limits.hint("delay")])
                delay = value
        return rule, weight, delay

    def _projection_id(self, frame: _Frame, source: ir.Expr, arrow: str, target: str) -> str:
        names = list(dict.fromkeys(signal_sources(source))) or ["const"]
        base = f"{'+'.join(names)} {arrow} {target}"
        k = self.id_counts[base] = self.id_counts.get(base, 0) + 1  # counted: 10^5 repeats must not rescan
        candidate = base if k == 1 else f"{base} #{k}"
        self.projection_ids.add(candidate)
        return candidate

    def _weight(self, frame: _Frame, node: ast.Expr | None, scope: Scope, arrow: str, projection_id: str,
                wiring: connectivity.Wiring, source: Signal, span: Span) -> ParamHandle:
        ev = self.evaluator
        value = ev.eval(node, scope) if node is not None else None
        if isinstance(value, ParamHandle):
            if value.sign not in _SIGNS_OF_ARROWS[arrow] or (value.sign == "fixed" and not _fixed_fits(value, arrow)):
                kind = {"->": "an excitatory or free", "-|": "an inhibitory", "<->": "a non-negative"}[arrow]
                fix = {"excitatory": "->", "inhibitory": "-|"}.get(value.sign)
                raise ev.fail("E501", f"'{arrow}' needs {kind} weight, but '{value.name}' is {value.sign}",
                              node.span if node else span, [f"write '{fix}'" if fix else None])
            return value
        name = f"{projection_id}.weight"
        signs: dict[str, ir.Sign] = {"->": "free", "-|": "inhibitory", "<->": "excitatory"}
        sign = signs[arrow]
        where = node.span if node is not None else span
        if value is None:
            fan_in = _fan_in(wiring, source)
            k = 1.0 / float(np.sqrt(fan_in))
            low, high = {"free": (-k, k), "inhibitory": (-k, 0.0), "excitatory": (0.0, k)}[sign]
            init = InitRule("uniform", (low, high))
        elif isinstance(value, InitRule):
            init = value
            if value.fixed:
                sign = "fixed"
        elif isinstance(value, int | float | Quantity) and not isinstance(value, bool):
            init = InitRule("constant", (float(magnitude(value)),), dim_of(value))
        else:
            raise ev.fail("E301", f"a weight is a param, a number or an init rule, not {describe(value)}", where)
        if sign == "fixed" and not ((init.args[0] <= 0) if arrow == "-|" else (init.args[0] >= 0)):
            raise ev.fail("E502", f"a fixed weight of {init.args[0]:g} does not fit '{arrow}'", where)
        enforce: ir.Enforce = "clamp" if sign in ("inhibitory", "excitatory") else "none"
        if enforce != "none":
            _check_init_sign(ev, init, sign, enforce, where)
        handle = ParamHandle(name, sign, enforce, init, sign != "fixed", "edge", where, anonymous=True)
        self.params.append(handle)
        return handle

    # ---- finishing -----------------------------------------------------------------------------------
    def _init_of(self, handle: ParamHandle, shape: list[int]) -> ir.Init:
        """A param's init in the IR; values loaded from a file (`load(...)`) must fill its shape exactly."""
        if isinstance(handle.init, init_rules.ShapedRule):  # random_sign(...), low_rank(...), from_file(...)
            return init_rules.to_ir(self.evaluator, handle.init, shape, handle.name, handle.span)
        values = handle.init.values
        if values is None:
            return ir.Init(rule=handle.init.rule, args=list(handle.init.args))  # type: ignore[arg-type]
        if values.size != int(np.prod(shape)):
            raise self.reporter.fail("E302", f"'{handle.name}' needs {int(np.prod(shape))} values {shape}, but "
                                              f"load() gives {values.size}", handle.span)
        return ir.Init(rule="data", args=[], values=ir_arrays.Array(values))

    def _finish_weights(self) -> tuple[list[ir.Parameter], list[ir.Projection]]:
        """Size each param from its uses and give every projection its offset into it."""
        parameters: list[ir.Parameter] = []
        offsets: dict[tuple[str, int], tuple[int, int]] = {}
        for handle in self.params:
            if not handle.uses:
                continue
            if handle.share == "all":
                shape: list[int] = []
                spots = [(0, 0)] * len(handle.uses)
            elif handle.share == "projection":
                shape = [len(handle.uses)]
                spots = [(i, 0) for i in range(len(handle.uses))]
            elif handle.share == "population":
                targets = list(dict.fromkeys(use[3] for use in handle.uses))
                shape = [len(targets)]
                spots = [(targets.index(use[3]), 0) for use in handle.uses]
            else:
                total = sum(use[1] for use in handle.uses)
                shape = list(handle.uses[0][2]) if len(handle.uses) == 1 else [total]
                starts = np.cumsum([0] + [use[1] for use in handle.uses])[:-1]
                spots = [(int(s), 1) for s in starts]
            for i, spot in enumerate(spots):
                offsets[(handle.name, i)] = spot
            parameters.append(ir.Parameter(name=handle.name, shape=shape, sign=handle.sign, enforce=handle.enforce,
                                           init=self._init_of(handle, shape),
                                           trainable=handle.trainable, share=handle.share,
                                           dim=format_dim(handle.init.dim),
                                           mask=None if handle.mask is None else ir_arrays.Array(handle.mask),
                                           span=handle.span))
        parameters.extend(self.data_parameters)
        projections = []
        for pending in self.pending:
            if isinstance(pending, ir.Projection):
                projections.append(pending)
                continue
            offset, stride = offsets[(pending.param.name, pending.use)]
            weight = ir.WeightRef(param=pending.param.name, offset=offset, stride=stride)
            projections.append(ir.Projection(weight=weight, **pending.fields))  # type: ignore[arg-type]
        return parameters, projections

    def _check_unused(self, frame: _Frame) -> None:
        for name, binding in frame.scope.names.items():
            if not binding.used and binding.kind in ("let", "param", "population", "input"):
                if isinstance(binding.value, Poisoned | Unbound):
                    continue
                what = {"let": "constant", "param": "param", "population": "population", "input": "input"}
                self.reporter.warn("W201", f"{what[binding.kind]} '{name}' is never used", binding.span)


def _wires(signals: dict[str, Signal]) -> list[ir.Wire]:
    """The signals on an instance's ports, recorded in the IR for diagrams."""
    return [ir.Wire(port=name, expr=s.expr, shape=list(s.shape)) for name, s in signals.items()]


def _poisoned(span: Span | None) -> Binding:
    return Binding(Poisoned(), span, "poisoned", True)


def _count(shape: tuple[ir.Axis, ...]) -> int:
    return math.prod(axis.size for axis in shape)


def sparsity_mask(projection_id: str, targets: int, sources: int, sparsity: float) -> np.ndarray:
    """A fixed 0/1 mask over a dense [target, source] weight, round(sparsity · sources) zeros in every row at
    random places; seeded by the projection's id, so an IR is the same on every elaboration."""
    rng = np.random.default_rng(zlib.crc32(projection_id.encode()))
    zeros = round(sparsity * sources)
    mask = np.ones((targets, sources), dtype=np.int32)
    for row in mask:
        row[rng.permutation(sources)[:zeros]] = 0
    return mask.ravel()


def _list(selection: tuple[ir.AxisSel, ...] | None) -> list[ir.AxisSel] | None:
    return None if selection is None else list(selection)


def _fan_in(wiring: connectivity.Wiring, source: Signal) -> float:
    """Inputs per target unit, for the default init scale 1/sqrt(fan_in) (torch.nn.Linear's)."""
    c = wiring.connectivity
    if c.rule == "one_to_one":
        return 1.0
    if c.rule == "all_to_all":
        return float(max(source.size, 1))
    if c.post is not None and len(c.post):
        return float(np.bincount(c.post.data).max())
    return 1.0


def _fixed_fits(handle: ParamHandle, arrow: str) -> bool:
    values = handle.init.values if handle.init.values is not None else handle.init.args[:1]
    return bool(max(values) <= 0) if arrow == "-|" else bool(min(values) >= 0)


def _check_init_sign(ev: Evaluator, init: InitRule, sign: str, enforce: str, span: Span) -> None:
    """An initial value must lie on the sign's side (strictly, under softplus, which cannot reach 0)."""
    if sign not in ("excitatory", "inhibitory"):
        return
    flip = 1.0 if sign == "excitatory" else -1.0
    lowest = min(flip * v for v in init_rules.value_range(init))  # a normal: its mean must sit on the right side
    strict = enforce == "softplus"
    if lowest < 0 or (strict and lowest <= 0):
        side = "positive" if sign == "excitatory" else "negative"
        raise ev.fail("E502", f"an {sign} parameter starts {side}{' (softplus cannot reach 0)' * strict}, "
                              f"but this init does not", span,
                      ["e.g. excitatory = 1, inhibitory = -1, or enforce = none to drop the constraint"])


def _option_span(options: tuple[ast.Arg, ...], name: str, default: Span) -> Span:
    for option in options:
        if option.name is not None and option.name.name == name:
            return option.span
    return default


def _arg_type(definition: Definition, arg: ast.Arg, position: int) -> str | None:
    params = definition.node.params
    if arg.name is not None:
        return next((p.type.name for p in params if p.name.name == arg.name.name), None)
    return params[position].type.name if position < len(params) else None


def _declared_params_and_inputs(body: Iterable[ast.Stmt]) -> tuple[set[str], set[str]]:
    """Names a parent may bind when instantiating: the circuit's params and inputs, at any depth of if/for."""
    params: set[str] = set()
    inputs: set[str] = set()
    for statement in body:
        if isinstance(statement, ast.ParamDecl):
            params |= {n.name for n in statement.names}
        elif isinstance(statement, ast.InputDecl):
            inputs |= {p.name.name for p in statement.ports}
        elif isinstance(statement, ast.InputProjection):
            inputs.add(statement.port.name.name)
        elif isinstance(statement, ast.For | ast.If):
            nested = list(statement.body) + list(getattr(statement, "orelse", None) or ())
            p, i = _declared_params_and_inputs(nested)
            params |= p
            inputs |= i
    return params, inputs


def _mark_recurrent(projections: list[ir.Projection], populations: list[ir.Population]) -> list[ir.Projection]:
    """Order a step feed-forward in declaration order; an instantaneous edge closing a cycle reads the past.

    Gap junctions always read the previous step's outputs (they are symmetric, so they would always close a
    cycle).  Delayed projections read their ring buffer and are not part of the within-step order.
    """
    order = {p.name: i for i, p in enumerate(populations)}
    graph = nx.DiGraph()
    graph.add_nodes_from(order)
    for projection in projections:
        if projection.kind == "chemical" and projection.delay == 0:
            for source in signal_sources(projection.source):
                if source in order:
                    graph.add_edge(source, projection.target)
    component = {node: i for i, nodes in enumerate(nx.strongly_connected_components(graph)) for node in nodes}
    marked = []
    for projection in projections:
        recurrent = projection.kind == "electrical"
        if projection.kind == "chemical" and projection.delay == 0:
            recurrent = any(source in order and component[source] == component[projection.target]
                            and order[source] >= order[projection.target]
                            for source in signal_sources(projection.source))
        marked.append(projection.model_copy(update={"recurrent": recurrent}))
    return marked
