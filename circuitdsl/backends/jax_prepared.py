"""A JAX circuit's parameters prepared once: what `JaxCircuit.prepare` gives and `step` / `rollout` take in place of
the parameters.

Every step on parameters first computes what they alone decide: each parameter's effective value (signed,
clamped, shared, masked) and each fused group's operator (the weights gathered into the group's vector or
matrix).  A rollout does that once, outside its scan; a caller that steps one call at a time with the same
parameters (an agent acting in an environment) would redo it in every call, as XLA kernels of their own (3 of
the NCAP swimmer step's 9).  `PreparedParams` holds their result, so such a caller prepares once per change of
the parameters.  It is a pytree node (its arrays are the children; the circuit and the dtype are static data),
so it passes through `jit`, `vmap` and `grad` like the parameters.
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


def _flatten(prepared: PreparedParams) -> tuple[tuple[dict[str, Any]], tuple[Any, str]]:
    return (prepared.arrays,), (prepared.circuit, prepared.dtype)


def _unflatten(static: tuple[Any, str], children: Any) -> PreparedParams:
    return PreparedParams(*static, children[0])


jax.tree_util.register_pytree_node(PreparedParams, _flatten, _unflatten)
