"""Drawing the init rules that need more than one uniform or normal draw: `random_sign`, `orthogonal`, `low_rank`.

Written against the same samplers and array namespace as `params.sampled_values` (numpy with a seeded Generator, or
jax.numpy with a PRNG key), so the numpy draws are every backend's default init for a seed, bit for bit.  Each rule
calls its sampler once: JAX's samplers reuse one key per parameter, and two calls would draw the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from circuitdsl.ir.model import Init

Array = Any
Sampler = Callable[[float, float, tuple[int, ...]], Array]
DRAWN = ("random_sign", "orthogonal", "low_rank")


def draw(init: Init, shape: tuple[int, ...], uniform: Sampler, normal: Sampler, xp: Any) -> Array:
    """Values of one of the `DRAWN` rules for a parameter of `shape` (float64 under numpy, float32 under JAX)."""
    if init.rule == "random_sign":  # each element +value or -value with probability 1/2
        return xp.where(uniform(0.0, 1.0, shape) < 0.5, -init.args[0], init.args[0])
    if init.rule == "orthogonal":
        return init.args[0] * _orthogonal(shape, normal, xp)
    rank, norm = int(init.args[0]), init.args[1]
    rows, cols = shape
    factors = normal(0.0, 1.0, (rows + cols, rank))  # U on top of V: one draw
    matrix = factors[:rows] @ factors[rows:].T
    return norm * matrix / xp.linalg.norm(matrix)


def _orthogonal(shape: tuple[int, ...], normal: Sampler, xp: Any) -> Array:
    """A matrix with orthonormal rows or columns (whichever are fewer): QR of a Gaussian matrix, signs fixed by R's
    diagonal so the result is uniform over the orthogonal group (Mezzadri 2007)."""
    rows, cols = shape
    tall = normal(0.0, 1.0, (max(rows, cols), min(rows, cols)))
    q, r = xp.linalg.qr(tall)
    q = q * xp.where(xp.diagonal(r) < 0, -1.0, 1.0)
    return q if rows >= cols else q.T
