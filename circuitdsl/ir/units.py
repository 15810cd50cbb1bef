"""Selections as flat unit indices: the row-major numbering of a population's units that every stage shares."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from circuitdsl.ir.model import AxisSel, NeuronModel, SliceSel


def ravel_picks(sizes: Sequence[int], picks: Sequence[np.ndarray]) -> np.ndarray:
    """Row-major flat indices of every combination of the per-axis picks, in pick order ([0] for no axes)."""
    if not picks:
        return np.zeros(1, dtype=np.int64)
    mesh = np.meshgrid(*picks, indexing="ij")
    return np.ravel_multi_index([m.ravel() for m in mesh], list(sizes)).astype(np.int64)


def axis_picks(select: AxisSel) -> np.ndarray:
    """The indices one axis selection picks, in order."""
    if isinstance(select, int):
        return np.array([select], dtype=np.int64)
    if isinstance(select, SliceSel):
        return np.arange(select.start, select.stop, select.step, dtype=np.int64)
    return np.asarray(select.indices.data, dtype=np.int64)


def selected_units(sizes: Sequence[int], select: Sequence[AxisSel] | None) -> np.ndarray:
    """Flat indices of the selected units, in selection order; every unit when `select` is None."""
    if select is None:
        return np.arange(math.prod(sizes), dtype=np.int64)
    return ravel_picks(sizes, [axis_picks(s) for s in select])


def class_groups(classes: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Each unit's class number and the classes, numbered in order of first appearance."""
    names = list(dict.fromkeys(classes))
    number = {name: i for i, name in enumerate(names)}
    return np.array([number[c] for c in classes], dtype=np.int64), names


def port_size(model: NeuronModel, port: str) -> int:
    """Elements per unit on a port of a neuron model: its internal axis (segments), or 1."""
    for i in model.inputs:  # a loop, not a generator: torch.compile traces the step through this
        if i.name == port:
            return math.prod([a.size for a in i.shape])
    raise KeyError(port)
