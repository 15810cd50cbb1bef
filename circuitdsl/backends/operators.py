"""Operator projections between fields on a periodic 1D grid, written once against the backends' op table.

A field population is flat per unit in the step ([batch, channel * x]); here it is [batch, channel, x].
Every operator's weights are one flat param, laid out by `layout`; nothing here depends on the grid's size, so
a model trained at one resolution runs at another (`CircuitIR.at_resolution`).

- spectral (FNO): Fourier coefficients c_k = (1/n) sum_j u_j exp(-2 pi i k j / n) (rfft, 'forward' norm) of the
  `modes` lowest frequencies k = 0 .. modes - 1 are mixed over channels by complex weights R[in, out, k]; the
  others are dropped; the inverse rfft ('forward' norm: no 1/n) gives the field back.  `modes = m` keeps m
  coefficients; neuraloperator's `n_modes = m` keeps m // 2 + 1 on the last axis.
- multigrid (MgNO): a V-cycle over `levels` grids, each coarser by 2: smooth u <- u + S (f - A u), restrict the
  residual and the iterate (3-tap convolutions with stride 2), then back up, adding the prolonged correction
  (zeros inserted, then a 3-tap convolution) and smoothing again.  All convolutions wrap around (periodic).
- dense: a matrix over channels at every grid point (a 1x1 convolution).
A function-valued bias is a short Fourier series per output channel (`bias`).
"""

from __future__ import annotations

import math
from typing import Any

from circuitdsl.ir.model import Operator

Array = Any

Layout = list[tuple[str, tuple[int, ...]]]


def layout(operator: Operator, channels_in: int, channels_out: int) -> Layout:
    """The named blocks of an operator's flat weight param, in order, each with its shape."""
    if operator.kind == "dense":
        return [("matrix", (channels_out, channels_in))]
    if operator.kind == "spectral":
        return [("real", (channels_in, channels_out, operator.modes[0])),
                ("imag", (channels_in, channels_out, operator.modes[0]))]
    blocks: Layout = [("lift", (channels_out, channels_in, 3))]
    for level in range(operator.levels):
        blocks += [(f"A{level}", (channels_in, channels_out, 3)), (f"S{level}", (channels_out, channels_in, 3))]
        if level < operator.levels - 1:
            blocks += [(f"R{level}", (channels_in, channels_in, 3)), (f"Pi{level}", (channels_out, channels_out, 3)),
                       (f"P{level}", (channels_out, channels_out, 3))]
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
        return 0.25 / math.sqrt(3 * max(channels_in, channels_out))
    return 1.0 / math.sqrt(channels_in)


def unpack(flat: Array, blocks: Layout) -> dict[str, Array]:
    """The flat weights split into their named blocks."""
    out, start = {}, 0
    for name, shape in blocks:
        size = math.prod(shape)
        out[name] = flat[start:start + size].reshape(shape)
        start += size
    return out


def apply(operator: Operator, flat: Array, u: Array, channels_out: int, ops: Any) -> Array:
    """The operator on fields u [batch, in, x]: [batch, out, x]."""
    w = unpack(flat, layout(operator, u.shape[1], channels_out))
    if operator.kind == "dense":
        return ops.einsum("oi,bix->box", w["matrix"], u)
    if operator.kind == "spectral":
        return spectral(u, ops.complex(w["real"], w["imag"]), ops)
    return v_cycle(u, w, operator.levels, operator.smoothing, ops)


def spectral(u: Array, weights: Array, ops: Any) -> Array:
    """FFT, complex channel mixing on the kept modes (weights [in, out, modes]), inverse FFT; [batch, out, x]."""
    n = u.shape[-1]
    modes = weights.shape[-1]
    coefficients = ops.rfft(u)[..., :modes]
    return ops.irfft(ops.einsum("bik,iok->bok", coefficients, weights), n)


def conv(x: Array, w: Array, ops: Any) -> Array:
    """A periodic 3-tap cross-correlation over the last axis: x [batch, in, n], w [out, in, 3] -> [batch, out, n]."""
    left, right = ops.roll(x, 1), ops.roll(x, -1)  # x[j - 1] and x[j + 1] at j
    return (ops.einsum("oi,bin->bon", w[:, :, 0], left) + ops.einsum("oi,bin->bon", w[:, :, 1], x)
            + ops.einsum("oi,bin->bon", w[:, :, 2], right))


def prolong(x: Array, w: Array, ops: Any) -> Array:
    """Twice the points: zeros inserted after every point, then a 3-tap convolution (a learnable interpolation)."""
    batch, channels, n = x.shape
    spread = ops.stack([x, x * 0.0], -1).reshape(batch, channels, 2 * n)
    return conv(spread, w, ops)


def v_cycle(f: Array, w: dict[str, Array], levels: int, smoothing: list[int], ops: Any) -> Array:
    """MgNO's V-cycle: u = S f, smoothed, restricted down `levels - 1` times, corrected and smoothed on the way up."""
    pre, post = smoothing
    u = conv(f, w["lift"], ops)
    rights, iterates = [], []
    for level in range(levels):
        for _ in range(pre):
            u = u + conv(f - conv(u, w[f"A{level}"], ops), w[f"S{level}"], ops)
        rights.append(f)
        iterates.append(u)
        if level < levels - 1:
            residual = f - conv(u, w[f"A{level}"], ops)
            f = conv(residual, w[f"R{level}"], ops)[..., ::2]
            u = conv(u, w[f"Pi{level}"], ops)[..., ::2]
    for level in range(levels - 2, -1, -1):
        u = iterates[level] + prolong(u, w[f"P{level}"], ops)
        for _ in range(post):
            u = u + conv(rights[level] - conv(u, w[f"A{level}"], ops), w[f"S{level}"], ops)
    return u


BIAS_MODES = 8
"""A function-valued bias is the real Fourier series of its BIAS_MODES lowest frequencies per output channel,
so it is smooth and the same function at every resolution."""


def bias(coefficients: Array, n: int, ops: Any) -> Array:
    """The bias [out, n] at n points from its coefficients [out, 2, BIAS_MODES] (real and imaginary parts)."""
    return ops.irfft(ops.complex(coefficients[:, 0], coefficients[:, 1]), n)
