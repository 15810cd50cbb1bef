"""Projections: `source -> target : rule, weight = w, delay = d` checked and wired, its weights a param of its
own or a declared one; operator projections (`operator(...)`, `... over axis`) with their weights and bias.

Each projection waits in `Network.pending` for its param's layout (param_layout.py) to know its offset.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import NamedTuple, get_args

import numpy as np

from circuitdsl import ast, units
from circuitdsl.elaborate import connectivity, delays, operators, select
from circuitdsl.elaborate.evaluate import dim_of, format_shape, magnitude
from circuitdsl.elaborate.init_rules import ShapedRule
from circuitdsl.elaborate.network import Arrow, Frame, Network, PendingProjection, ProjectionDraft
from circuitdsl.elaborate.params import check_init_sign
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.shapes import unit_count
from circuitdsl.elaborate.values import Builtin, InitRule, ParamHandle, ParamUse, PopulationRef, Rule, Signal, describe
from circuitdsl.errors import Problem, Span, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.operators import bias_shape
from circuitdsl.units import DIMENSIONLESS, Dim, Quantity, format_dim

_OPTIONS = ("weight", "delay", "sparsity")
_ARROWS: dict[str, Arrow] = {arrow: arrow for arrow in get_args(Arrow)}
_SIGNS_OF_ARROWS = {"->": ("excitatory", "free", "fixed"), "-|": ("inhibitory", "fixed"),
                    "<->": ("excitatory", "free", "fixed")}


@dataclass(frozen=True)
class Target:
    """Where a projection ends: a population (or a selection of it), one input of its model, and the shape of
    what that input receives."""

    population: PopulationRef
    shape: tuple[ir.Axis, ...]
    port: str
    dim: Dim  # the input's dimension


class Sparsity(NamedTuple):
    """The `sparsity = f` option taken out of a projection's options (0 when not given)."""

    others: tuple[ast.Arg, ...]
    fraction: float


@dataclass(frozen=True)
class ProjectionOptions:
    """A weighted projection's options: its connectivity rule (None: not given), weight and delay."""

    rule: Rule | None
    weight: ast.Expr | None
    delay: int | delays.Learnable


def project(net: Network, frame: Frame, scope: Scope, source_value: object, source_span: Span, arrow: str,
            target_node: ast.Expr, options: tuple[ast.Arg, ...], span: Span) -> None:
    """One `source -> target : options` pair of a projection statement (or of an input's projection)."""
    ev = net.evaluator
    if len(net.projection_ids) >= net.limits.projections:
        raise ev.fail("E703", f"this is projection {len(net.projection_ids) + 1}, "
                      f"{net.limits.over('projections')}", span, [net.limits.hint("projections")])
    source = ev.signal(source_value, source_span)
    target = _target(net, ev.eval(target_node, scope), target_node.span)
    sparsity = _sparsity(net, options, scope)
    if arrow == "<->" and not (isinstance(source_value, PopulationRef) and source_value.port == "in"):
        raise ev.fail("E206", f"a gap junction joins two populations, not {describe(source_value)}", source_span,
                      ["electrical coupling needs a membrane on both sides; use '->' from an input or signal"])
    operator = operators.operator_option(sparsity.others)
    if operator is None:
        _weighted(net, frame, scope, source, target, _ARROWS[arrow], sparsity, span)
        return
    spec = operators.parse(ev, operator, sparsity.others, scope, source.shape, target.shape, span)
    if arrow != "->" or units.mul(DIMENSIONLESS, source.dim) != target.dim:
        raise ev.fail("E301", f"an operator projection is written '->' between fields of one dimension, "
                              f"into input '{target.port}' of {target.population.model}", span)
    _operator(net, frame, spec, source, target, span)


def _target(net: Network, value: object, span: Span) -> Target:
    """The population a projection ends at and the input it feeds (the model's first, unless one is named)."""
    ev = net.evaluator
    if not isinstance(value, PopulationRef):
        raise ev.fail("E206", f"a projection ends at a population, not at {describe(value)}", span)
    shape = select.result_shape(value.shape, select.from_ir(value.shape, value.select))
    inputs = net.model_inputs[value.model]
    if not inputs:  # a model whose inputs failed to build (reported), or one without inputs
        raise ev.fail("E205", f"neuron model '{value.model}' has no input to project into", span)
    port = value.port if value.port in inputs or value.port != "in" else next(iter(inputs))  # the first input
    if port not in inputs:
        raise ev.fail("E205", f"neuron model '{value.model}' has no input '{value.port}'", span,
                      [did_you_mean(value.port, inputs), f"inputs: {', '.join(inputs)}"])
    shape += tuple(next(i.shape for i in net.neurons[value.model].inputs if i.name == port))
    return Target(value, shape, port, inputs[port])


def _sparsity(net: Network, options: tuple[ast.Arg, ...], scope: Scope) -> Sparsity:
    """The `sparsity = f` option (the fraction of each target unit's weights fixed at zero) and the others."""
    ev = net.evaluator
    found = [o for o in options if o.name is not None and o.name.name == "sparsity"]
    if not found:
        return Sparsity(options, 0.0)
    if len(found) > 1:
        raise ev.fail("E202", "option 'sparsity' is given twice", found[1].span)
    value = ev.constant(found[0].value, scope, "a weight sparsity")
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 <= value < 1:
        raise ev.fail("E301", f"a weight sparsity is a fraction in [0, 1), not {value!r}", found[0].value.span)
    return Sparsity(tuple(o for o in options if o is not found[0]), float(value))


def _weighted(net: Network, frame: Frame, scope: Scope, source: Signal, target: Target, arrow: Arrow,
              sparsity: Sparsity, span: Span) -> None:
    """A chemical or electrical projection: wired by its rule, weighted by its own or a declared param."""
    ev = net.evaluator
    settings = _options(net, sparsity.others, scope)
    if isinstance(settings.delay, delays.Learnable) and arrow == "<->":
        raise ev.fail("E301", "a gap junction has no delay to learn", span,
                      ["learnable delays are for chemical projections, '->' or '-|'"])
    wiring = _wiring(net, settings.rule, source, target, arrow, sparsity.others, span)
    projection_id = new_projection_id(net, source.expr, arrow, target.population.name)
    handle = _weight(net, settings.weight, scope, arrow, projection_id, wiring, source, span)
    if sparsity.fraction:
        if not handle.anonymous or wiring.connectivity.rule != "all_to_all":
            raise ev.fail("E305", "weight sparsity needs a dense projection with its own weights", span,
                          ["x -> h : dense, sparsity = 0.5 (weight = a number or an init rule, not a param)"])
        handle.mask = sparsity_mask(projection_id, unit_count(target.shape), source.size, sparsity.fraction)
    weighted = units.mul(handle.init.dim, source.dim)
    if weighted != target.dim:
        raise ev.fail("E401", f"weight × source is {format_dim(weighted)} but input '{target.port}' of "
                              f"{target.population.model} takes {format_dim(target.dim)}", span,
                      ["give the weight a unit, e.g. param w : excitatory = 1 nA"])
    use = ParamUse(projection_id, wiring.synapses, wiring.natural_shape, target.population.name)
    spec = settings.delay
    learnable = _learnable_delay(net, spec, use, span) if isinstance(spec, delays.Learnable) else None
    draft = ProjectionDraft(id=projection_id, kind="electrical" if arrow == "<->" else "chemical", arrow=arrow,
                            source=source.expr, source_shape=list(source.shape), target=target.population.name,
                            target_select=select.as_list(target.population.select),
                            target_shape=list(target.shape), port=target.port, connectivity=wiring.connectivity,
                            synapses=wiring.synapses, instance=frame.instance, span=span,
                            delay=spec.max if isinstance(spec, delays.Learnable) else spec, learnable_delay=learnable)
    handle.uses.append(use)
    net.pending.append(PendingProjection(draft, handle, len(handle.uses) - 1))


def _learnable_delay(net: Network, spec: delays.Learnable, use: ParamUse, span: Span) -> ir.LearnableDelay:
    """Trainable delays: two params of the projection's own, the delays (one per synapse) and sigma."""
    learned, sigma = delays.delay_params(use.projection, spec, span)
    learned.uses.append(use)
    sigma.uses.append(ParamUse(use.projection, 1, (), use.target))
    net.params += [learned, sigma]
    return delays.ir_delay(learned, sigma, spec)


def _wiring(net: Network, rule: Rule | None, source: Signal, target: Target, arrow: Arrow,
            options: tuple[ast.Arg, ...], span: Span) -> connectivity.Wiring:
    """The synapses of the rule (all to all between single units when none is given), counted to the limit;
    gap junctions within one population as one synapse per pair."""
    ev = net.evaluator
    if rule is None:
        if source.size > 1 and len(target.shape) and unit_count(target.shape) > 1:
            raise ev.fail("E305", f"say how {format_shape(source.shape)} connects to {format_shape(target.shape)}",
                          span, ["add a rule: one_to_one, all_to_all, pairs(...) or random(p = ..., seed = ...)"])
        rule = Rule("all_to_all")
    population = target.population
    try:
        wiring = connectivity.wire(rule, source.shape, target.shape, net.limits, net.counts.synapses)
        self_loops = 0
        same = isinstance(source.expr, ir.Ref) and source.expr.source == population.name \
            and source.expr.select == select.as_list(population.select)
        if arrow == "<->" and same:
            wiring, self_loops = connectivity.symmetric(wiring)
    except Problem as error:  # the caret goes under the rule (`pairs([[0.5, 1]])`), not the whole projection
        where = next((o.value.span for o in options if o.name is None), span)
        raise ev.fail(error.code, error.message, where, list(error.notes)) from None
    if self_loops:
        net.reporter.warn("W501", f"{self_loops} self-junction{'s' * (self_loops > 1)} dropped", span)
    net.counts.synapses += wiring.synapses
    return wiring


def _operator(net: Network, frame: Frame, spec: operators.OperatorSpec, source: Signal, target: Target,
              span: Span) -> None:
    """Record an operator projection: its weights (and function-valued bias) as params of its own."""
    name = target.population.name
    projection_id = new_projection_id(net, source.expr, "->", name)
    weights = ParamHandle(f"{projection_id}.weight", "free", "none", spec.init, True, "edge", span,
                          anonymous=True)
    weights.uses.append(ParamUse(projection_id, spec.weights, (spec.weights,), name))
    net.params.append(weights)
    operator = spec.operator
    if spec.bias:
        bias = ParamHandle(f"{projection_id}.bias", "free", "none", InitRule("constant", (0.0,)),
                           True, "edge", span, anonymous=True)  # starts as the zero function
        shape = bias_shape(spec.operator, spec.channels_out)
        bias.uses.append(ParamUse(projection_id, math.prod(shape), shape, name))
        net.params.append(bias)
        operator = operator.model_copy(update={"bias": bias.name})
    args: dict[str, ir.Value] = {}
    if operator.modes:  # as written: `modes = 12`, or `modes = [12, 12]` on two axes
        args["modes"] = operator.modes[0] if len(operator.modes) == 1 else f"[{', '.join(map(str, operator.modes))}]"
    if operator.kind == "multigrid":
        args = {"levels": operator.levels, "smoothing": "/".join(map(str, operator.smoothing))}
    draft = ProjectionDraft(id=projection_id, kind="chemical", arrow="->", source=source.expr,
                            source_shape=list(source.shape), target=name,
                            target_select=select.as_list(target.population.select), target_shape=list(target.shape),
                            port=target.port, connectivity=ir.Connectivity(rule=operator.kind, args=args),
                            synapses=0, operator=operator, instance=frame.instance, span=span)
    net.pending.append(PendingProjection(draft, weights, 0))


def _options(net: Network, options: tuple[ast.Arg, ...], scope: Scope) -> ProjectionOptions:
    """The connectivity rule (the one unnamed option) and the `weight` and `delay` options."""
    ev = net.evaluator
    rule: Rule | None = None
    weight: ast.Expr | None = None
    delay: int | delays.Learnable = 0
    seen: set[str] = set()
    for option in options:
        if option.name is None:
            value = _rule(net, option, scope)
            if rule is not None:
                raise ev.fail("E305", "a projection has one connectivity rule", option.span)
            rule = value
            continue
        name = option.name.name
        if name not in _OPTIONS:
            raise ev.fail("E203", f"unknown projection option '{name}'", option.name.span,
                          [did_you_mean(name, _OPTIONS), "options: weight, delay"])
        if name in seen:
            raise ev.fail("E202", f"option '{name}' is given twice", option.name.span)
        seen.add(name)
        if name == "weight":
            weight = option.value
        else:
            delay = _delay(net, option.value, scope)
    return ProjectionOptions(rule, weight, delay)


def _rule(net: Network, option: ast.Arg, scope: Scope) -> Rule:
    """An unnamed option: the connectivity rule (`all_to_all`, `random(p = 0.1, seed = 1)`, ...)."""
    value = net.evaluator.eval(option.value, scope)
    if isinstance(value, Builtin) and value.kind == "rule":
        value = Rule(value.name)
    if not isinstance(value, Rule):
        raise net.evaluator.fail("E305", f"expected a connectivity rule, got {describe(value)}", option.span,
                                 [f"rules: {', '.join(connectivity.RULES)}; options: weight = ..., delay = ..."])
    return value


def _delay(net: Network, node: ast.Expr, scope: Scope) -> int | delays.Learnable:
    """`delay = 3` (whole steps, within the limit) or a learnable delay (`delay = learnable(max = 8)`)."""
    ev = net.evaluator
    if delays.is_learnable(node):
        return delays.learnable(ev, node, scope, net.limits.delay)  # type: ignore[arg-type]
    value = ev.constant(node, scope, "a delay")
    if isinstance(value, Quantity):
        raise ev.fail("E401", "a delay counts time steps; write a whole number", node.span)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ev.fail("E301", f"a delay is a whole number of steps >= 0, not {value!r}", node.span)
    if value > net.limits.delay:
        raise ev.fail("E705", f"a delay of {value} steps is {net.limits.over('delay')}", node.span,
                      [net.limits.hint("delay")])
    return value


def new_projection_id(net: Network, source: ir.Expr, arrow: str, target: str) -> str:
    """`A+B -> N`, numbered (`#2`, ...) when the same sources, arrow and target repeat; recorded as taken."""
    names = list(dict.fromkeys(signal_sources(source))) or ["const"]
    base = f"{'+'.join(names)} {arrow} {target}"
    k = net.id_counts[base] = net.id_counts.get(base, 0) + 1  # counted: 10^5 repeats must not rescan
    candidate = base if k == 1 else f"{base} #{k}"
    net.projection_ids.add(candidate)
    return candidate


def _weight(net: Network, node: ast.Expr | None, scope: Scope, arrow: Arrow, projection_id: str,
            wiring: connectivity.Wiring, source: Signal, span: Span) -> ParamHandle:
    """The weight: a declared param whose sign fits the arrow, or a param of the projection's own (from a
    number, an init rule, or by default uniform in ±1/sqrt(fan_in) on the arrow's side)."""
    ev = net.evaluator
    value = ev.eval(node, scope) if node is not None else None
    if isinstance(value, ParamHandle):
        if value.sign not in _SIGNS_OF_ARROWS[arrow] or (value.sign == "fixed" and not _fixed_fits(value, arrow)):
            kind = {"->": "an excitatory or free", "-|": "an inhibitory", "<->": "a non-negative"}[arrow]
            fix = {"excitatory": "->", "inhibitory": "-|"}.get(value.sign)
            raise ev.fail("E501", f"'{arrow}' needs {kind} weight, but '{value.name}' is {value.sign}",
                          node.span if node else span, [f"write '{fix}'" if fix else None])
        return value
    signs: dict[str, ir.Sign] = {"->": "free", "-|": "inhibitory", "<->": "excitatory"}
    sign = signs[arrow]
    where = node.span if node is not None else span
    if value is None:
        k = 1.0 / float(np.sqrt(_fan_in(wiring, source)))
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
        check_init_sign(ev, init, sign, enforce, where)
    handle = ParamHandle(f"{projection_id}.weight", sign, enforce, init, sign != "fixed", "edge", where,
                         anonymous=True)
    net.params.append(handle)
    return handle


def sparsity_mask(projection_id: str, targets: int, sources: int, sparsity: float) -> np.ndarray:
    """A fixed 0/1 mask over a dense [target, source] weight, round(sparsity · sources) zeros in every row at
    random places; seeded by the projection's id, so an IR is the same on every elaboration."""
    rng = np.random.default_rng(zlib.crc32(projection_id.encode()))
    zeros = round(sparsity * sources)
    mask = np.ones((targets, sources), dtype=np.int32)
    for row in mask:
        row[rng.permutation(sources)[:zeros]] = 0
    return mask.ravel()


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
    """Whether a fixed param's values have the arrow's sign: its constant, its data, or the array `from_file`
    read (a fixed param's values are given, never drawn)."""
    init = handle.init
    if isinstance(init, ShapedRule) and init.data is not None:
        values = np.asarray(init.data, dtype=np.float64).ravel()
    else:
        values = np.asarray(init.values if init.values is not None else init.args[:1], dtype=np.float64)
    if not values.size:
        return True
    return bool(values.max() <= 0) if arrow == "-|" else bool(values.min() >= 0)
