"""The JAX backend's state: every entry in one contiguous [batch, total] array, read as a Mapping of entries.

A jitted call on a CPU costs about 1 us for each array it takes or returns (measured on the NCAP swimmer: a
jitted program that does no work with the dict state's 8 arrays costs 2.3x the hand-written step's whole call).
So the state a JAX circuit gives is a `PackedState`: a pytree node (`jax.tree_util`) whose one child is the
buffer and whose static data is its `StateLayout`, so jit, vmap, grad and scan see one array.  Read like the
dict the torch module gives, `state["pop.v"]` is that entry's columns of the buffer, `[batch, size]`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from circuitdsl.backends.interface import CircuitRuntimeError, no_state_entry


class StateLayout:
    """Where each state entry lives in the buffer: its columns [start, stop), in the circuit's order.  Static and
    hashable (a pytree node's aux data, compared on every jitted call: the hash is computed once)."""

    __slots__ = ("_hash", "columns", "keys", "total")

    def __init__(self, sizes: Mapping[str, int]) -> None:
        stops = np.cumsum([0, *sizes.values()]).tolist()
        self.keys: tuple[str, ...] = tuple(sizes)
        self.columns: dict[str, tuple[int, int]] = {key: (stops[i], stops[i + 1]) for i, key in enumerate(self.keys)}
        self.total: int = stops[-1]
        self._hash = hash(tuple(self.columns.items()))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (isinstance(other, StateLayout) and self._hash == other._hash
                                 and self.columns == other.columns)

    def __repr__(self) -> str:
        return f"StateLayout({ {key: stop - start for key, (start, stop) in self.columns.items()} })"

    def part(self, keys: list[str]) -> StateLayout:
        """The layout of some of the entries, packed side by side."""
        return StateLayout({key: self.columns[key][1] - self.columns[key][0] for key in keys})


class PackedState(Mapping[str, Any]):
    """A circuit's state as one buffer [..., batch, total] and its layout; `state[key]` is [..., batch, size].

    It is a Mapping (`keys()`, `items()`, `in`, `dict(state)`, `{**state, key: value}`), and `state[key] = x`
    writes an entry of the same shape; `step` and `rollout` also take a dict, check it and pack it.
    """

    __slots__ = ("buffer", "layout")

    def __init__(self, layout: StateLayout, buffer: Any) -> None:
        self.layout, self.buffer = layout, buffer  # no checks: JAX rebuilds nodes around placeholders too

    @classmethod
    def pack(cls, layout: StateLayout, entries: Mapping[str, Any], batch: int, dtype: Any) -> PackedState:
        """The entries (each [..., batch, size]) side by side in the layout's order: one concatenation."""
        parts = [entries[key] for key in layout.keys]
        if not parts:
            return cls(layout, jnp.zeros((batch, 0), dtype))
        return cls(layout, parts[0] if len(parts) == 1 else jnp.concatenate(parts, axis=-1))

    @classmethod
    def filled(cls, layout: StateLayout, values: Mapping[str, float], batch: int, dtype: Any) -> PackedState:
        """Each entry filled with its value (an initial state): one small constant broadcast over the batch."""
        row = np.concatenate([np.full(layout.columns[key][1] - layout.columns[key][0], values[key])
                              for key in layout.keys] or [np.zeros(0)])
        return cls(layout, jnp.broadcast_to(jnp.asarray(row, dtype), (batch, layout.total)))

    def __getitem__(self, key: str) -> Any:
        start, stop = self.layout.columns[key]
        if isinstance(self.buffer, np.ndarray):  # after jax.device_get: a numpy view, as a dict's entries would be
            return self.buffer[..., start:stop]
        return jax.lax.slice_in_dim(self.buffer, start, stop, axis=self.buffer.ndim - 1)  # 4x faster than [..., a:b]

    def __setitem__(self, key: str, value: Any) -> None:
        """Set one entry, as in the torch module's dict: the buffer is replaced by a copy with those columns
        written (the array itself is never changed, so other references to it keep their values)."""
        if key not in self.layout.columns:
            raise no_state_entry(key, self.layout.keys)
        start, stop = self.layout.columns[key]
        buffer = jnp.asarray(self.buffer)
        try:
            value = jnp.asarray(value, buffer.dtype)
        except (TypeError, ValueError):
            raise CircuitRuntimeError(f"state {key!r} is a {type(value).__name__}, not an array of numbers") from None
        expected = (*buffer.shape[:-1], stop - start)
        if value.shape != expected:
            raise CircuitRuntimeError(f"state {key!r} has shape {list(value.shape)}; expected {list(expected)}")
        self.buffer = jax.lax.dynamic_update_slice_in_dim(buffer, value, start, axis=buffer.ndim - 1)

    def __iter__(self) -> Iterator[str]:
        return iter(self.layout.keys)

    def __len__(self) -> int:
        return len(self.layout.keys)

    def __contains__(self, key: object) -> bool:
        return key in self.layout.columns

    def __repr__(self) -> str:
        shape = list(getattr(self.buffer, "shape", ()))
        sizes = ", ".join(f"{key!r}: {stop - start}" for key, (start, stop) in self.layout.columns.items())
        return f"PackedState(buffer {shape}, {{{sizes}}})"


def _flatten_with_keys(state: PackedState) -> tuple[tuple[tuple[Any, Any], ...], StateLayout]:
    return ((jax.tree_util.GetAttrKey("buffer"), state.buffer),), state.layout


def _flatten(state: PackedState) -> tuple[tuple[Any], StateLayout]:
    return (state.buffer,), state.layout


def _unflatten(layout: StateLayout, children: Any) -> PackedState:
    return PackedState(layout, children[0])


jax.tree_util.register_pytree_with_keys(PackedState, _flatten_with_keys, _unflatten, _flatten)
