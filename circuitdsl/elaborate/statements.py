"""Running a circuit's body in order: each statement handed to its pass (ports, params, populations,
projections), `for` and `if` unrolled, and sub-circuits instantiated in place by running their bodies.

Independent mistakes are all recorded; a statement that fails is skipped and the names it declared are
poisoned, so that later uses of them fail quietly instead of cascading.
"""

from __future__ import annotations

from collections.abc import Iterable

from circuitdsl import ast
from circuitdsl.elaborate import connectome as data
from circuitdsl.elaborate import instances, select
from circuitdsl.elaborate.evaluate import Abort, CircuitCall, Poisoned, touch
from circuitdsl.elaborate.network import Frame, LetName, Network, PortOutput, poisoned
from circuitdsl.elaborate.params import declare_param
from circuitdsl.elaborate.populations import declare_population
from circuitdsl.elaborate.ports import declare_input, declare_output, fill_output, finish_outputs
from circuitdsl.elaborate.projections import project
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import DataCall, InstanceValue, Signal, Unbound
from circuitdsl.errors import CircuitError, did_you_mean

_NEURON_ONLY = {ast.StateDecl: "state", ast.Spike: "spike"}
_UNUSED = {"let": "constant", "param": "param", "population": "population", "input": "input"}  # kind -> word


class StatementRunner:
    """Runs circuit bodies into one network."""

    def __init__(self, net: Network) -> None:
        self.net = net

    def run(self, frame: Frame, statements: Iterable[ast.Stmt], scope: Scope) -> None:
        """Run statements in order (E704 past the limit on statements executed, which ends elaboration)."""
        net = self.net
        for statement in statements:
            net.counts.statements += 1
            if net.counts.statements > net.limits.statements:
                net.reporter.error("E704", f"this is statement {net.counts.statements} executed, "
                                   f"{net.limits.over('statements')}", statement.span, [net.limits.hint("statements")])
                raise CircuitError(net.reporter.errors)
            try:
                self._statement(frame, statement, scope)
            except Abort:
                _poison(statement, frame.scope)

    def _statement(self, frame: Frame, s: ast.Stmt, scope: Scope) -> None:
        net, ev = self.net, self.net.evaluator
        if isinstance(s, ast.Docstring):
            return
        if type(s) in _NEURON_ONLY:
            raise ev.fail("E005", f"'{_NEURON_ONLY[type(s)]}' belongs in a neuron, not in a circuit", s.span)
        if isinstance(s, ast.Let):
            self._let(s, scope)
        elif isinstance(s, ast.InputDecl):
            for port in s.ports:
                declare_input(net, frame, port, scope)
        elif isinstance(s, ast.InputProjection):
            declare_input(net, frame, s.port, scope)
            # read the port back by name: marks it used (no W201) and, in an instance, raises E307 if unbound
            source = ev.eval(ast.Name(s.port.name.span, s.port.name.name), scope)
            project(net, frame, scope, source, s.port.span, s.arrow, s.target, s.options, s.span)
        elif isinstance(s, ast.OutputDecl):
            for port in s.ports:
                declare_output(net, frame, port, scope)
        elif isinstance(s, ast.ParamDecl):
            declare_param(net, frame, s, scope)
        elif isinstance(s, ast.PopulationDecl):
            declare_population(net, frame, s, scope)
        elif isinstance(s, ast.Projection):
            self._projection(frame, s, scope)
        elif isinstance(s, ast.Assign):
            self._assign(frame, s, scope)
        elif isinstance(s, ast.For):
            self._for(frame, s, scope)
        elif isinstance(s, ast.If):
            cond = ev.boolean(s.cond, scope, "an 'if' condition")
            touch(s.orelse if cond else s.body, scope)
            self.run(frame, s.body if cond else (s.orelse or ()), Scope(parent=scope))

    def _let(self, s: ast.Let, scope: Scope) -> None:
        ev = self.net.evaluator
        value = ev.eval(s.value, scope)
        if isinstance(value, CircuitCall):
            raise ev.fail("E005", "instantiate a circuit with `name = Circuit(...)`, not with let", s.span)
        if isinstance(value, DataCall):
            value = data.build(ev, value, scope)
        if isinstance(value, Signal):  # named for diagrams, should it be stored as a shared entry
            self.net.let_names.setdefault(id(value.expr), LetName(value.expr, s.name.name))
        scope.define(s.name.name, value, s.name.span, "let", self.net.reporter)

    def _projection(self, frame: Frame, s: ast.Projection, scope: Scope) -> None:
        """Each pair of `a -> b, c -| d : options`; a pair that fails does not stop the others."""
        for pair in s.pairs:
            try:
                source = self.net.evaluator.eval(pair.source, scope)
                project(self.net, frame, scope, source, pair.source.span, pair.arrow, pair.target, s.options,
                        pair.span)
            except Abort:
                continue

    def _for(self, frame: Frame, s: ast.For, scope: Scope) -> None:
        net, ev = self.net, self.net.evaluator
        start = ev.integer(s.start, scope, "the start of a range")
        stop = ev.integer(s.stop, scope, "the end of a range")
        if stop - start > net.limits.loop_iterations:
            raise ev.fail("E701", f"this loop runs {stop - start} times, {net.limits.over('loop_iterations')}",
                          s.span, [net.limits.hint("loop_iterations")])
        for i in range(start, stop):
            inner = Scope(parent=scope)
            inner.define(s.var.name, i, s.var.span, "loop", net.reporter)
            inner.names[s.var.name].used = True
            self.run(frame, s.body, inner)

    def _assign(self, frame: Frame, s: ast.Assign, scope: Scope) -> None:
        """`name = Circuit(...)` instantiates, `net = celegans.connectome(...)` loads, `y[i] = ...` fills an output."""
        net, ev = self.net, self.net.evaluator
        target = s.target
        value = ev.eval(s.value, scope)
        if isinstance(value, CircuitCall):
            self._instantiate(frame, target, value, scope)
            return
        if isinstance(value, DataCall):
            if not isinstance(target, ast.Name):
                raise ev.fail("E006", "a connectome is named `name = celegans.connectome(...)`", target.span)
            frame.scope.define(target.id, data.build(ev, value, scope), target.span, "let", net.reporter)
            return
        base, indices = (target.value, target.indices) if isinstance(target, ast.Subscript) else (target, None)
        if isinstance(base, ast.Name):
            binding = frame.scope.names.get(base.id)
            if binding is not None and isinstance(binding.value, PortOutput):
                output = binding.value
                picks = select.full(output.shape)
                if indices is not None:
                    picks = ev.index_picks(ast.Subscript(target.span, base, indices), scope, output.shape, picks)
                fill_output(net, output, picks, value, s.value.span)
                return
        if isinstance(base, ast.Member):
            raise ev.fail("E005", "connect a sub-circuit's input where it is instantiated", target.span,
                          ["e.g. seg[i] = Segment(drive = clamp(q[i - 1], 0, 1))"])
        outputs = [n for n, b in frame.scope.names.items() if isinstance(b.value, PortOutput)]
        name = base.id if isinstance(base, ast.Name) else "this"
        raise ev.fail("E201", f"'{name}' is not an output of '{frame.definition.name}'", target.span,
                      [did_you_mean(name, outputs), "declare a constant with `let`, or an output with `output`"])

    def _instantiate(self, frame: Frame, target: ast.Expr, call: CircuitCall, scope: Scope) -> None:
        """Expand a sub-circuit in place: its names qualified by the instance's (`seg[2].Bd`)."""
        net = self.net
        name = instances.instance_name(net.evaluator, target, scope)
        instances.check_nesting(net, call)
        holder = instances.claim_name(net, frame, target, name)
        bound = instances.bind_child(net.evaluator, call)
        definition = call.definition
        child = Frame(definition, f"{frame.prefix}{name.local}.", Scope(parent=bound.scope), False, bound.inputs,
                      bound.params)
        net.active.append(definition)
        self.run(child, definition.node.body, child.scope)
        net.active.pop()
        check_unused(net, child)
        finish_outputs(net, child)
        outputs = instances.exported(child)
        frame.children.append(instances.record(child, name, bound, outputs, call.span))
        instance = InstanceValue(child.instance, definition, outputs, bound.inputs, child.populations)
        instances.place(net, frame, name, holder, instance, target.span)


def check_unused(net: Network, frame: Frame) -> None:
    """W201 for each constant, param, population and input of the body that nothing reads."""
    for name, binding in frame.scope.names.items():
        if not binding.used and binding.kind in _UNUSED:
            if isinstance(binding.value, Poisoned | Unbound):
                continue
            net.reporter.warn("W201", f"{_UNUSED[binding.kind]} '{name}' is never used", binding.span)


def _poison(statement: ast.Stmt, scope: Scope) -> None:
    """Bind what a failed statement declared to Poisoned; mark outputs it assigned as failed (no E306 then)."""
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
        if binding is not None and isinstance(binding.value, PortOutput):
            binding.value.failed = True
        elif isinstance(statement.target, ast.Name):  # a failed instance
            names = [ast.Ident(statement.target.span, statement.target.id)]
    for ident in names:
        binding = scope.names.setdefault(ident.name, poisoned(ident.span))
        if isinstance(binding.value, PortOutput):
            binding.value.failed = True
