"""Sub-circuit instances, `seg[i] = Segment(drive = q[i - 1], prop = prop)`: the instance's name, its arguments
split into the child's own parameters and the params and inputs the parent binds, and its record in the IR.

statements.py runs the child's body between `bind_child` and `record`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from circuitdsl import ast
from circuitdsl.elaborate import select
from circuitdsl.elaborate.evaluate import CircuitCall, Evaluator
from circuitdsl.elaborate.network import Frame, Network
from circuitdsl.elaborate.neurons import bind_arguments, plain
from circuitdsl.elaborate.scope import Binding, Scope
from circuitdsl.elaborate.values import InstanceArray, InstanceValue, ParamHandle, Signal, describe
from circuitdsl.errors import Span
from circuitdsl.ir import model as ir


@dataclass(frozen=True)
class InstanceName:
    """`seg` (array and index None) or `seg[2]` (array "seg", index 2); `local` as written, `seg[2]`."""

    array: str | None
    index: int | None
    local: str


class Bindable(NamedTuple):
    """The names a parent may bind when instantiating a circuit: its params and its inputs."""

    params: set[str]
    inputs: set[str]


@dataclass(frozen=True)
class ChildBindings:
    """An instance's arguments, sorted: its circuit's own parameters (bound in `scope`), and the parent's params
    and signals bound to the child's params and inputs by name."""

    args: dict[str, object]
    scope: Scope
    params: dict[str, ParamHandle]
    inputs: dict[str, Signal]


def instance_name(ev: Evaluator, target: ast.Expr, scope: Scope) -> InstanceName:
    """The name an instance is assigned to: `name` or `name[i]`, i a whole number."""
    if isinstance(target, ast.Name):
        return InstanceName(None, None, target.id)
    if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name) and len(target.indices) == 1 \
            and not isinstance(target.indices[0], ast.Slice | ast.AxisIndex):
        index = ev.integer(target.indices[0], scope, "an instance index")
        return InstanceName(target.value.id, index, f"{target.value.id}[{index}]")
    raise ev.fail("E006", "an instance is named `name` or `name[i]`", target.span)


def check_nesting(net: Network, call: CircuitCall) -> None:
    """E601 for a circuit that instantiates itself; E704 past the limits on instances and on their depth."""
    ev, limits = net.evaluator, net.limits
    if call.definition in net.active:
        chain = " -> ".join(d.name for d in [*net.active[net.active.index(call.definition):], call.definition])
        raise ev.fail("E601", f"circuit '{call.definition.name}' instantiates itself", call.span, [f"chain: {chain}"])
    net.counts.instances += 1
    if net.counts.instances > limits.instances:
        raise ev.fail("E704", f"this is instance {net.counts.instances}, {limits.over('instances')}",
                      call.span, [limits.hint("instances")])
    if len(net.active) >= limits.depth:
        raise ev.fail("E704", f"this instance is nested {len(net.active)} deep, {limits.over('depth')}",
                      call.span, [limits.hint("depth")])


def claim_name(net: Network, frame: Frame, target: ast.Expr, name: InstanceName) -> Binding | None:
    """Check the name is free (E202), defining the instance array on its first item; the array's binding."""
    ev = net.evaluator
    if name.array is None:
        if frame.scope.names.get(name.local) is not None:
            raise ev.fail("E202", f"'{name.local}' is already defined", target.span)
        return None
    holder = frame.scope.names.get(name.array)
    if holder is None:
        frame.scope.define(name.array, InstanceArray(name.array), target.span, "instance", net.reporter)
        holder = frame.scope.names[name.array]
    if not isinstance(holder.value, InstanceArray):
        raise ev.fail("E202", f"'{name.array}' is already defined as {describe(holder.value)}", target.span)
    if name.index in holder.value.items:
        raise ev.fail("E202", f"'{name.local}' is instantiated twice", target.span)
    return holder


def bind_child(ev: Evaluator, call: CircuitCall) -> ChildBindings:
    """Bind a call's arguments: the circuit's parameters, then the parent's params (E301 for anything else) and
    signals given by the names of the child's params and inputs."""
    definition = call.definition
    bindable = _bindable(definition.node.body)
    names = bindable.params | bindable.inputs
    scope = Scope(parent=definition.module.scope)
    args = bind_arguments(ev, definition, call.args, scope, call.span, extra=names)
    params: dict[str, ParamHandle] = {}
    inputs: dict[str, Signal] = {}
    spans = {ident.name: span for ident, _, span in call.args if ident is not None}
    for name in [n for n in args if n in names]:
        value = args.pop(name)
        if name in bindable.params:
            if not isinstance(value, ParamHandle):
                raise ev.fail("E301", f"'{name}' is a param of '{definition.name}'; pass a param, not "
                                      f"{describe(value)}", spans[name])
            params[name] = value
            scope.names.pop(name, None)
        else:
            inputs[name] = ev.signal(value, spans[name])
    return ChildBindings(args, scope, params, inputs)


def _bindable(body: Iterable[ast.Stmt]) -> Bindable:
    """The circuit's params and inputs, declared at any depth of if/for."""
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
            nested = _bindable(list(statement.body) + list(getattr(statement, "orelse", None) or ()))
            params |= nested.params
            inputs |= nested.inputs
    return Bindable(params, inputs)


def exported(child: Frame) -> dict[str, Signal]:
    """The child's outputs that one assignment fills whole: read through the instance as `seg[2].y`."""
    return {name: o.pieces[0].signal for name, o in child.outputs.items()
            if len(o.pieces) == 1 and select.is_full(o.shape, o.pieces[0].picks)}


def record(child: Frame, name: InstanceName, bound: ChildBindings, outputs: dict[str, Signal],
           span: Span) -> ir.Instance:
    """The instance's node in the IR's hierarchy, with the wires on its ports for diagrams."""
    definition = child.definition
    return ir.Instance(name=child.instance, circuit=definition.name, args={k: plain(v) for k, v in bound.args.items()},
                       doc=definition.node.doc, array=name.array, index=name.index, inputs=list(bound.inputs),
                       outputs=list(child.outputs), populations=[p.name for p in child.populations.values()],
                       children=child.children, bound=_wires(bound.inputs), exported=_wires(outputs), span=span)


def place(net: Network, frame: Frame, name: InstanceName, holder: Binding | None, instance: InstanceValue,
          span: Span) -> None:
    """Bind the instance to its name, or to its index in the instance array."""
    if holder is not None and isinstance(holder.value, InstanceArray):
        holder.value.items[name.index] = instance  # type: ignore[index]
    else:
        frame.scope.define(name.local, instance, span, "instance", net.reporter)


def _wires(signals: dict[str, Signal]) -> list[ir.Wire]:
    """The signals on an instance's ports, recorded in the IR for diagrams."""
    return [ir.Wire(port=name, expr=s.expr, shape=list(s.shape)) for name, s in signals.items()]
