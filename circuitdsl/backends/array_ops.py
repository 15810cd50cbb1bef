"""The engine's array operations (the `Ops` table, circuitdsl/backends/step.py) written once over a module with
numpy's functions: numpy itself (circuitdsl/backends/numpy_backend.py) or jax.numpy
(circuitdsl/backends/jax_backend.py).  Each backend adds what its framework does its own way: scatters,
gradients (spikes, clamps), convolutions, sparse products, and whether values are concrete.

This module imports no framework, so the numpy backend runs without JAX installed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any


class ArrayModuleOps:
    """The operations that read the same in numpy and jax.numpy, over `xp` in float type `dtype`; index arrays
    are of `index` type (JAX: int32, its default; numpy: int64, what its indexing takes without a conversion)."""

    fuses = False  # numpy: one call per operation (JaxOps: XLA fuses, but its pick already reads weights cheaply)
    accelerator = False  # numpy on the CPU; JAX's choices (jax_lowering.py) do not depend on its device

    def __init__(self, xp: Any, dtype: str, index: type) -> None:
        self.xp, self.dtype, self.index = xp, xp.dtype(dtype), index

    def asarray(self, values: np.ndarray) -> Array:
        """Index arrays in the index type, float constants in the ops' dtype."""
        if values.dtype.kind in "iu":
            return self.xp.asarray(values.astype(self.index))
        return self.xp.asarray(values, self.dtype if values.dtype.kind == "f" else None)

    def zeros(self, batch: int, n: int) -> Array:
        return self.xp.zeros((batch, n), self.dtype)

    def full(self, batch: int, n: int, value: float) -> Array:
        return self.xp.full((batch, n), value, self.dtype)

    def take(self, x: Array, index: Array) -> Array:
        return self.xp.take(x, index, axis=1)

    def to_float(self, x: Any) -> Array:
        return self.xp.asarray(x, self.dtype)

    def stack_time(self, history: Array, latest: Array) -> Array:
        return self.xp.concatenate([history[:, latest.shape[1]:], latest], axis=1)

    def unstack(self, x: Array, axis: int) -> list[Array]:
        return list(self.xp.moveaxis(x, axis, 0))  # views (numpy)

    def stack(self, xs: list[Array], axis: int) -> Array:
        return self.xp.stack(xs, axis=axis)

    def concat(self, xs: list[Array], axis: int) -> Array:
        return self.xp.concatenate(xs, axis=axis)

    def pad(self, x: Array, widths: list[tuple[int, int]]) -> Array:
        return self.xp.pad(x, [(0, 0)] * (x.ndim - len(widths)) + list(widths))

    def rfftn(self, x: Array, axes: int) -> Array:
        return self.xp.fft.rfftn(x, axes=tuple(range(-axes, 0)), norm="forward")

    def irfftn(self, x: Array, sizes: list[int]) -> Array:
        return self.xp.fft.irfftn(x, s=sizes, axes=tuple(range(-len(sizes), 0)), norm="forward")

    def broadcast(self, x: Any, shape: tuple[int, ...]) -> Array:
        if getattr(x, "shape", None) == shape and x.dtype is self.dtype:
            return x  # the common case first: already in shape (and a builtin dtype is one object)
        xp = self.xp
        x = xp.asarray(x, self.dtype)
        return x if x.shape == shape else xp.broadcast_to(x, xp.broadcast_shapes(x.shape, shape))
