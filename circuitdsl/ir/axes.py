"""Operations over named axes, written once over a small table of numpy-named array primitives.

The IR's axis nodes (`Reduce`, `Softmax`, `Contract`, `Rearrange`) and the learned `linear` and `layer_norm`
operators act on signals that are flat per sample, [batch, units]; each records the named shape of its operands,
so here an operand is viewed as [batch, *sizes], the op acts on the axes it names and the result is flattened
again.  The composites (softmax, layer norm, contraction, the linear map) are written once, against `Primitives`:
the one primitive table of circuitdsl/ir/primitives.py, which numpy (the reference semantics of
circuitdsl/ir/expr.py), torch and JAX each supply (`TorchOps.primitives`, `JaxOps.primitives`), so the three
cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np

from circuitdsl.ir.model import Axis, Contract, Rearrange, Reduce, Softmax
from circuitdsl.ir.primitives import Array, Primitives

AxisNode = Reduce | Softmax | Contract | Rearrange
AXIS_NODES: Final = (Reduce, Softmax, Contract, Rearrange)

MAX_CONTRACTED: Final = 50
"""The most distinct axes a contraction's two sides may span (elaboration refuses more, E304): its product moves
arrays of up to one axis more than that, within numpy's 64."""

LAYER_NORM_EPS: Final = 1e-5
"""Added to the variance before its square root in `layer_norm` (torch.nn.LayerNorm's default)."""


# ---- layout ----------------------------------------------------------------------------------------


def sizes(shape: Sequence[Axis]) -> tuple[int, ...]:
    """The sizes of a named shape, in order."""
    return tuple(a.size for a in shape)


def flat(x: Array) -> Array:
    """[batch, ...] as [batch, units] (a single unit: [batch, 1])."""
    return x.reshape(x.shape[0], -1)


def position(shape: Sequence[Axis], name: str) -> int:
    """The array axis of the named axis in [batch, *sizes] (the batch is axis 0)."""
    return 1 + [a.name for a in shape].index(name)


def around(shape: Sequence[Axis], name: str) -> tuple[int, int, int]:
    """The units before the named axis, its size and the units after it: [batch, before, n, after]."""
    at = position(shape, name) - 1
    return math.prod(sizes(shape[:at])), shape[at].size, math.prod(sizes(shape[at + 1:]))


# ---- the nodes -------------------------------------------------------------------------------------
# Each node becomes a function of its operands' values with what its shapes fix (sizes, axis positions, a
# contraction's moves, causal mask) worked out once: a compiled program calls it every step, the reference
# evaluator once.


def compiled(node: AxisNode, xp: Primitives, mask: Array | None = None) -> Callable[..., Array]:
    """The node as a function of its operands' values (flat [batch, units] arrays) over the primitives `xp`;
    `mask`: a causal softmax's mask already as the backend's array (else made here, as numpy)."""
    if isinstance(node, Reduce):
        return _reduce(node, xp)
    if isinstance(node, Softmax):
        return _softmax(node, xp, mask)
    if isinstance(node, Contract):
        return _contract(node, xp)
    return _rearrange(node, xp)


def apply(node: AxisNode, operands: Sequence[Array], xp: Primitives) -> Array:
    """An axis node over its operands' values, once (the reference evaluator)."""
    return compiled(node, xp)(*operands)


def _reduce(node: Reduce, xp: Primitives) -> Callable[[Array], Array]:
    """sum, mean or max over the named axes."""
    axes, shape, op = tuple(position(node.shape, name) for name in node.axes), sizes(node.shape), getattr(xp, node.op)
    return lambda x: flat(op(x.reshape(-1, *shape), axis=axes))


def _softmax(node: Softmax, xp: Primitives, mask: Array | None) -> Callable[[Array], Array]:
    """exp(x - max) / sum along the axis, masked causally when asked (masked units get weight 0)."""
    at, shape = position(node.shape, node.axis), sizes(node.shape)
    if node.causal is not None and mask is None:
        mask = causal_mask(node.shape, node.causal, node.axis)

    def softmax(x: Array) -> Array:
        a = x.reshape(-1, *shape)
        if mask is not None:
            a = xp.where(mask, a, -np.inf)
        e = xp.exp(a - xp.max(a, axis=at, keepdims=True))
        return flat(e / xp.sum(e, axis=at, keepdims=True))
    return softmax


def causal_mask(shape: Sequence[Axis], query: str, key: str) -> np.ndarray:
    """True where key unit j may be read by query unit i (j <= i), as [1, *sizes] with 1 on every other axis."""
    dims = [1] * (len(shape) + 1)
    q, k = position(shape, query), position(shape, key)
    i = np.arange(shape[q - 1].size).reshape([-1 if d == q else 1 for d in range(len(dims))])
    j = np.arange(shape[k - 1].size).reshape([-1 if d == k else 1 for d in range(len(dims))])
    return j <= i


def _contract(node: Contract, xp: Primitives) -> Callable[[Array, Array], Array]:
    """The two sides summed over `axes` and matched on the other shared axes (elaboration checked that each has one
    size on both sides), as one batched matrix product: each side's axes moved to [batch, shared, own, summed] (the
    right's to [batch, shared, summed, own]), multiplied, and the result's axes moved to the node's order (left's
    remaining axes, then right's own).  It was an einsum, which does the same moves in C++ at a higher fixed cost in
    torch (attention's two contractions at batch 1: 10.5 us each against 6.5 us)."""
    left, right = [a.name for a in node.left_shape], [a.name for a in node.right_shape]
    size = {a.name: a.size for a in [*node.left_shape, *node.right_shape]}
    shared = [name for name in left if name in right and name not in node.axes]
    summed = [name for name in left if name in node.axes]
    own_left, own_right = [name for name in left if name not in right], [name for name in right if name not in left]
    produced = [*shared, *own_left, *own_right]
    batch = tuple(size[name] for name in shared)
    m, k, n = (math.prod(size[name] for name in names) for names in (own_left, summed, own_right))
    move_left = _move(left, [*shared, *own_left, *summed], xp)
    move_right = _move(right, [*shared, *summed, *own_right], xp)
    move_out = _move(produced, [a.name for a in node.shape], xp)
    left_shape, right_shape = sizes(node.left_shape), sizes(node.right_shape)
    produced_shape, matmul = tuple(size[name] for name in produced), xp.matmul

    def product(a: Array, b: Array) -> Array:
        a = move_left(a.reshape(-1, *left_shape)).reshape(-1, *batch, m, k)
        b = move_right(b.reshape(-1, *right_shape)).reshape(-1, *batch, k, n)
        return flat(move_out(matmul(a, b).reshape(-1, *produced_shape)))
    return product


def _move(names: Sequence[str], order: Sequence[str], xp: Primitives) -> Callable[[Array], Array]:
    """A function moving the axes of [batch, *names] to [batch, *order]: the array itself when in order."""
    axes = (0, *(1 + list(names).index(name) for name in order))
    if axes == tuple(range(len(axes))):
        return lambda x: x
    return lambda x: xp.transpose(x, axes)


def _rearrange(node: Rearrange, xp: Primitives) -> Callable[[Array], Array]:
    """Only a transpose moves units; renaming, splitting and merging relabel the same flat units."""
    if node.op != "transpose":
        return lambda x: x
    order, shape = (0, *(position(node.shape, a.name) for a in node.out)), sizes(node.shape)
    return lambda x: flat(xp.transpose(x.reshape(-1, *shape), order))


# ---- learned operators -----------------------------------------------------------------------------


def linear(shape: Sequence[Axis], channel: str, xp: Primitives) -> Callable[[Array, Array, Array | None], Array]:
    """`dense over channel` as a function of (x, matrix [out, in], bias [out] or None): the matrix applied along the
    named axis of x (laid out `shape`) at every unit of the other axes, plus the bias."""
    before, n, after = around(shape, channel)
    if after == 1:  # the channel last (features): one product of [batch * before, n] rows, as nn.Linear
        def rows(x: Array, matrix: Array, bias: Array | None) -> Array:
            return xp.linear(x.reshape(-1, n), matrix, bias).reshape(-1, before * matrix.shape[0])
        return rows

    def blocks(x: Array, matrix: Array, bias: Array | None) -> Array:
        out = xp.matmul(matrix, x.reshape(-1, before, n, after))  # [out, n] at every (batch, before) block
        return flat(out if bias is None else out + bias.reshape(-1, 1))
    return blocks


def layer_norm(shape: Sequence[Axis], channel: str, xp: Primitives) -> Callable[[Array, Array, Array | None], Array]:
    """Layer norm over the named axis as a function of (x, scale [n], shift [n] or None): (x - mean) / sqrt(variance
    + eps) * scale + shift, the variance biased (divided by n), as torch.nn.LayerNorm."""
    before, n, after = around(shape, channel)
    if after == 1:  # the channel last: the backend's own (torch: one kernel)
        return lambda x, scale, shift: xp.layer_norm(x.reshape(-1, n), scale, shift, LAYER_NORM_EPS).reshape(
            -1, before * n)

    def across(x: Array, scale: Array, shift: Array | None) -> Array:  # the channel moved last, and back
        last = xp.transpose(x.reshape(-1, before, n, after), (0, 1, 3, 2))
        return flat(xp.transpose(xp.layer_norm(last, scale, shift, LAYER_NORM_EPS), (0, 1, 3, 2)))
    return across


# ---- as text ---------------------------------------------------------------------------------------


def spelling(node: AxisNode, operands: Sequence[str]) -> str:
    """The node as the language writes it, its operands given as text (for diagrams and messages)."""
    if isinstance(node, Reduce):
        return f"{node.op}({operands[0]} over {', '.join(node.axes)})"
    if isinstance(node, Softmax):
        causal = f", causal = {node.causal}" if node.causal else ""
        return f"softmax({operands[0]} over {node.axis}{causal})"
    if isinstance(node, Contract):
        over = node.axes[0] if len(node.axes) == 1 else f"({', '.join(node.axes)})"
        return f"{operands[0]} · {operands[1]} over {over}"
    return f"{node.op}({operands[0]}: {_axes(node.shape)} -> {_axes(node.out)})"


def _axes(shape: Sequence[Axis]) -> str:
    return "[" + ", ".join(f"{a.name}={a.size}" for a in shape) + "]"
