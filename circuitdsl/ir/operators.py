"""What an operator projection's params are, as pure data: the layout of its flat weights, their init, its
function-valued bias's shape, and the sizes its grid axes admit.  Elaboration and the backends both read it;
the semantics are in circuitdsl/backends/operators.py.

A non-periodic axis is zero-padded for the FFT by a quarter of its length (`padded`), so the periodic
extension the FFT sees has period 1.25 * (high - low) at every resolution (exactly when n - 1 divides by 4).
"""

from __future__ import annotations

import math

from circuitdsl.ir.model import Operator

Layout = list[tuple[str, tuple[int, ...]]]

PAD = 0.25
"""The zeros a non-periodic axis gets before an FFT, as a fraction of its length."""

BIAS_MODES = 8
"""A function-valued bias is a series of 2 * BIAS_MODES - 1 smooth functions per grid axis (1, cos and sin of the
BIAS_MODES - 1 lowest nonzero frequencies on a periodic axis; cosines of as many half-frequencies on another),
their tensor product on a 2D grid, with one coefficient each per output channel: the same function at every
resolution."""


def window(operator: Operator) -> tuple[int, ...]:
    """The kept Fourier coefficients of a spectral operator per axis: |k| < m (2m - 1 of them) on every axis
    but the last, and k = 0 .. m - 1 on the last (the rfft axis)."""
    return (*(2 * m - 1 for m in operator.modes[:-1]), operator.modes[-1])


def layout(operator: Operator, channels_in: int, channels_out: int) -> Layout:
    """The named blocks of an operator's flat weight param, in order, each with its shape."""
    if operator.kind in ("dense", "linear"):
        return [("matrix", (channels_out, channels_in))]
    if operator.kind == "layer_norm":
        return [("scale", (channels_out,))]
    if operator.kind == "spectral":
        return [("real", (channels_in, channels_out, *window(operator))),
                ("imag", (channels_in, channels_out, *window(operator)))]
    taps = (3,) * len(operator.axes)
    blocks: Layout = [("lift", (channels_out, channels_in, *taps))]
    for level in range(operator.levels):
        blocks += [(f"A{level}", (channels_in, channels_out, *taps)), (f"S{level}", (channels_out, channels_in, *taps))]
        if level < operator.levels - 1:
            blocks += [(f"R{level}", (channels_in, channels_in, *taps)),
                       (f"Pi{level}", (channels_out, channels_out, *taps)),
                       (f"P{level}", (channels_out, channels_out, *taps))]
    return blocks


def weight_count(operator: Operator, channels_in: int, channels_out: int) -> int:
    """How many scalars the operator's weight param holds."""
    return sum(math.prod(shape) for _, shape in layout(operator, channels_in, channels_out))


def init_scale(operator: Operator, channels_in: int, channels_out: int) -> float:
    """The standard deviation of the weights' normal init: neuraloperator's sqrt(2 / (in + out)) for spectral
    weights (split over the real and imaginary parts), 1/sqrt(fan in) for matrices, and a quarter of that for
    the V-cycle's convolutions (which compose: at full scale a 4-layer network's output starts ~1e5 too large)."""
    if operator.kind == "spectral":
        return math.sqrt(1.0 / (channels_in + channels_out))
    if operator.kind == "multigrid":
        return 0.25 / math.sqrt(3 ** len(operator.axes) * max(channels_in, channels_out))
    if operator.kind == "layer_norm":  # its scale starts at exactly 1 (circuitdsl/elaborate/axis_ops.py)
        return 0.0
    return 1.0 / math.sqrt(channels_in)


def bias_shape(operator: Operator, channels_out: int) -> tuple[int, ...]:
    """The shape of a function-valued bias's coefficients: per output channel, one per basis function (a plain
    vector [out] for the operators on named axes, which have no grid)."""
    if operator.kind in ("linear", "layer_norm"):
        return (channels_out,)
    return (channels_out, *(2 * BIAS_MODES - 1 for _ in operator.axes))


def padded(points: int, periodic: bool) -> int:
    """The points an axis has for the FFT: as many when periodic, else a quarter of its length more."""
    return points if periodic else points - 1 + math.ceil((points - 1) * PAD)


def most_modes(points: int, periodic: bool, last: bool) -> int:
    """The most modes a spectral operator keeps on an axis of `points` points: m with m <= n // 2 + 1 on the
    last (rfft) axis and 2m - 1 <= n on another, n being the FFT's size."""
    n = padded(points, periodic)
    return n // 2 + 1 if last else (n + 1) // 2


def coarsens(points: int, periodic: bool, levels: int) -> bool:
    """Whether an axis halves `levels - 1` times: n divides by 2^(levels - 1) on a periodic axis, n - 1 on another
    (its end points stay grid points on every level)."""
    return (points - (0 if periodic else 1)) % 2 ** (levels - 1) == 0
