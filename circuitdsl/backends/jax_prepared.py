"""A JAX circuit's parameters prepared once: what `JaxCircuit.prepare` gives and `step` / `rollout` take in place of
the parameters.

Every step on parameters first computes what they alone decide: each parameter's effective value (signed,
clamped, shared, masked) and each fused group's operator (the weights gathered into the group's vector or
matrix).  A rollout does that once, outside its scan; a caller that steps one call at a time with the same
parameters (an agent acting in an environment) would redo it in every call, as XLA kernels of their own (3 of
the NCAP swimmer step's 9).  `PreparedParams` holds their result, so such a caller prepares once per change of
the parameters.  It is a pytree node (its arrays are the children; the circuit, the dtype and plain numbers such as
a sparse operator's row count are static data), so it passes through `jit`, `vmap` and `grad` like the
parameters.
"""

from __future__ import annotations

from typing import Any

import jax


class PreparedParams:
    """The prepared arrays of one circuit (`circuit`) in one dtype; only that circuit's `step` and `rollout`
    take them."""

    __slots__ = ("arrays", "circuit", "dtype")

    def __init__(self, circuit: Any, dtype: str, arrays: dict[str, Any]) -> None:
        self.circuit, self.dtype, self.arrays = circuit, dtype, arrays  # no checks: JAX rebuilds nodes too

    def __repr__(self) -> str:
        return f"PreparedParams({self.dtype}, {len(jax.tree_util.tree_leaves(self.arrays))} arrays)"


def _flatten(prepared: PreparedParams) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The arrays as children; plain numbers (a sparse operator's row count) stay static, as when traced."""
    leaves, tree = jax.tree_util.tree_flatten(prepared.arrays)
    fixed = tuple((i, x) for i, x in enumerate(leaves) if not hasattr(x, "shape"))
    return tuple(x for x in leaves if hasattr(x, "shape")), (prepared.circuit, prepared.dtype, tree, fixed)


def _unflatten(static: tuple[Any, ...], children: Any) -> PreparedParams:
    circuit, dtype, tree, fixed = static
    leaves = list(children)
    for i, x in fixed:
        leaves.insert(i, x)
    return PreparedParams(circuit, dtype, jax.tree_util.tree_unflatten(tree, leaves))


jax.tree_util.register_pytree_node(PreparedParams, _flatten, _unflatten)
