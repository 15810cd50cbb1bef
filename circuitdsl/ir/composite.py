"""The language's composite functions, written once over a small table of primitive array operations.

A composite (`reduce_sum`, `kwta`, `push`, ...) is a function of a `Primitives` object and its arguments; numpy
(here, for the reference evaluator), torch and JAX (in their backends) each supply the primitives, so every
backend computes the same composite the same way and a backend holds only primitives.  The primitives keep
numpy's names and argument order (circuitdsl/ir/primitives.py, the table circuitdsl/ir/axes.py's operations use
too).

`bind(primitives)` gives the composites as a table by function name, ready to merge into a backend's
table of functions (circuitdsl/functions.py names them).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Final

from circuitdsl.ir.primitives import Array, Primitives

# ---- the composites ------------------------------------------------------------------------------


def segments(xp: Primitives, x: Array, size: float) -> Array:
    """[..., units * size] as [..., units, size]: a port's internal axis last."""
    x = xp.asarray(x)
    return xp.reshape(x, (*x.shape[:-1], -1, int(size)))


def reduce_sum(xp: Primitives, x: Array, size: float) -> Array:
    """The sum over a port's internal axis (its size passed last, as the IR does for reductions)."""
    return xp.sum(segments(xp, x, size), -1)


def reduce_max(xp: Primitives, x: Array, size: float) -> Array:
    """The largest value over a port's internal axis."""
    return xp.max(segments(xp, x, size), -1)


def reduce_absmax(xp: Primitives, x: Array, size: float) -> Array:
    """The element of largest magnitude over a port's internal axis, its sign kept; its gradient goes to that
    element."""
    parts = segments(xp, x, size)
    pick = xp.argmax(xp.abs(parts), -1)[..., None]
    return xp.take_along_axis(parts, pick, -1)[..., 0]


def kwta(xp: Primitives, x: Array, k: float) -> Array:
    """The k largest values of each sample (over all its units) kept, the others 0; the mask is constant, so
    losers get no gradient.  Inside a neuron x is [batch, units, 1]: ranked as [batch, units].  Every value equal
    to the k-th largest is kept (more than k on a tie): one rule on every backend, with no tie-break by position."""
    x = xp.asarray(x)
    fixed = xp.stop_gradient(x)
    flat = xp.reshape(fixed, (x.shape[0], -1)) if x.ndim > 1 else fixed
    threshold = xp.topk(flat, int(k))[..., -1:]
    return x * xp.reshape(xp.astype(flat >= threshold, x.dtype), x.shape)


def matvec(xp: Primitives, w: Array, x: Array) -> Array:
    """A neuron's matrix param [units or 1, out, in] times its vector [..., units, in], per unit: [..., units, out]."""
    return xp.sum(xp.asarray(w) * xp.asarray(x)[..., None, :], -1)


def push(xp: Primitives, history: Array, x: Array) -> Array:
    """The history without its oldest (first) element, x appended last."""
    history = xp.asarray(history)
    return xp.concatenate([history[..., 1:], history[..., -1:] * 0.0 + x], -1)


COMPOSITES: Final[dict[str, Callable[..., Array]]] = {
    "reduce_sum": reduce_sum,
    "reduce_max": reduce_max,
    "reduce_absmax": reduce_absmax,
    "kwta": kwta,
    "matvec": matvec,
    "push": push,
}
"""The composite functions of circuitdsl/functions.py by name; each takes the primitives first."""


def bind(xp: Primitives) -> dict[str, Callable[..., Array]]:
    """The composites over one backend's primitives, by function name."""
    return {name: partial(fn, xp) for name, fn in COMPOSITES.items()}
