"""How the JAX backend runs each fused group (circuitdsl/backends/fusion.py), chosen for XLA.

XLA fuses element-wise work, slices and gathers with fixed indices into one loop, while every matrix product
and every scatter is a call of its own, and on a CPU its scatter-add (the sparse product's segment sum) runs
element by element.  So, measured on one CPU thread in a jitted 100-step scan of x <- tanh(op(x)) (random
square groups, float32; `python -m benchmarks.lowerings --jax`):

- a group whose elements receive at most ELL_LAYERS synapses each runs in ELLPACK form (circuitdsl/backends/
  ell.py): 302 units at 1% and 3% density (9 and 17 layers) took 1.6 and 3.3 us a step at batch 1 against
  4.8 and 6.2 us dense and 1.9 and 5.4 us sparse; at batch 64, 20 and 37 us against 126 and 216 dense;
- a group the automatic choice would run sparse runs dense up to DENSE_CELLS cells: 302 units at 10% density
  took 4.9 us a step dense and 21 us sparse at batch 1 (130 and 167 us at batch 64);
- anything else as the automatic choice says (a fly-scale graph stays sparse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import jax
import numpy as np

from circuitdsl.backends import ell
from circuitdsl.backends.fusion import Group
from circuitdsl.backends.step import Ops

ELL_LAYERS: Final = 16
"""The most synapses per port element for the ELLPACK form (more layers make XLA's fused loop slower than a
matrix product: 45 layers at 302 units, 10%: 7.7 us a step against 4.9 us dense at batch 1)."""

DENSE_CELLS: Final = 512 * 512
"""Up to this many cells a group runs dense rather than sparse under JAX (the worm's 302 x 303)."""


def choose(g: Group, automatic: str) -> str:
    """ell, dense or sparse for a group under JAX, given the automatic (torch-measured) choice."""
    pre, post = g.synapses()
    rows = np.unique(post * g.width + pre) // g.width
    if ell.layers(rows, g.size) <= ELL_LAYERS:
        return "ell"
    if automatic == "sparse" and g.size * g.width <= DENSE_CELLS:
        return "dense"
    return automatic


PICK_RUNS: Final = 8
"""The most runs (slices and repeats, see `runs`) of a read at fixed indices that `pick` writes as pieces."""


def runs(index: np.ndarray, limit: int) -> list[tuple[int, int, int]] | None:
    """`index` (1-D) as at most `limit` runs (first element, length, step), each a stretch of consecutive elements
    (step 1: a slice) or of one element repeated (step 0: a broadcast), or None when it takes more."""
    found: list[tuple[int, int, int]] = []
    steps, i = np.diff(index), 0
    while i < len(index):
        if len(found) == limit:
            return None
        step = int(steps[i]) if i < len(steps) and steps[i] in (0, 1) else 1
        other = np.flatnonzero(steps[i:] != step)
        length = (int(other[0]) if len(other) else len(steps) - i) + 1
        found.append((int(index[i]), length, step))
        i += length
    return found


def pick(index: np.ndarray, ops: Ops) -> Callable[[Any], Any] | None:
    """How JAX reads a vector at fixed indices where a gather is not needed: as a few slices and broadcasts, side
    by side, when the indices form at most PICK_RUNS runs (a shared weight repeated over a group's cells, a
    parameter's elements in order); None otherwise (a gather).  XLA counts a gather as expensive: it neither
    repeats it in each loop that reads it nor fuses it into a loop that reads an element twice, so each gather
    of a group's weights was a loop of its own (NCAP's jitted step: 3 of its 9); slices and broadcasts join the
    step's one fused loop."""
    found = runs(index.reshape(-1), PICK_RUNS)
    if found is None or not len(index):
        return None
    shape = index.shape

    def picked(x: jax.Array) -> jax.Array:
        pieces = [jax.lax.slice_in_dim(x, first, first + length) if step else
                  jax.lax.broadcast_in_dim(x[first], (length,), ()) for first, length, step in found]
        return (pieces[0] if len(pieces) == 1 else jax.lax.concatenate(pieces, 0)).reshape(shape)
    return picked
