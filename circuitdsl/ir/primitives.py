"""The one table of array primitives that every composite operation is written against.

The language's composite functions (circuitdsl/ir/composite.py: `reduce_*`, `kwta`, `matvec`, `push`) and the
operations over named axes (circuitdsl/ir/axes.py: softmax, layer norm, contraction, the linear map) are written
once, as functions of a `Primitives` object; numpy supplies it here (the reference semantics), torch and JAX in
their backends.  The primitives keep numpy's names, argument order and meaning, plus the two numpy lacks: `topk`
(the k largest values along the last axis, largest first) and `stop_gradient`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

import numpy as np

Array = Any
Axes = int | tuple[int, ...]


class Primitives(Protocol):
    """The array operations the composites are written against, with numpy's names and meaning."""

    def asarray(self, x: Any) -> Array: ...  # an array as it is; a Python number or list as an array
    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array: ...
    def transpose(self, x: Array, axes: tuple[int, ...]) -> Array: ...
    def sum(self, x: Array, axis: Axes, keepdims: bool = False) -> Array: ...
    def mean(self, x: Array, axis: Axes, keepdims: bool = False) -> Array: ...
    def max(self, x: Array, axis: Axes, keepdims: bool = False) -> Array: ...
    def argmax(self, x: Array, axis: int) -> Array: ...
    def abs(self, x: Array) -> Array: ...
    def exp(self, x: Array) -> Array: ...
    def sqrt(self, x: Array) -> Array: ...
    def matmul(self, a: Array, b: Array) -> Array: ...  # numpy's: batched over leading axes, broadcast
    def linear(self, x: Array, matrix: Array, bias: Array | None) -> Array: ...  # x @ matrix.T (+ bias), nn.Linear's
    # along the last axis: (x - mean) / sqrt(biased variance + eps) * scale + shift, as torch.nn.LayerNorm
    def layer_norm(self, x: Array, scale: Array, shift: Array | None, eps: float) -> Array: ...
    def where(self, condition: Array, x: Array, y: float) -> Array: ...  # a constant condition (numpy or own array)
    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array: ...
    def concatenate(self, xs: Sequence[Array], axis: int) -> Array: ...
    def astype(self, x: Array, dtype: Any) -> Array: ...
    def topk(self, x: Array, k: int) -> Array: ...  # the k largest along the last axis, largest first
    def stop_gradient(self, x: Array) -> Array: ...  # x, with no gradient flowing back through it


class NumpyPrimitives:
    """The primitives over numpy, or over a module with numpy's functions (`jax.numpy`): `topk` sorts, and
    `stop_gradient` is the identity (numpy has no gradients; a module that has them overrides it)."""

    def __init__(self, module: Any = np) -> None:
        self.xp = module

    def asarray(self, x: Any) -> Array:
        return self.xp.asarray(x)

    def reshape(self, x: Array, shape: tuple[int, ...]) -> Array:
        return self.xp.reshape(x, shape)

    def transpose(self, x: Array, axes: tuple[int, ...]) -> Array:
        return self.xp.transpose(x, axes)

    def sum(self, x: Array, axis: Axes, keepdims: bool = False) -> Array:
        return self.xp.sum(x, axis=axis, keepdims=keepdims)

    def mean(self, x: Array, axis: Axes, keepdims: bool = False) -> Array:
        return self.xp.mean(x, axis=axis, keepdims=keepdims)

    def max(self, x: Array, axis: Axes, keepdims: bool = False) -> Array:
        return self.xp.max(x, axis=axis, keepdims=keepdims)

    def argmax(self, x: Array, axis: int) -> Array:
        return self.xp.argmax(x, axis=axis)

    def abs(self, x: Array) -> Array:
        return self.xp.abs(x)

    def exp(self, x: Array) -> Array:
        return self.xp.exp(x)

    def sqrt(self, x: Array) -> Array:
        return self.xp.sqrt(x)

    def matmul(self, a: Array, b: Array) -> Array:
        return self.xp.matmul(a, b)

    def linear(self, x: Array, matrix: Array, bias: Array | None) -> Array:
        out = self.matmul(x, matrix.T)  # (through matmul: JAX's at full precision)
        return out if bias is None else out + bias

    def layer_norm(self, x: Array, scale: Array, shift: Array | None, eps: float) -> Array:
        centred = x - self.xp.mean(x, axis=-1, keepdims=True)
        out = centred / self.xp.sqrt(self.xp.mean(centred * centred, axis=-1, keepdims=True) + eps) * scale
        return out if shift is None else out + shift

    def where(self, condition: Array, x: Array, y: float) -> Array:
        return self.xp.where(condition, x, y)

    def take_along_axis(self, x: Array, indices: Array, axis: int) -> Array:
        return self.xp.take_along_axis(x, indices, axis)

    def concatenate(self, xs: Sequence[Array], axis: int) -> Array:
        return self.xp.concatenate(xs, axis)

    def astype(self, x: Array, dtype: Any) -> Array:
        return self.xp.asarray(x).astype(dtype)

    def topk(self, x: Array, k: int) -> Array:
        return -self.xp.sort(-x, axis=-1)[..., :k]

    def stop_gradient(self, x: Array) -> Array:
        return x


NUMPY: Final = NumpyPrimitives()
"""The reference primitives (circuitdsl/ir/expr.py's evaluator)."""
