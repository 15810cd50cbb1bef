"""What the IR's parameters mean as numbers: their initial draw, their effective (sign-enforced) value, and the
weight and the two ends of every synapse of a projection.

Backends and the statistics of `circuitdsl check --stats` read the same definitions, so a seed gives every
consumer the same initial weights, bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from circuitdsl.ir.expr import NUMPY_FUNCTIONS
from circuitdsl.ir.model import Parameter, Projection

Array = Any
Sampler = Callable[[float, float, tuple[int, ...]], Array]


class EnforceOps(Protocol):
    """What `effective` needs of an array library: the built-in functions by name, and softplus."""

    functions: Mapping[str, Callable[..., Array]]

    def softplus(self, x: Array) -> Array: ...


class NumpyOps:
    """`EnforceOps` over numpy."""

    functions = NUMPY_FUNCTIONS

    def softplus(self, x: Array) -> Array:
        return np.logaddexp(0.0, x)


def initial_values(parameter: Parameter, rng: np.random.Generator, dtype: str = "float32") -> np.ndarray:
    """The default stored values, drawn by numpy from `rng`: every backend's init for one seed, bit for bit."""
    return sampled_values(parameter, rng.uniform, rng.normal, np, dtype)  # type: ignore[no-any-return]


def sampled_values(parameter: Parameter, uniform: Sampler, normal: Sampler, xp: Any, dtype: str = "float32") -> Array:
    """The parameter's stored (raw) values in `dtype`: its init rule drawn with the given samplers (low/mean,
    high/std, shape), mapped back through its enforcement with the array namespace `xp` (numpy or jax.numpy)."""
    shape = tuple(parameter.shape)
    args = parameter.init.args
    kind = getattr(xp, dtype)
    if parameter.init.rule == "data":
        value = xp.asarray(parameter.init.values.data.reshape(shape))  # type: ignore[union-attr]
    elif parameter.init.rule == "constant":
        value = xp.full(shape, args[0], dtype=kind)
    elif parameter.init.rule == "uniform":
        value = uniform(args[0], args[1], shape)
    else:
        value = normal(args[0], args[1], shape)
    value = xp.asarray(value, dtype=kind)
    if parameter.enforce == "softplus":
        magnitude = xp.maximum(xp.abs(value), kind(1e-6))
        value = magnitude + xp.log(-xp.expm1(-magnitude))  # softplus^-1, stable
    elif parameter.enforce == "abs":
        value = xp.abs(value)
    if parameter.mask is not None:  # weight sparsity: masked elements start (and stay) at zero
        value = value * xp.asarray(parameter.mask.data.reshape(shape), dtype=kind)
    return xp.array(value, dtype=kind)  # a fresh array, also for a scalar (numpy gives 0-d results as scalars)


def effective(parameter: Parameter, raw: Array, ops: EnforceOps) -> Array:
    """The value the circuit uses: the sign enforced by projection (clamp) or reparameterisation."""
    sign = -1.0 if parameter.sign == "inhibitory" else 1.0
    if parameter.enforce == "clamp":
        clamp = ops.functions["clamp"]
        return clamp(raw, 0.0, math.inf) if sign > 0 else clamp(raw, -math.inf, 0.0)
    if parameter.enforce == "softplus":
        return sign * ops.softplus(raw)
    if parameter.enforce == "abs":
        return sign * ops.functions["abs"](raw)
    return raw


def synapse_units(projection: Projection) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post): every synapse's flat unit in the projection's source signal and in its target selection,
    in synapse order (all_to_all: synapse (t, s) at t * n_source + s)."""
    c = projection.connectivity
    if c.pre is not None and c.post is not None:
        return np.asarray(c.pre.data, dtype=np.int64), np.asarray(c.post.data, dtype=np.int64)
    target = math.prod(a.size for a in projection.target_shape)
    if c.rule == "one_to_one":
        return np.arange(target, dtype=np.int64), np.arange(target, dtype=np.int64)
    source = math.prod(a.size for a in projection.source_shape)
    post, pre = np.meshgrid(np.arange(target, dtype=np.int64), np.arange(source, dtype=np.int64), indexing="ij")
    return pre.ravel(), post.ravel()


def synapse_weights(projection: Projection, values: np.ndarray) -> np.ndarray:
    """Every synapse's weight from its parameter's flat (effective) values: the element it shares, times the
    connectome's fixed sign and scale where given."""
    w = projection.weight
    if w.index is not None:
        weights = values[np.asarray(w.index.data, dtype=np.int64)]
    else:
        weights = values[w.offset + w.stride * np.arange(projection.synapses)]
    for part in (w.sign, w.scale):
        if part is not None:
            weights = weights * part.data
    return weights
