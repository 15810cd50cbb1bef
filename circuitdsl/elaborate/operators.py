"""Fields: `grid(...)` axes, and operator projections between populations on them.

`x = grid(128, domain = [0, 1], periodic)` makes an axis a discretised interval.  A projection between two
populations on the same grid is an operator when one of its options is `operator(spectral, modes = m)`,
`operator(multigrid, levels = L, smoothing = [pre, post])` (either optionally `... over x`, naming the grid
axis) or `dense over channel`; `bias = function` adds a learnable function per output channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from circuitdsl import ast
from circuitdsl.backends.operators import init_scale, weight_count
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import describe
from circuitdsl.errors import Span, did_you_mean
from circuitdsl.ir import model as ir

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator

KINDS = ("spectral", "multigrid")
_SETTINGS = {"spectral": ("modes",), "multigrid": ("levels", "smoothing")}


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
    over = value.axis if isinstance(value, ast.Over) else None
    call = value.value if isinstance(value, ast.Over) else value
    bias = _bias(ev, others, option)
    grid_axes = [a for a in target if a.domain is not None]
    if isinstance(call, ast.Name) and call.id == "dense" and over is not None:
        operator, grid_used = _dense(ev, over, source, target), grid_axes
    elif _is_call(call, "operator"):
        operator, grid_used = _operator(ev, call, over, scope, grid_axes, span)  # type: ignore[arg-type]
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


def _dense(ev: Evaluator, over: ast.Ident, source: tuple[ir.Axis, ...], target: tuple[ir.Axis, ...]) -> ir.Operator:
    """`dense over channel`: the named axis is the one axis that is not a grid of the target (of the source when
    the target is a single channel)."""
    plain = [a.name for a in target if a.domain is None] or [a.name for a in source if a.domain is None]
    if over.name not in plain:
        raise ev.fail("E304", f"the target has no channel axis '{over.name}'", over.span,
                      [did_you_mean(over.name, plain), f"axes: {', '.join(a.name for a in target)}"])
    return ir.Operator(kind="dense", axes=[a.name for a in target if a.domain is not None], channel=over.name)


def _operator(ev: Evaluator, call: ast.Call, over: ast.Ident | None, scope: Scope, grid_axes: list[ir.Axis],
              span: Span) -> tuple[ir.Operator, list[ir.Axis]]:
    """`operator(spectral, modes = m)` or `operator(multigrid, levels = L, smoothing = [pre, post])`."""
    positional = [a for a in call.args if a.name is None]
    if len(positional) != 1 or not isinstance(positional[0].value, ast.Name):
        raise ev.fail("E204", "operator() needs its kind first: spectral or multigrid", call.span,
                      ["operator(spectral, modes = 16), operator(multigrid, levels = 4)"])
    kind_node = positional[0].value
    if kind_node.id not in KINDS:
        raise ev.fail("E201", f"unknown operator '{kind_node.id}'", kind_node.span,
                      [did_you_mean(kind_node.id, KINDS), f"operators: {', '.join(KINDS)}"])
    kind = kind_node.id
    if over is not None:
        if over.name not in [a.name for a in grid_axes]:
            raise ev.fail("E304", f"'{over.name}' is not a grid axis of the target", over.span,
                          [did_you_mean(over.name, [a.name for a in grid_axes]),
                           "declare it as one: x = grid(128, domain = [0, 1], periodic)"])
        grid_axes = [a for a in grid_axes if a.name == over.name]
    if len(grid_axes) != 1:
        raise ev.fail("E304", f"an operator acts on one grid axis; the target has {len(grid_axes)}", span,
                      ["declare one axis as x = grid(128, domain = [0, 1], periodic)"])
    axis = grid_axes[0]
    if axis.domain is None or not axis.domain.periodic:
        raise ev.fail("E304", f"grid axis '{axis.name}' must be periodic for a {kind} operator", span,
                      ["write grid(..., periodic): FFTs and the V-cycle's convolutions wrap around"])
    settings: dict[str, object] = {}
    for arg in call.args:
        if arg.name is None:
            continue
        if arg.name.name not in _SETTINGS[kind]:
            raise ev.fail("E203", f"a {kind} operator takes no setting '{arg.name.name}'", arg.name.span,
                          [did_you_mean(arg.name.name, _SETTINGS[kind]), f"settings: {', '.join(_SETTINGS[kind])}"])
        settings[arg.name.name] = (ev.constant(arg.value, scope, f"the setting '{arg.name.name}'"), arg.value.span)
    if kind == "spectral":
        return _spectral(ev, settings, axis, call.span), [axis]
    return _multigrid(ev, settings, axis, call.span), [axis]


def _whole(ev: Evaluator, value: object, at: Span, what: str, least: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < least:
        raise ev.fail("E301", f"{what} is a whole number >= {least}, not {describe(value)}", at)
    return value


def _spectral(ev: Evaluator, settings: dict[str, object], axis: ir.Axis, span: Span) -> ir.Operator:
    if "modes" not in settings:
        raise ev.fail("E204", "a spectral operator needs modes = m (the m lowest frequencies it keeps)", span)
    value, at = settings["modes"]  # type: ignore[misc]
    modes = _whole(ev, value, at, "modes", 1)
    if modes > axis.size // 2 + 1:
        raise ev.fail("E304", f"{modes} modes do not fit a grid of {axis.size} points (at most {axis.size // 2 + 1})",
                      at)
    return ir.Operator(kind="spectral", axes=[axis.name], modes=[modes])


def _multigrid(ev: Evaluator, settings: dict[str, object], axis: ir.Axis, span: Span) -> ir.Operator:
    if "levels" not in settings:
        raise ev.fail("E204", "a multigrid operator needs levels = L (the grids of its V-cycle)", span)
    value, at = settings["levels"]  # type: ignore[misc]
    levels = _whole(ev, value, at, "levels", 1)
    if axis.size % 2 ** (levels - 1):
        raise ev.fail("E304", f"{levels} levels halve the grid {levels - 1} times, but {axis.size} points do not "
                              f"divide by {2 ** (levels - 1)}", at)
    smoothing = [1, 1]
    if "smoothing" in settings:
        value, at = settings["smoothing"]  # type: ignore[misc]
        if not (isinstance(value, list) and len(value) == 2):
            raise ev.fail("E301", f"smoothing is [pre, post] steps, not {describe(value)}", at)
        smoothing = [_whole(ev, v, at, "a smoothing count", 0) for v in value]
    return ir.Operator(kind="multigrid", axes=[axis.name], levels=levels, smoothing=smoothing)


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
