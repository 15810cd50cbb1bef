"""Operator projections between fields on one or two grid axes, written once against the backends' op table.

A field population is flat per unit in the step ([batch, channel * x * y]); here it is [batch, channel, x, y],
the grid axes last.  Every operator's weights are one flat param, laid out by circuitdsl/ir/operators.py;
nothing here depends on the grid's size, so a model trained at one resolution runs at another
(`CircuitIR.at_resolution`).  A non-periodic axis (both end points on the grid) is zero-padded by a quarter
of its length before an FFT and cropped after (`padded`: the FFT's period is 1.25 times the domain at every
resolution); its convolutions see zeros beyond its ends.

- spectral (FNO): the Fourier coefficients (rfftn over the grid axes, 'forward' norm: c = mean of u times
  exp(-2 pi i k . j / n)) in a window of low frequencies are mixed over channels by complex weights
  R[in, out, *window]; the others are dropped; the inverse rfftn ('forward' norm) gives the field back.  1D
  `modes = m` keeps k = 0 .. m - 1 (neuraloperator's `n_modes = m` keeps m // 2 + 1 on the last axis).  2D
  `modes = [m1, m2]` keeps |k1| < m1 on the first axis (2 m1 - 1 of them, in FFT order 0 .. m1 - 1, -(m1 - 1)
  .. -1) and k2 = 0 .. m2 - 1 on the last (rfft) axis: neuraloperator's SpectralConv with
  n_modes = (2 m1 - 1, 2 m2 - 1).
- multigrid (MgNO): a V-cycle over `levels` grids, each coarser by 2 on every grid axis: smooth
  u <- u + S (f - A u), restrict the residual and the iterate (3-tap, 3x3 in 2D, convolutions with stride 2),
  then back up, adding the prolonged correction (zeros inserted, then a convolution) and smoothing again.
  Convolutions wrap around a periodic axis; a non-periodic one (2^(levels-1) k + 1 points, so both ends stay
  grid points on every level) is zero-padded.
  A 3-tap stencil spans grid points, so the V-cycle always runs on the grid the operator was elaborated at
  (`Operator.points`: its stencils are fixed in domain units); at any other size the input is resampled to
  that grid and the output back (`resample`), so outputs converge as the grid is refined.
- dense: a matrix over channels at every grid point (a 1x1 convolution).
A function-valued bias is a short series of smooth functions per output channel (`bias`, `bias_basis`): on a
periodic axis 1 and the cosines and sines of the lowest frequencies, on another a cosine series (its even
extension is smooth, so the ends are not pinned), their tensor product in 2D.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from circuitdsl.ir.model import Operator
from circuitdsl.ir.operators import BIAS_MODES, Layout, layout, padded

Array = Any

_GRID, _TAPS = "xyzw", "PQRS"  # einsum letters of the grid axes and of a bias's basis functions

Resampling = tuple[int, int, bool, float]
"""One axis's resampling: (points from, points to, periodic, band), `resampling`'s arguments."""


def unpack(flat: Array, blocks: Layout) -> dict[str, Array]:
    """The flat weights split into their named blocks."""
    out, start = {}, 0
    for name, shape in blocks:
        size = math.prod(shape)
        out[name] = flat[start:start + size].reshape(shape)
        start += size
    return out


def apply(operator: Operator, flat: Array, u: Array, channels_out: int, ops: Any,
          matrices: Mapping[Resampling, Array]) -> Array:
    """The operator on fields u [batch, in, *grid]: [batch, out, *grid]; `matrices`: the backend's arrays of the
    resamplings it reads (`resamplings`), made once per compile."""
    w = unpack(flat, layout(operator, u.shape[1], channels_out))
    if operator.kind == "dense":
        return ops.einsum("oi,bi...->bo...", w["matrix"], u)
    if operator.kind == "spectral":
        return spectral(u, ops.complex(w["real"], w["imag"]), ops, operator.periodic)
    grid, periodic = list(u.shape[2:]), operator.periodic
    coarse = resample(u, operator.points, periodic, ops, matrices=matrices)
    out = v_cycle(coarse, w, operator.levels, operator.smoothing, periodic, ops)
    return resample(out, grid, periodic, ops, OUTPUT_BAND, matrices)


def resamplings(operator: Operator, grid: Sequence[int]) -> list[Resampling]:
    """The resamplings `apply` reads for an operator on fields of `grid` points: a multigrid operator's input to
    the points its V-cycle runs at, and its output back (`resample` skips an axis whose size stays, unless it
    cuts frequencies)."""
    if operator.kind != "multigrid":
        return []
    assert operator.points is not None
    return [(n, m, wrap, band)
            for before, after, band in ((grid, operator.points, 0.5), (operator.points, grid, OUTPUT_BAND))
            for n, m, wrap in zip(before, after, operator.periodic) if n != m or (wrap and band < 0.5)]


OUTPUT_BAND = 0.25
"""A multigrid operator's output keeps the frequencies |k| <= n / 4 of its grid's n points on a periodic axis,
those the V-cycle's second grid resolves: the finest grid's 3-tap stencils make grid-scale content that is no
function on the domain, and a model trained on it errs between the points of a finer grid (a tanh MgNO on
Burgers, 60 epochs: 0.047 at 128 points, 0.18 and 0.19 at 256 and 512 without the cut; 0.046 at all three
with it)."""


def resample(u: Array, sizes: list[int], periodic: list[bool], ops: Any, band: float = 0.5,
             matrices: Mapping[Resampling, Array] | None = None) -> Array:
    """u [..., *grid] with its trailing len(sizes) axes at `sizes` points, one axis at a time (the map is
    separable): the trigonometric interpolant of a periodic axis (of its frequencies |k| <= band * n only),
    the piecewise linear one of an other; each matrix taken from `matrices` where given (else made here)."""
    letters = "abcdefgh"[: len(sizes)]
    for axis, (m, wrap) in enumerate(zip(sizes, periodic)):
        n = u.shape[len(u.shape) - len(sizes) + axis]
        if n != m or (wrap and band < 0.5):
            spec = f"...{letters},z{letters[axis]}->...{letters.replace(letters[axis], 'z')}"
            matrix = ops.asarray(resampling(n, m, wrap, band)) if matrices is None else matrices[n, m, wrap, band]
            u = ops.einsum(spec, u, matrix)
    return u


@lru_cache(maxsize=64)
def resampling(n: int, m: int, periodic: bool, band: float = 0.5) -> np.ndarray:
    """The [m, n] float64 matrix (backends cast it to their dtype) taking n samples of a function on an axis to the
    values of their interpolant at m points: trigonometric on a periodic axis, of the frequencies |k| <= band * n
    (band 1/2: all, the Nyquist cosine split evenly between +-n/2, so going up is zero-padding the rfft and
    band-limited fields come back exactly), piecewise linear on another (both ends grid points).  Going down
    samples the interpolant rather than cutting its series: a grid that divides the finer one sees the very
    values at its points (so the V-cycle sees what it was trained on), and no Gibbs ringing next to a steep
    front."""
    if not periodic:
        return np.stack([np.interp(np.linspace(0, n - 1, m), np.arange(n), e) for e in np.eye(n)], 1)
    k = np.arange(n // 2 + 1)
    weights = np.where((k == 0) | (2 * k == n), 1.0, 2.0) / n * (k <= band * n)
    at, of = 2 * np.pi * np.outer(np.arange(m) / m, k), 2 * np.pi * np.outer(np.arange(n) / n, k)
    return (np.cos(at) * weights) @ np.cos(of).T + (np.sin(at) * weights) @ np.sin(of).T


def spectral(u: Array, weights: Array, ops: Any, periodic: list[bool] | None = None) -> Array:
    """FFT over the grid axes (a non-periodic one zero-padded), complex channel mixing on the kept window
    (weights [in, out, *window], circuitdsl/ir/operators.py), inverse FFT, cropped: [batch, out, *grid].
    `periodic` says per grid axis whether it wraps around (all of them when not given)."""
    d = len(weights.shape) - 2
    grid = list(u.shape[-d:])
    sizes = [padded(n, wrap) for n, wrap in zip(grid, periodic or [True] * d)]
    coefficients = ops.rfftn(_pad(u, [m - n for n, m in zip(grid, sizes)], ops), d)
    kept = coefficients[..., :weights.shape[-1]]
    for axis, k in enumerate(weights.shape[2:-1]):  # |k| < m: the first m coefficients and the last m - 1
        n, m = sizes[axis], (k + 1) // 2
        kept = ops.concat([kept[_along(axis, d, slice(0, m))], kept[_along(axis, d, slice(n - m + 1, n))]], axis - d)
    letters = _GRID[:d]
    mixed = ops.einsum(f"bi{letters},io{letters}->bo{letters}", kept, weights)
    for axis, k in enumerate(weights.shape[2:-1]):  # back in FFT order, zeros between; irfftn pads the last axis
        m = (k + 1) // 2
        low = ops.pad(mixed[_along(axis, d, slice(0, m))], [(0, sizes[axis] - k)] + [(0, 0)] * (d - 1 - axis))
        mixed = ops.concat([low, mixed[_along(axis, d, slice(m, k))]], axis - d)
    return ops.irfftn(mixed, sizes)[(..., *(slice(0, n) for n in grid))]


def _along(axis: int, d: int, index: slice) -> tuple[Any, ...]:
    """The index selecting `index` on grid axis `axis` of the trailing `d` axes."""
    return (..., index, *[slice(None)] * (d - 1 - axis))


def _pad(x: Array, after: list[int], ops: Any) -> Array:
    """x with `after` zeros appended on each of its trailing grid axes (x itself when there are none)."""
    return ops.pad(x, [(0, k) for k in after]) if any(after) else x


def conv(x: Array, w: Array, periodic: list[bool], ops: Any) -> Array:
    """A 3-tap (3x3 in 2D) cross-correlation over the grid axes: x [batch, in, *grid], w [out, in, 3, ...] ->
    [batch, out, *grid]; tap 0 reads the point before, 2 the point after.  Each axis gets one point more at
    either end (its neighbour across the wrap on a periodic axis, a zero on another), then the backend's own
    valid correlation runs (a convolution layer's kernel, far faster than gathering the taps)."""
    d = len(periodic)
    for axis, wrap in enumerate(periodic):
        if wrap:
            x = ops.concat([x[_along(axis, d, slice(-1, None))], x, x[_along(axis, d, slice(0, 1))]], axis - d)
        else:
            x = ops.pad(x, [(1, 1)] + [(0, 0)] * (d - 1 - axis))
    return ops.correlate(x, w)


def prolong(x: Array, w: Array, sizes: list[int], periodic: list[bool], ops: Any) -> Array:
    """The finer grid of `sizes` points: zeros inserted after every point of each axis (the last one cut on a
    non-periodic axis, whose ends stay grid points), then a convolution (a learnable interpolation)."""
    d = len(sizes)
    for axis, n in enumerate(sizes):
        position = len(x.shape) - d + axis
        shape = [*x.shape[:position], 2 * x.shape[position], *x.shape[position + 1:]]
        x = ops.stack([x, x * 0.0], position + 1).reshape(shape)[_along(axis, d, slice(0, n))]
    return conv(x, w, periodic, ops)


def v_cycle(f: Array, w: dict[str, Array], levels: int, smoothing: list[int], periodic: list[bool],
            ops: Any) -> Array:
    """MgNO's V-cycle: u = S f, smoothed, restricted down `levels - 1` times, corrected and smoothed on the way up."""
    pre, post = smoothing
    every_other = (..., *[slice(None, None, 2)] * len(periodic))
    u = conv(f, w["lift"], periodic, ops)
    rights, iterates = [], []
    for level in range(levels):
        for _ in range(pre):
            u = u + conv(f - conv(u, w[f"A{level}"], periodic, ops), w[f"S{level}"], periodic, ops)
        rights.append(f)
        iterates.append(u)
        if level < levels - 1:
            residual = f - conv(u, w[f"A{level}"], periodic, ops)
            f = conv(residual, w[f"R{level}"], periodic, ops)[every_other]
            u = conv(u, w[f"Pi{level}"], periodic, ops)[every_other]
    for level in range(levels - 2, -1, -1):
        sizes = list(iterates[level].shape[2:])
        u = iterates[level] + prolong(u, w[f"P{level}"], sizes, periodic, ops)
        for _ in range(post):
            u = u + conv(rights[level] - conv(u, w[f"A{level}"], periodic, ops), w[f"S{level}"], periodic, ops)
    return u


def bias(coefficients: Array, bases: list[Array], ops: Any) -> Array:
    """The bias [out, *grid] from its coefficients [out, K, ...] (one per basis function) and each axis's basis
    values [K, n] (`bias_basis`, as the backend's arrays)."""
    d = len(bases)
    letters, tap = _GRID[:d], _TAPS[:d]
    spec = ",".join([f"o{tap}", *(f"{t}{x}" for t, x in zip(tap, letters))]) + f"->o{letters}"
    return ops.einsum(spec, coefficients, *bases)


@lru_cache(maxsize=64)
def bias_basis(n: int, periodic: bool) -> np.ndarray:
    """The [K, n] float64 values (K = 2 * BIAS_MODES - 1) of a bias's functions of one axis at its n points: 1,
    then cos and sin of 2 pi k t (t = j / n, k = 1 .. BIAS_MODES - 1) when periodic; cos(pi k s) (s = j / (n - 1),
    k = 0 .. K - 1) otherwise; each divided by sqrt(K), so that coefficients of order one make a bias of order one."""
    count = 2 * BIAS_MODES - 1
    if periodic:
        angles = 2 * np.pi * np.outer(np.arange(1, BIAS_MODES), np.arange(n) / n)
        functions = np.concatenate([np.ones((1, n)), np.cos(angles), np.sin(angles)])
    else:
        functions = np.cos(np.pi * np.outer(np.arange(count), np.linspace(0, 1, n)))
    return functions / np.sqrt(count)
