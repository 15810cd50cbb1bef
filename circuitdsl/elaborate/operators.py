"""Fields: `grid(...)` axes, and operator projections between populations on them.

`x = grid(128, domain = [0, 1], periodic)` makes an axis a discretised interval.  A projection between two
populations on the same grid (one or two grid axes, each periodic or not) is an operator when one of its
options is `operator(spectral, modes = m)` (`modes = [m1, m2]` on two axes), `operator(multigrid, levels = L,
smoothing = [pre, post])` (either optionally `... over x, y`, naming the grid axes: all of the target's, in its
order) or `dense over channel`; `bias = function` adds a learnable function per output channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from circuitdsl import ast
from circuitdsl.elaborate import axis_maps
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import InitRule, describe
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.ir.operators import coarsens, init_scale, most_modes, weight_count

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator

KINDS = ("spectral", "multigrid")
_SETTINGS = {"spectral": ("modes",), "multigrid": ("levels", "smoothing")}
MAX_AXES = 2  # the grid axes one operator acts on: a line or a rectangle


@dataclass(frozen=True)
class Grid:
    """The value of `grid(n, domain = [low, high], periodic)`: an axis size with its domain."""

    size: int
    domain: ir.Domain


@dataclass(frozen=True)
class OperatorSpec:
    """An operator projection as elaborated: its IR record (bias still unnamed), channels, and grid size."""

    operator: ir.Operator
    channels_in: int
    channels_out: int
    bias: bool

    @property
    def weights(self) -> int:
        """How many scalars its weight param holds."""
        return weight_count(self.operator, self.channels_in, self.channels_out)

    @property
    def scale(self) -> float:
        """The standard deviation of its weights' normal init."""
        return init_scale(self.operator, self.channels_in, self.channels_out)

    @property
    def init(self) -> InitRule:
        """How its weights start: normal with `scale`, but a layer norm's scale at 1."""
        if self.operator.kind == "layer_norm":
            return InitRule("constant", (1.0,))
        return InitRule("normal", (0.0, self.scale))


def grid(ev: Evaluator, node: ast.Call, scope: Scope) -> Grid:
    """`grid(n, domain = [low, high], periodic)`: n >= 2 points; the domain defaults to [0, 1]."""
    size: int | None = None
    low, high, periodic = 0.0, 1.0, False
    for arg in node.args:
        if arg.name is None and isinstance(arg.value, ast.Name) and size is not None:
            if arg.value.id != "periodic":
                raise ev.fail("E203", f"unknown grid flag '{arg.value.id}'", arg.value.span,
                              [did_you_mean(arg.value.id, ["periodic"]), "flags: periodic"])
            periodic = True
        elif arg.name is None and size is None:
            size = ev.integer(arg.value, scope, "the points of a grid")
            if size < 2:
                raise ev.fail("E304", f"a grid needs at least 2 points, not {size}", arg.value.span)
            if size > ev.limits.grid_points:
                raise ev.fail("E707", f"a grid of {size} points is {ev.limits.over('grid_points')}", arg.value.span,
                              [ev.limits.hint("grid_points")])
        elif arg.name is not None and arg.name.name == "domain":
            bounds = ev.constant(arg.value, scope, "a grid's domain")
            if not (isinstance(bounds, list) and len(bounds) == 2
                    and all(isinstance(b, int | float) and not isinstance(b, bool) for b in bounds)
                    and bounds[0] < bounds[1]):
                raise ev.fail("E301", f"a domain is [low, high] with low < high, not {describe(bounds)}",
                              arg.value.span, ["e.g. domain = [0, 1]"])
            low, high = float(bounds[0]), float(bounds[1])
        else:
            where = arg.name.span if arg.name is not None else arg.value.span
            raise ev.fail("E203", "grid() takes the number of points, domain = [low, high] and periodic", where,
                          [did_you_mean(arg.name.name, ["domain"]) if arg.name is not None else None,
                           "e.g. grid(128, domain = [0, 1], periodic)"])
    if size is None:
        raise ev.fail("E204", "grid() needs its number of points", node.span, ["e.g. grid(128)"])
    return Grid(size, ir.Domain(low=low, high=high, periodic=periodic))


def operator_option(options: tuple[ast.Arg, ...]) -> ast.Arg | None:
    """The option that makes a projection an operator (`operator(...)`, `... over axis`), if any."""
    for option in options:
        value = option.value
        if option.name is None and (isinstance(value, ast.Over) or _is_call(value, "operator")):
            return option
    return None


def _is_call(node: ast.Expr, name: str) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name


def parse(ev: Evaluator, option: ast.Arg, others: tuple[ast.Arg, ...], scope: Scope, source: tuple[ir.Axis, ...],
          target: tuple[ir.Axis, ...], span: Span) -> OperatorSpec:
    """The operator a projection from `source` to `target` axes is, checked against both shapes."""
    value = option.value
    if axis_maps.applies(value, source, target):
        return OperatorSpec(*axis_maps.parse(ev, option, others, source, target))
    over = value.axes if isinstance(value, ast.Over) else ()
    call = value.value if isinstance(value, ast.Over) else value
    bias = _bias(ev, others, option)
    grid_axes = [a for a in target if a.domain is not None]
    if isinstance(call, ast.Name) and call.id == "dense" and over:
        operator, grid_used = _dense(ev, over, source, target), grid_axes
    elif _is_call(call, "operator"):
        grid_used = _grid(ev, over, grid_axes, span)
        operator = _operator(ev, call, scope, grid_used)  # type: ignore[arg-type]
    else:
        raise ev.fail("E305", "'over' follows `dense` or `operator(...)`", call.span,
                      ["dense over channel, or operator(spectral, modes = 16) over x"])
    channels_in = _field(ev, source, grid_used, "source", span)
    channels_out = _field(ev, target, grid_used, "target", span)
    return OperatorSpec(operator, channels_in, channels_out, bias)


def _bias(ev: Evaluator, others: tuple[ast.Arg, ...], option: ast.Arg) -> bool:
    """Whether `bias = function` is given; any other option (a rule, a weight, a delay) is a mistake."""
    bias = False
    for other in others:
        if other is option:
            continue
        name = other.name.name if other.name is not None else None
        if name == "bias" and isinstance(other.value, ast.Name) and other.value.id == "function":
            bias = True
            continue
        where = other.name.span if other.name is not None else other.span
        if name == "bias":
            raise ev.fail("E301", "an operator's bias is `bias = function`: a learnable function per channel",
                          other.value.span)
        raise ev.fail("E203", f"an operator projection takes no option {('`' + name + '`') if name else 'rule'}",
                      where, [did_you_mean(name, ["bias"]) if name else None,
                              "its weights are the operator's own; options: bias = function"])
    return bias


def _dense(ev: Evaluator, over: tuple[ast.Ident, ...], source: tuple[ir.Axis, ...],
           target: tuple[ir.Axis, ...]) -> ir.Operator:
    """`dense over channel`: the named axis is the one axis that is not a grid of the target (of the source when
    the target is a single channel)."""
    plain = [a.name for a in target if a.domain is None] or [a.name for a in source if a.domain is None]
    channel, *more = over
    if channel.name not in plain:
        raise ev.fail("E304", f"the target has no channel axis '{channel.name}'", channel.span,
                      [did_you_mean(channel.name, plain), f"axes: {', '.join(a.name for a in target)}"])
    if more:
        raise ev.fail("E304", f"dense mixes one channel axis, not also '{more[0].name}'", more[0].span,
                      ["an operator projection takes no rule; its options: bias = function"])
    grid = [a for a in target if a.domain is not None]
    return ir.Operator(kind="dense", axes=[a.name for a in grid], periodic=_periodic(grid), channel=channel.name)


def _periodic(axes: list[ir.Axis]) -> list[bool]:
    """Whether each grid axis wraps around."""
    return [a.domain is not None and a.domain.periodic for a in axes]


def _grid(ev: Evaluator, over: tuple[ast.Ident, ...], grid_axes: list[ir.Axis], span: Span) -> list[ir.Axis]:
    """The grid axes an `operator(...)` acts on: those named after `over`, which must be all of the target's in
    its order (one or two), or all of them when `over` is left out."""
    names = [a.name for a in grid_axes]
    for i, axis in enumerate(over):
        if axis.name not in names:
            raise ev.fail("E304", f"'{axis.name}' is not a grid axis of the target", axis.span,
                          [did_you_mean(axis.name, names), "declare it as one: x = grid(128, domain = [0, 1], periodic)"])
        if axis.name in [a.name for a in over[:i]]:
            raise ev.fail("E304", f"grid axis '{axis.name}' is named twice", axis.span)
    if over and [a.name for a in over] != names:
        raise ev.fail("E304", f"an operator acts on every grid axis of its field, in order: over {', '.join(names)}",
                      over[0].span.model_copy(update={"end_line": over[-1].span.end_line,
                                                      "end_column": over[-1].span.end_column}))
    if not 1 <= len(grid_axes) <= MAX_AXES:
        raise ev.fail("E304", f"an operator acts on one or two grid axes; the target has {len(grid_axes)}", span,
                      ["declare an axis as x = grid(128, domain = [0, 1], periodic)"])
    return grid_axes


def _operator(ev: Evaluator, call: ast.Call, scope: Scope, axes: list[ir.Axis]) -> ir.Operator:
    """`operator(spectral, modes = m)` or `operator(multigrid, levels = L, smoothing = [pre, post])` on `axes`."""
    positional = [a for a in call.args if a.name is None]
    if len(positional) != 1 or not isinstance(positional[0].value, ast.Name):
        raise ev.fail("E204", "operator() needs its kind first: spectral or multigrid", call.span,
                      ["operator(spectral, modes = 16), operator(multigrid, levels = 4)"])
    kind_node = positional[0].value
    if kind_node.id not in KINDS:
        raise ev.fail("E201", f"unknown operator '{kind_node.id}'", kind_node.span,
                      [did_you_mean(kind_node.id, KINDS), f"operators: {', '.join(KINDS)}"])
    kind = kind_node.id
    settings: dict[str, tuple[object, Span]] = {}
    for arg in call.args:
        if arg.name is None:
            continue
        if arg.name.name not in _SETTINGS[kind]:
            raise ev.fail("E203", f"a {kind} operator takes no setting '{arg.name.name}'", arg.name.span,
                          [did_you_mean(arg.name.name, _SETTINGS[kind]), f"settings: {', '.join(_SETTINGS[kind])}"])
        settings[arg.name.name] = (ev.constant(arg.value, scope, f"the setting '{arg.name.name}'"), arg.value.span)
    if kind == "spectral":
        return _spectral(ev, settings, axes, call.span)
    return _multigrid(ev, settings, axes, call.span)


def _whole(ev: Evaluator, value: object, at: Span, what: str, least: int, limit: str) -> int:
    """A whole number >= least, and within the limit named `limit` (E707, before anything is sized by it)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ev.fail("E301", f"{what} is a whole number >= {least}, not {describe(value)}", at)
    if value > getattr(ev.limits, limit):
        raise ev.fail("E707", f"{what} {value} is {ev.limits.over(limit)}", at, [ev.limits.hint(limit)])
    return value


def _spectral(ev: Evaluator, settings: dict[str, tuple[object, Span]], axes: list[ir.Axis], span: Span) -> ir.Operator:
    """`modes = m` on one grid axis, `modes = [m1, m2]` on two, each fitting its axis (`most_modes`)."""
    if "modes" not in settings:
        raise ev.fail("E204", "a spectral operator needs modes = m (the m lowest frequencies it keeps)", span,
                      ["modes = [m1, m2] on two grid axes"])
    value, at = settings["modes"]
    values = value if isinstance(value, list) else [value]
    if len(values) != len(axes):
        names = ", ".join(a.name for a in axes)
        raise ev.fail("E301", f"modes are one whole number per grid axis ({names}), not {describe(value)}", at,
                      ["modes = [12, 12] over x, y" if len(axes) > 1 else "modes = 12"])
    modes = [_whole(ev, v, at, "modes", 1, "modes") for v in values]
    for i, (m, axis, periodic) in enumerate(zip(modes, axes, _periodic(axes))):
        most = most_modes(axis.size, periodic, last=i == len(axes) - 1)
        if m > most:
            raise ev.fail("E304", f"{m} modes do not fit {'' if periodic else 'non-periodic '}grid axis "
                                  f"'{axis.name}' of {axis.size} points (at most {most})", at,
                          [None if i == len(axes) - 1 else "on every axis but the last, m modes keep 2m - 1 "
                                                           "frequencies |k| < m"])
    return ir.Operator(kind="spectral", axes=[a.name for a in axes], periodic=_periodic(axes), modes=modes)


def _multigrid(ev: Evaluator, settings: dict[str, tuple[object, Span]], axes: list[ir.Axis],
               span: Span) -> ir.Operator:
    """`levels = L` (every grid axis halving L - 1 times) and `smoothing = [pre, post]` (default [1, 1])."""
    if "levels" not in settings:
        raise ev.fail("E204", "a multigrid operator needs levels = L (the grids of its V-cycle)", span)
    value, at = settings["levels"]
    levels = _whole(ev, value, at, "levels", 1, "smoothing")
    step = 2 ** (levels - 1)
    for axis, periodic in zip(axes, _periodic(axes)):
        if not coarsens(axis.size, periodic, levels):
            rule = f"do not divide by {step}" if periodic else f"are not {step} k + 1 (both ends stay grid points)"
            nearest = axis.size + (-axis.size if periodic else 1 - axis.size) % step
            raise ev.fail("E304", f"{levels} levels halve the grid {levels - 1} times, but the {axis.size} points of "
                                  f"{'' if periodic else 'non-periodic '}'{axis.name}' {rule}", at,
                          [f"e.g. {nearest} points"])
    smoothing = [1, 1]
    if "smoothing" in settings:
        value, at = settings["smoothing"]
        if not (isinstance(value, list) and len(value) == 2):
            raise ev.fail("E301", f"smoothing is [pre, post] steps, not {describe(value)}", at)
        smoothing = [_whole(ev, v, at, "a smoothing count", 0, "smoothing") for v in value]
    return ir.Operator(kind="multigrid", axes=[a.name for a in axes], periodic=_periodic(axes), levels=levels,
                       smoothing=smoothing, points=[a.size for a in axes])


def _field(ev: Evaluator, shape: tuple[ir.Axis, ...], grid_axes: list[ir.Axis], side: str, span: Span) -> int:
    """The channels of one side: its axes are at most one channel axis, then exactly the operator's grid."""
    names = [(a.name, a.size, a.domain) for a in grid_axes]
    tail = [(a.name, a.size, a.domain) for a in shape[len(shape) - len(grid_axes):]] if grid_axes else []
    head = shape[: len(shape) - len(grid_axes)]
    if tail != names or len(head) > 1 or any(a.domain is not None for a in head):
        wanted = " × ".join([*(["channel"] if side == "target" else ["[channel]"]), *(a.name for a in grid_axes)])
        raise ev.fail("E302", f"the {side} of an operator is laid out {wanted} on the same grid, not "
                              f"{' × '.join(f'{a.name}={a.size}' for a in shape) or 'one unit'}", span,
                      ["both ends carry the same grid axis (name, points, domain) last"])
    return head[0].size if head else 1
