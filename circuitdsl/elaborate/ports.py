"""A circuit's inputs and outputs: declared, bound to the parent's signals in an instance, filled by
assignments, and assembled into the IR once the body has run."""

from __future__ import annotations

import numpy as np

from circuitdsl import ast
from circuitdsl.elaborate import select
from circuitdsl.elaborate.evaluate import Abort, format_shape
from circuitdsl.elaborate.network import Frame, Network, OutputPiece, PortOutput
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.shapes import checked_size, declared_shape, unit_count
from circuitdsl.elaborate.values import Signal, Unbound
from circuitdsl.errors import Span
from circuitdsl.ir import model as ir
from circuitdsl.units import Dim, format_dim


def declare_input(net: Network, frame: Frame, port: ast.Port, scope: Scope) -> Signal:
    """`input q[joint = 5] : mV`: at the top a port of the circuit, in an instance the signal bound to it."""
    ev = net.evaluator
    if port.value is not None:
        raise ev.fail("E005", "an input gets its signal from outside; only outputs are assigned", port.span)
    shape = declared_shape(net, port.shape, scope)
    dim = ev.dimension(port.dim)
    name = port.name.name
    value: Signal | Unbound
    if name in frame.bound_inputs:
        value = _bound_input(net, frame, port, shape, dim)
    elif frame.top:
        checked_size(net, shape, port.span)
        if name not in frame.scope.names:  # a second `input q` is E202 below and must not reshape the first
            frame.inputs[name] = ir.Port(name=name, shape=list(shape), dim=format_dim(dim), span=port.span)
            ev.ref_shapes[name] = shape
        value = Signal(ir.Ref(source=name), shape, dim)
    else:
        value = Unbound(name, frame.instance)
    frame.scope.define(name, value, port.name.span, "input", net.reporter)
    return value if isinstance(value, Signal) else Signal(ir.Const(value=0), shape, dim)


def _bound_input(net: Network, frame: Frame, port: ast.Port, shape: tuple[ir.Axis, ...],
                 dim: Dim) -> Signal:
    """The parent's signal bound to an instance's input, checked against the input's shape and dimension."""
    name = port.name.name
    signal = frame.bound_inputs[name]
    if signal.shape and [(a.name, a.size) for a in signal.shape] != [(a.name, a.size) for a in shape]:
        raise net.evaluator.fail("E302", f"input '{name}' of '{frame.instance}' is {format_shape(shape)} but is "
                                         f"given {format_shape(signal.shape)}", port.span)
    if signal.dim != dim:
        raise net.evaluator.fail("E401", f"input '{name}' is {format_dim(dim)} but is given {format_dim(signal.dim)}",
                                 port.span)
    return signal


def declare_output(net: Network, frame: Frame, port: ast.Port, scope: Scope) -> None:
    """`output y[joint = 5] : mV` (maybe `= signal`): assigned here or later, unit by unit."""
    name = port.name.name
    output = PortOutput(name, declared_shape(net, port.shape, scope), net.evaluator.dimension(port.dim), port.span)
    if not frame.scope.define(name, output, port.name.span, "output", net.reporter):
        raise Abort()
    frame.scope.names[name].used = True
    frame.outputs[name] = output
    if port.value is not None:
        fill_output(net, output, select.full(output.shape), net.evaluator.eval(port.value, scope), port.value.span)


def fill_output(net: Network, output: PortOutput, picks: tuple[select.AxisPick, ...], value: object,
                span: Span) -> None:
    """Assign `value` to the units `picks` of an output, checking its shape and dimension."""
    ev = net.evaluator
    signal = ev.signal(value, span)
    shape = select.result_shape(output.shape, picks)
    if signal.shape and [(a.name, a.size) for a in signal.shape] != [(a.name, a.size) for a in shape]:
        raise ev.fail("E302", f"output '{output.name}' here is {format_shape(shape)} but the signal "
                              f"is {format_shape(signal.shape)}", span)
    if signal.dim != output.dim:
        raise ev.fail("E401", f"output '{output.name}' is {format_dim(output.dim)} but the signal is "
                              f"{format_dim(signal.dim)}", span)
    output.pieces.append(OutputPiece(picks, signal, span))


def finish_outputs(net: Network, frame: Frame) -> list[ir.Output]:
    """Check each output is assigned exactly once per unit; return them as IR (used at the top level only)."""
    result = []
    for output in frame.outputs.values():
        _check_cover(net, output)
        pieces = [ir.OutputPiece(select=select.as_list(select.to_ir(output.shape, piece.picks)), expr=piece.signal.expr)
                  for piece in output.pieces]
        result.append(ir.Output(name=frame.prefix + output.name, shape=list(output.shape),
                                dim=format_dim(output.dim), pieces=pieces, span=output.span))
    return result


def _check_cover(net: Network, output: PortOutput) -> None:
    """E202 for units assigned twice, E306 for units never assigned (unless an assignment already failed)."""
    n = unit_count(output.shape)
    counts = np.zeros(n, dtype=np.int64)
    for piece in output.pieces:
        units_ = select.flat_units(output.shape, piece.picks)
        if counts[units_].any():
            net.reporter.error("E202", f"units of output '{output.name}' are assigned twice", piece.span)
        np.add.at(counts, units_, 1)
    if not counts.all() and not output.failed:
        missing = int(np.argmin(counts))
        net.reporter.error("E306", f"output '{output.name}' is not assigned everywhere", output.span,
                           [(f"{int((counts == 0).sum())} of {n} units are missing, the first at flat "
                             f"index {missing}")])

