"""1D viscous Burgers, u_t + (u^2 / 2)_x = nu u_xx on the periodic [0, 1): pairs (u(., 0), u(., 1)), seeded.

Initial conditions are Gaussian random fields N(0, 625 (-Delta + 25 I)^-2) with zero mean: Fourier mode k has
standard deviation 25 / ((2 pi k)^2 + 25).  The solver is pseudo-spectral with an integrating factor for the
viscous term, classical RK4 in time and 2/3 de-aliasing of the nonlinear term.
"""

from __future__ import annotations

import numpy as np


def initial_conditions(samples: int, points: int, rng: np.random.Generator) -> np.ndarray:
    """`samples` random fields at `points` points of [0, 1), [samples, points] float64."""
    k = np.arange(1, points // 2)
    std = 25.0 / ((2 * np.pi * k) ** 2 + 25.0)
    coefficients = np.zeros((samples, points // 2 + 1), complex)
    noise = rng.standard_normal((samples, k.size)) + 1j * rng.standard_normal((samples, k.size))
    coefficients[:, 1:points // 2] = std * noise / np.sqrt(2) * points  # numpy's irfft divides by `points`
    return np.fft.irfft(coefficients, points)


def solve(u0: np.ndarray, nu: float = 0.01, time: float = 1.0, dt: float = 5e-4) -> np.ndarray:
    """Each row of u0 (periodic samples on [0, 1)) advanced to `time`: [samples, points]."""
    points = u0.shape[-1]
    k = np.fft.rfftfreq(points, 1.0 / points)  # 0, 1, ..., points / 2
    half = np.exp(-nu * (2 * np.pi * k) ** 2 * dt / 2)  # the viscous integrating factor over dt / 2
    full = half ** 2
    keep = k < points / 3  # 2/3 de-aliasing
    factor = -0.5j * 2 * np.pi * k * dt * keep

    def nonlinear(v: np.ndarray) -> np.ndarray:
        return factor * np.fft.rfft(np.fft.irfft(v, points) ** 2)

    v = np.fft.rfft(u0)
    for _ in range(round(time / dt)):
        a = nonlinear(v)
        b = nonlinear(half * (v + a / 2))
        c = nonlinear(half * v + b / 2)
        d = nonlinear(full * v + half * c)
        v = full * v + (full * a + 2 * half * (b + c) + d) / 6
    return np.fft.irfft(v, points)


def dataset(samples: int, points: int = 512, seed: int = 0, nu: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """(u(., 0), u(., 1)) for `samples` seeded initial conditions, solved at `points` points, float32; subsample
    with a stride for coarser grids (points must be a multiple of the coarse size)."""
    u0 = initial_conditions(samples, points, np.random.default_rng(seed))
    return u0.astype(np.float32), solve(u0, nu).astype(np.float32)
