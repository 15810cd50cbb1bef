"""Laying out the params once the body has run: each sized from every projection using it (by its sharing),
each projection given its offset and stride into its param, and the totals checked against the limits."""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

from circuitdsl.elaborate import init_rules
from circuitdsl.elaborate.network import Network
from circuitdsl.elaborate.values import ParamHandle
from circuitdsl.ir import arrays as ir_arrays
from circuitdsl.ir import model as ir
from circuitdsl.limits import FLOAT32_MAX, fits_float32
from circuitdsl.units import format_dim


class Spot(NamedTuple):
    """Where one use of a param reads its weights: from `offset`, every unit (stride 1) or one shared value (0)."""

    offset: int
    stride: int


class ParamLayout(NamedTuple):
    """A param's shape and, for each of its uses in order, where that use reads."""

    shape: list[int]
    spots: list[Spot]


class Weights(NamedTuple):
    """The IR's parameters and its projections, each reading its weights from its place in a parameter."""

    parameters: list[ir.Parameter]
    projections: list[ir.Projection]


def lay_out(net: Network) -> Weights:
    """Size each param from its uses and give every projection its offset into it (Abort: an init rule that does
    not fit its param's shape)."""
    parameters: list[ir.Parameter] = []
    spots: dict[tuple[str, int], Spot] = {}  # (param, use) -> where that use reads
    for handle in net.params:
        if not handle.uses:
            continue
        layout = _layout(handle)
        for i, spot in enumerate(layout.spots):
            spots[(handle.name, i)] = spot
        parameters.append(_parameter(net, handle, layout.shape))
    parameters.extend(net.data_parameters)
    projections = []
    for pending in net.pending:
        if isinstance(pending, ir.Projection):
            projections.append(pending)
            continue
        offset, stride = spots[(pending.param.name, pending.use)]
        projections.append(pending.draft.complete(ir.WeightRef(param=pending.param.name, offset=offset, stride=stride)))
    return Weights(parameters, projections)


def _layout(handle: ParamHandle) -> ParamLayout:
    """One value for all uses, one per projection, one per target population, or every use's own weights
    end to end (in the shape of its only use's weights, when there is one use)."""
    uses = handle.uses
    if handle.share == "all":
        return ParamLayout([], [Spot(0, 0)] * len(uses))
    if handle.share == "projection":
        return ParamLayout([len(uses)], [Spot(i, 0) for i in range(len(uses))])
    if handle.share == "population":
        targets = list(dict.fromkeys(use.target for use in uses))
        return ParamLayout([len(targets)], [Spot(targets.index(use.target), 0) for use in uses])
    starts = list(itertools.accumulate((int(use.synapses) for use in uses), initial=0))
    return ParamLayout(list(uses[0].natural_shape) if len(uses) == 1 else [starts[-1]],
                       [Spot(start, 1) for start in starts[:-1]])


def _parameter(net: Network, handle: ParamHandle, shape: list[int]) -> ir.Parameter:
    return ir.Parameter(name=handle.name, shape=shape, sign=handle.sign, enforce=handle.enforce,
                        init=_init(net, handle, shape), trainable=handle.trainable, share=handle.share,
                        dim=format_dim(handle.init.dim),
                        mask=None if handle.mask is None else ir_arrays.Array(handle.mask), span=handle.span)


def _init(net: Network, handle: ParamHandle, shape: list[int]) -> ir.Init:
    """A param's init in the IR; values loaded from a file (`load(...)`) must fill its shape exactly."""
    if isinstance(handle.init, init_rules.ShapedRule):  # random_sign(...), low_rank(...), from_file(...)
        return init_rules.to_ir(net.evaluator, handle.init, shape, handle.name, handle.span)
    values = handle.init.values
    if values is None:
        return ir.Init(rule=handle.init.rule, args=list(handle.init.args))  # type: ignore[arg-type]
    if values.size != int(np.prod(shape)):
        raise net.reporter.fail("E302", f"'{handle.name}' needs {int(np.prod(shape))} values {shape}, but "
                                        f"load() gives {values.size}", handle.span)
    return ir.Init(rule="data", args=[], values=ir_arrays.Array(values))


def check_parameters(net: Network, parameters: list[ir.Parameter]) -> None:
    """E706 when the parameters together pass the limit (before a backend allocates them); E801 when an
    init value would not fit a float32 tensor."""
    total = 0
    for p in parameters:
        total += p.size
        if total > net.limits.parameters:
            net.reporter.error("E706", f"with '{p.name}' ({p.size} values) the parameters hold {total} values, "
                               f"{net.limits.over('parameters')}", p.span, [net.limits.hint("parameters")])
            return
        if any(isinstance(a, float | int) and not fits_float32(a) for a in p.init.args):
            net.reporter.error("E801", f"'{p.name}' starts from a value that does not fit a float32 tensor "
                               f"(|x| <= {FLOAT32_MAX:.4g})", p.span, ["the backends compute in float32 by default"])
