"""A fused group in ELLPACK form: every port element's synapses as K layers, each layer one weighted read of the
group's input vector, so the product is K element-wise multiply-adds and no matrix product.

Layer k holds every element's k-th synapse (elements with fewer than k + 1 synapses read weight 0).  A layer
whose columns run contiguously is a slice of the input vector, any other a gather with fixed indices.  Under a
compiler that fuses element-wise work (XLA), a small group's product joins its neighbours' arithmetic in one
loop instead of a matrix product of its own, which on a CPU costs more than the arithmetic of a small group
(circuitdsl/backends/jax_lowering.py chooses the form; measured there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from circuitdsl.backends.step import Fixed, Ops, Pick, fixed, read_at

Array = Any


@dataclass(frozen=True)
class Layout:
    """Where each layer's weights and inputs come from: `at` [K * size] indexes the group's values per unique
    cell with a 0 appended (the padding), and `slots` reads them there; `columns` per layer a slice of the input
    vector or an index array."""

    size: int
    at: np.ndarray
    slots: Fixed
    columns: tuple[slice | Array, ...]


def layers(rows: np.ndarray, size: int) -> int:
    """K: the most synapses (unique cells) any of `size` port elements receives."""
    return int(np.bincount(rows, minlength=size).max()) if len(rows) else 0


def layout(rows: np.ndarray, cols: np.ndarray, size: int, width: int, ops: Ops, pick: Pick | None = None) -> Layout:
    """The layers of a group's unique cells (rows sorted, as np.unique of post * width + pre gives them); `pick`:
    how the backend reads a vector at fixed indices (circuitdsl/backends/step.py)."""
    counts = np.bincount(rows, minlength=size)
    k = layers(rows, size)
    rank = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)  # each cell's place in its row
    at = np.full((k, size), len(rows), dtype=np.int64)
    at[rank, rows] = np.arange(len(rows))
    column = np.full((k, size), -1, dtype=np.int64)
    column[rank, rows] = cols
    return Layout(size, at.reshape(-1), fixed(at.reshape(-1), ops, pick), tuple(_read(c, width, ops) for c in column))


def _read(column: np.ndarray, width: int, ops: Ops) -> slice | Array:
    """One layer's columns (-1: padding): a slice when the present ones run contiguously (padding then reads
    its neighbour in the run, times weight 0), else an index array (padding reads column 0)."""
    present = column >= 0
    shift = np.unique(column[present] - np.arange(len(column))[present])
    if len(shift) == 1 and 0 <= shift[0] and shift[0] + len(column) <= width:
        return slice(int(shift[0]), int(shift[0]) + len(column))
    return ops.asarray(np.where(present, column, 0))


def weights(layout: Layout, values: Array, ops: Ops) -> list[Array]:
    """Each layer's weights [size] from the group's values per unique cell (split once per call, not per step)."""
    padded = ops.concat([values, ops.zeros(1, 1).reshape(-1)], 0)
    return split(layout, read_at(padded, layout.slots))


def through(layout: Layout, index: np.ndarray, pad: float) -> np.ndarray:
    """The layers' slots [K * size] as what `index` (one entry per unique cell) holds there, `pad` for the
    padding: the layers' weights read straight from what `index` indexes, not through the group's values."""
    return np.append(index, pad)[layout.at]


def split(layout: Layout, slots: Array) -> list[Array]:
    """The layers' weights [size] each, from their slots side by side [K * size]."""
    layers = slots.reshape(len(layout.columns), layout.size)
    return [layers[k] for k in range(len(layout.columns))]


def product(layout: Layout, w: list[Array], x: Array, ops: Ops) -> Array:
    """The group's input to its port, [batch, size], from its input vector x [batch, width]."""
    total = None
    for k, column in enumerate(layout.columns):
        part = (x[:, column] if isinstance(column, slice) else ops.take(x, column)) * w[k]
        total = part if total is None else total + part
    return ops.zeros(x.shape[0], layout.size) if total is None else total
