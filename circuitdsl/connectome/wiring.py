"""Selected cells -> the synapses among them, their signs, sharing groups and per-edge quantities, in numpy.

Chemical synapses stay directed; gap junctions become one edge per unordered pair (lo < hi in the selection's
order), self-junctions dropped.  Nothing here holds a Python object per synapse.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from circuitdsl.connectome.source import Edges
from circuitdsl.errors import Problem
from circuitdsl.functions import FUNCTIONS
from circuitdsl.ir import model as ir
from circuitdsl.ir.expr import evaluate, functions_called


@dataclass(frozen=True)
class Synapses:
    """One kind's synapses among the selected cells: indices into the selection, canonical (pre, post) order."""

    pre: np.ndarray
    post: np.ndarray
    count: np.ndarray
    sign: np.ndarray | None = None  # the source's own signs, if it has them
    self_junctions: int = 0


def restrict(edges: Edges, selected: np.ndarray, n_cells: int, symmetric: bool) -> Synapses:
    """The edges whose ends are both selected, renumbered into the selection; symmetric: one per unordered pair
    (the larger reading where the two directions differ), self-junctions counted and dropped."""
    where = np.full(n_cells, -1, dtype=np.int64)
    where[selected] = np.arange(len(selected))
    pre, post = where[edges.pre], where[edges.post]
    keep = (pre >= 0) & (post >= 0)
    pre, post, count = pre[keep], post[keep], edges.count[keep]
    sign = None if edges.sign is None else edges.sign[keep]
    self_junctions = 0
    if symmetric:
        loops = pre == post
        self_junctions = len(np.unique(pre[loops]))
        lo, hi = np.minimum(pre, post)[~loops], np.maximum(pre, post)[~loops]
        count = count[~loops]
        key = lo * len(selected) + hi
        order = np.lexsort((-count, key))  # per pair, the largest reading first
        key, count = key[order], count[order]
        first = np.ones(len(key), dtype=bool)
        first[1:] = key[1:] != key[:-1]
        key, count = key[first], count[first]
        return Synapses(key // len(selected), key % len(selected), count, None, self_junctions)
    order = pair_order(pre, post, len(selected))
    return Synapses(pre[order], post[order], count[order], None if sign is None else sign[order])


def pair_order(pre: np.ndarray, post: np.ndarray, n: int) -> np.ndarray:
    """The stable order of synapses by (pre, post), both in [0, n).  Up to 65,536 cells, two passes over 16-bit
    keys (post, then pre): numpy sorts those stably by radix, 3x faster than one 64-bit key (1.5 M synapses:
    0.07 s against 0.2 s); above, one key pre * n + post."""
    if n <= 1 << 16:
        order = np.argsort(post.astype(np.uint16), kind="stable")
        return order[np.argsort(pre.astype(np.uint16)[order], kind="stable")]
    return np.argsort(pre * n + post, kind="stable")


def totals(synapses: Synapses, n: int, symmetric: bool) -> dict[str, np.ndarray]:
    """Per-edge quantities a weight expression may read: `count`, `total_in` (the count summed over the
    target's inputs of this kind) and `total_out` (over the source's outputs).  For gap junctions both are the
    larger of the two neurons' junction totals, so a normalised junction stays symmetric."""
    into = np.bincount(synapses.post, synapses.count, minlength=n)
    out = np.bincount(synapses.pre, synapses.count, minlength=n)
    if symmetric:
        both = into + out
        larger = np.maximum(both[synapses.pre], both[synapses.post])
        return {"count": synapses.count, "total_in": larger, "total_out": larger}
    return {"count": synapses.count, "total_in": into[synapses.post], "total_out": out[synapses.pre]}


def groups(synapses: Synapses, share: str, classes: list[str] | None, symmetric: bool) -> tuple[np.ndarray, int]:
    """Each synapse's sharing group and the number of groups: one per synapse, per (pre class, post class) pair
    (unordered for gap junctions), or one for all; groups numbered in synapse order."""
    n = len(synapses.pre)
    if share == "synapse":
        return np.arange(n, dtype=np.int64), n
    if share == "all":
        return np.zeros(n, dtype=np.int64), 1 if n else 0
    assert classes is not None
    names, class_index = np.unique(np.array(classes, dtype=object).astype(str), return_inverse=True)
    a, b = class_index[synapses.pre], class_index[synapses.post]
    if symmetric:
        a, b = np.minimum(a, b), np.maximum(a, b)
    key = a.astype(np.int64) * len(names) + b
    _, first, index = np.unique(key, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first)] = np.arange(len(first))  # number groups by their first synapse
    return rank[index].astype(np.int64), len(first)


def group_quantities(count: np.ndarray, index: np.ndarray, n_groups: int) -> dict[str, np.ndarray]:
    """Per-group quantities a strength expression may read: `mean_count` and `edges` (synapses in the group)."""
    edges = np.bincount(index, minlength=n_groups).astype(np.float64)
    total = np.bincount(index, count, minlength=n_groups)
    return {"mean_count": total / np.maximum(edges, 1), "edges": edges}


PER_SYNAPSE_FUNCTIONS = frozenset(f.name for f in FUNCTIONS.values() if f.dims not in ("reduce", "winners", "matvec",
                                                                                      "push"))
"""What a weight formula may call: the element-wise functions (the others work over a signal's axes)."""


def per_edge(expr: ir.Expr, values: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """An expression over named per-edge (or per-group) arrays, as n float64 values (nan where undefined)."""
    unknown = functions_called(expr) - PER_SYNAPSE_FUNCTIONS
    if unknown:
        raise Problem("E301", f"{min(unknown)}() works on signals, not on per-synapse data")
    result = evaluate(expr, lambda var: values[var.name])  # type: ignore[union-attr]  # formulas have no Refs
    return np.broadcast_to(np.asarray(result, dtype=np.float64), (n,)).copy()
