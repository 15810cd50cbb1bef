"""Selections of units: `Bd[0]`, `q[:-1]`, `h[x = 0:64]`, `N[AVAL, AVAR]`, composed and turned into IR.

Internally a selection lists, for each axis of the population, either one index (the axis is dropped)
or the indices kept (the axis stays, maybe shorter): a `range` for a whole axis or a slice of it, so that a
population of 50 million units is selected without listing them, a tuple for a list of units.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from circuitdsl.errors import Problem, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.ir.arrays import Array
from circuitdsl.ir.units import ravel_picks

AxisPick = int | range | tuple[int, ...]


@dataclass(frozen=True)
class IndexItem:
    """One evaluated index: positional or on a named axis; `value` is an int, a slice or a tuple of ints."""

    axis: str | None
    value: int | slice | tuple[int | str, ...] | str


def full(shape: tuple[ir.Axis, ...]) -> tuple[AxisPick, ...]:
    return tuple(range(a.size) for a in shape)


def _whole(pick: AxisPick, size: int) -> bool:
    """Whether an axis pick keeps every unit in order."""
    if isinstance(pick, int) or len(pick) != size:
        return False
    return (pick.step == 1 and pick.start == 0) if isinstance(pick, range) else pick == tuple(range(size))


def is_full(shape: tuple[ir.Axis, ...], picks: tuple[AxisPick, ...]) -> bool:
    return all(_whole(pick, axis.size) for axis, pick in zip(shape, picks, strict=True))


def from_ir(shape: tuple[ir.Axis, ...], select: tuple[ir.AxisSel, ...] | None) -> tuple[AxisPick, ...]:
    if select is None:
        return full(shape)
    picks: list[AxisPick] = []
    for sel in select:
        if isinstance(sel, int):
            picks.append(sel)
        elif isinstance(sel, ir.SliceSel):
            picks.append(range(sel.start, sel.stop, sel.step))
        else:
            picks.append(tuple(int(i) for i in sel.indices.data))
    return tuple(picks)


def to_ir(shape: tuple[ir.Axis, ...], picks: tuple[AxisPick, ...]) -> tuple[ir.AxisSel, ...] | None:
    if is_full(shape, picks):
        return None
    out: list[ir.AxisSel] = []
    for pick in picks:
        if isinstance(pick, int):
            out.append(pick)
            continue
        if len(pick) == 1:
            out.append(ir.SliceSel(start=pick[0], stop=pick[0] + 1, step=1))
            continue
        if isinstance(pick, range) and pick.step > 0:
            out.append(ir.SliceSel(start=pick.start, stop=pick[-1] + 1, step=pick.step))
            continue
        steps = {b - a for a, b in itertools.pairwise(pick)}
        if len(steps) == 1 and (step := steps.pop()) > 0:
            out.append(ir.SliceSel(start=pick[0], stop=pick[-1] + 1, step=step))
        else:
            out.append(ir.Gather(indices=Array(np.array(pick, dtype=np.int64))))
    return tuple(out)


def as_list(selection: tuple[ir.AxisSel, ...] | None) -> list[ir.AxisSel] | None:
    """A selection as the IR stores it (a list, or None for every unit)."""
    return None if selection is None else list(selection)


def result_shape(shape: tuple[ir.Axis, ...], picks: tuple[AxisPick, ...]) -> tuple[ir.Axis, ...]:
    axes = []
    for axis, pick in zip(shape, picks, strict=True):
        if isinstance(pick, int):
            continue
        labels = [axis.labels[i] for i in pick] if axis.labels else None
        whole = _whole(pick, axis.size)  # a grid stays a grid only when all of it is taken
        axes.append(ir.Axis(name=axis.name, size=len(pick), labels=labels, domain=axis.domain if whole else None))
    return tuple(axes)


def flat_units(shape: tuple[ir.Axis, ...], picks: tuple[AxisPick, ...]) -> np.ndarray:
    """Row-major flat indices (into the whole population) of the selected units, in selection order."""
    grids = [np.array([p]) if isinstance(p, int) else
             np.arange(p.start, p.stop, p.step) if isinstance(p, range) else np.array(p, dtype=np.int64) for p in picks]
    return ravel_picks([a.size for a in shape], grids)


def _resolve_one(axis: ir.Axis, kept: range | tuple[int, ...],
                 value: int | slice | tuple[int | str, ...] | str) -> AxisPick:
    n = len(kept)

    def position(item: int | str) -> int:
        if isinstance(item, str):
            if not axis.labels or item not in axis.labels:
                raise Problem("E303", f"axis '{axis.name}' has no unit named '{item}'",
                                     _label_hint(item, axis))
            index = axis.labels.index(item)
            if index not in kept:
                raise Problem("E303", f"unit '{item}' is not in this selection of axis '{axis.name}'")
            return kept.index(index)
        if not -n <= item < n:
            raise Problem("E303", f"index {item} is out of range for axis '{axis.name}' of size {n}")
        return item % n

    if isinstance(value, slice):
        picked = kept[value]
        if not picked:
            raise Problem("E303", f"the slice selects no unit of axis '{axis.name}' (size {n})")
        return picked
    if isinstance(value, tuple):
        if not value:
            raise Problem("E303", "an empty list selects no unit")
        return tuple(kept[position(v)] for v in value)
    return kept[position(value)]


def _label_hint(item: str, axis: ir.Axis) -> tuple[str, ...]:
    note = did_you_mean(item, axis.labels or [])
    return (note,) if note else ()


def apply(shape: tuple[ir.Axis, ...], picks: tuple[AxisPick, ...], items: list[IndexItem]) -> tuple[AxisPick, ...]:
    """Index the retained axes of a selection with `items` (positional, by axis name, or a list on one axis)."""
    retained = [i for i, p in enumerate(picks) if not isinstance(p, int)]
    new = list(picks)
    positional = [it for it in items if it.axis is None]
    named = [it for it in items if it.axis is not None]
    if len(positional) > len(retained):
        if len(retained) == 1 and not named and all(not isinstance(it.value, (slice, tuple)) for it in positional):
            # N[AVAL, AVAR]: one gather of the single values (all of them int or str, checked just above)
            positional = [IndexItem(None, tuple(it.value for it in positional if isinstance(it.value, int | str)))]
        else:
            raise Problem("E303", f"{len(positional)} indices for {len(retained)} axes",
                                 (f"the axes are {', '.join(shape[i].name for i in retained) or 'none'}",))
    for item, axis_index in zip(positional, retained):
        new[axis_index] = _resolve_one(shape[axis_index], _kept(picks[axis_index]), item.value)
    for item in named:
        matches = [i for i in retained if shape[i].name == item.axis]
        if not matches:
            names = [shape[i].name for i in retained]
            hint = did_you_mean(item.axis or "", names)
            raise Problem("E304", f"no axis named '{item.axis}' here",
                                 tuple(n for n in (hint, f"the axes are {', '.join(names) or 'none'}") if n))
        axis_index = matches[0]
        if axis_index in retained[:len(positional)] or [it.axis for it in named].count(item.axis) > 1:
            raise Problem("E304", f"axis '{item.axis}' is indexed twice")
        new[axis_index] = _resolve_one(shape[axis_index], _kept(picks[axis_index]), item.value)
    return tuple(new)


def _kept(pick: AxisPick) -> range | tuple[int, ...]:
    return (pick,) if isinstance(pick, int) else pick
