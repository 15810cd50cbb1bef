"""Learnable synaptic delays (DCLS-style), written once against the backends' op table.

A synapse with delay d (clamped to 1..K) reads its source through a kernel over the last K steps:
k[tau] = g(tau - d) / sum_tau' g(tau' - d), g(z) = exp(-z^2 / (2 sigma^2)), tau = 1..K, so a fractional delay
mixes neighbouring steps and has a gradient.  With sigma = 0 the kernel is one-hot at round(d): whole-step
delays, as evaluation uses.  Training anneals sigma with `sigma_schedule`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Array = Any

SIGMA_END = 0.5
"""The kernel width the schedule ends at (DCLS's effective width at the end of annealing)."""

_NARROWEST = 0.05
"""The width the Gaussian branch is computed with when sigma is 0 (then discarded), so no step divides by 0."""


def taps(max_delay: int) -> np.ndarray:
    """The delay of each slot of a K-step history, oldest first: K, K-1, ..., 1, as a [K, 1] column."""
    return np.arange(max_delay, 0, -1, dtype=np.float32).reshape(-1, 1)


def kernel(delays: Array, sigma: Array, tap: Array, functions: Any) -> Array:
    """The [K, synapses] kernel of each synapse over the history slots `tap` (see `taps`), each column summing
    to 1: a normalised Gaussian around the clamped delay, or one-hot at the rounded delay where sigma is 0."""
    d = functions["clamp"](delays, 1.0, float(tap.shape[0]))
    width = functions["max"](sigma, _NARROWEST)
    rounded = functions["floor"](d + 0.5)
    # shifted by the nearest tap's exponent (a constant per synapse, so the normalised kernel is unchanged):
    # the largest term is 1, and neither the sum nor its gradient under- or overflows for a narrow kernel
    gauss = functions["exp"](((d - rounded) ** 2 - (tap - d) ** 2) / (2 * width ** 2))
    gauss = gauss / gauss.sum(0, keepdims=True)
    nearest = functions["step"](0.5 - functions["abs"](tap - rounded))
    return functions["where"](sigma, gauss, nearest)


def sigma_schedule(progress: float, max_delay: int, anneal: float = 0.5) -> float:
    """Sigma at `progress` (0 to 1) through training: from K/2 down exponentially to SIGMA_END over the first
    `anneal` fraction, then held there; evaluation sets sigma to 0."""
    start = max(max_delay / 2, SIGMA_END)
    fraction = min(progress / anneal, 1.0) if anneal > 0 else 1.0
    return float(start * math.exp(fraction * math.log(SIGMA_END / start)))
