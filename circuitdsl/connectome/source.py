"""A connectome as edge lists over named cells, from a cect dataset or from a user's CSV / NPZ file.

Everything downstream (selection, signs, weights, the IR) reads a `Source`, never cect or the file: cells in
a canonical order, and per synapse kind the (pre, post, count) arrays indexed into those cells.
"""

from __future__ import annotations

import csv
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitdsl.connectome import cect_data, worm
from circuitdsl.errors import Problem


@dataclass(frozen=True)
class Edges:
    """Directed synapses: pre[k] -> post[k] with `count[k]` (contacts, sections, ...); indices into the cells."""

    pre: np.ndarray
    post: np.ndarray
    count: np.ndarray
    sign: np.ndarray | None = None  # a file's own signs (+1 / -1), for `sign = data`

    @classmethod
    def empty(cls) -> Edges:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))


@dataclass(frozen=True)
class Source:
    """The cells and synapses one `connectome(...)` call selects from."""

    label: str  # the dataset's name, or the file's path
    provider: str  # "cect <version>" or "file"
    weights: str  # what a count means
    names: tuple[str, ...]  # every cell, canonical order
    chemical: Edges
    electrical: Edges
    is_worm: bool  # whether C. elegans classes, categories and views apply
    classes: tuple[str, ...] | None = None  # a class per cell (for share = class), when known
    labelled: bool = True  # whether the cells have names (an NPZ file without `names` numbers them)

    @functools.cached_property
    def position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.names)}


def from_cect(name: str) -> Source:
    """A cect dataset's worm cells (neurons and muscles; other cells dropped) in the worm's canonical order."""
    data = cect_data.load(name)
    w = worm.worm()
    cells = sorted((n for n in data.nodes if n in w.order), key=w.order.__getitem__)
    rows = np.array([data.position[n] for n in cells], dtype=np.int64)

    def edges(matrix: np.ndarray) -> Edges:
        sub = matrix[np.ix_(rows, rows)]
        pre, post = np.nonzero(sub)
        return Edges(pre.astype(np.int64), post.astype(np.int64), sub[pre, post])

    return Source(name, f"cect {cect_data.version()}", data.weights, tuple(cells), edges(data.chemical),
                  edges(data.electrical), True, tuple(w.class_of[n] for n in cells))


def from_file(path: str) -> Source:
    """Edges from a CSV file (columns pre, post, and optionally count, kind, sign) or an NPZ file (arrays pre,
    post, and optionally count, electrical, sign, names, classes)."""
    file = Path(path)
    if not file.is_file():
        raise Problem("E906", f"no connectivity file '{path}'")
    try:
        if file.suffix == ".npz":
            return _from_npz(file)
        if file.suffix == ".csv":
            return _from_csv(file)
    except (OSError, ValueError, KeyError) as error:
        raise Problem("E906", f"cannot read '{path}': {error}") from None
    raise Problem("E906", f"'{path}' is neither a .csv nor an .npz file")


def _split(label: str, pre: np.ndarray, post: np.ndarray, count: np.ndarray, electrical: np.ndarray,
           sign: np.ndarray | None, names: tuple[str, ...], classes: tuple[str, ...] | None,
           labelled: bool = True) -> Source:
    n = len(names)
    for side, values in (("pre", pre), ("post", post)):
        if len(values) and (values.min() < 0 or values.max() >= n):
            raise ValueError(f"a '{side}' index is outside the {n} cells")
    if not np.all(np.isfinite(count)) or np.any(count <= 0):
        raise ValueError("every count must be a positive number")
    if sign is not None and not np.all(np.isin(sign, (-1, 1))):
        raise ValueError("every sign must be +1 or -1")

    def part(mask: np.ndarray) -> Edges:
        return Edges(pre[mask], post[mask], count[mask], None if sign is None else sign[mask])

    return Source(label, "file", "counts as given in the file", names, part(~electrical), part(electrical), False,
                  classes, labelled)


def _from_npz(file: Path) -> Source:
    with np.load(file, allow_pickle=False) as data:
        pre = np.asarray(data["pre"], dtype=np.int64)
        post = np.asarray(data["post"], dtype=np.int64)
        count = np.asarray(data["count"], dtype=np.float64) if "count" in data else np.ones(len(pre))
        electrical = np.asarray(data["electrical"], dtype=bool) if "electrical" in data else np.zeros(len(pre), bool)
        sign = np.asarray(data["sign"], dtype=np.int64) if "sign" in data else None
        n = int(max(pre.max(initial=-1), post.max(initial=-1))) + 1
        labelled = "names" in data
        names = tuple(str(x) for x in data["names"]) if labelled else tuple(str(i) for i in range(n))
        classes = tuple(str(x) for x in data["classes"]) if "classes" in data else None
    if classes is not None and len(classes) != len(names):
        raise ValueError(f"{len(classes)} classes for {len(names)} cells")
    if not len({len(pre), len(post), len(count), len(electrical), len(pre) if sign is None else len(sign)}) == 1:
        raise ValueError("the edge arrays differ in length")
    return _split(str(file), pre, post, count, electrical, sign, names, classes, labelled)


def _from_csv(file: Path) -> Source:
    with file.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"pre", "post"} <= set(rows[0]):
        raise ValueError("a connectivity CSV needs a header with the columns pre and post")
    names = tuple(dict.fromkeys(name for row in rows for name in (row["pre"].strip(), row["post"].strip())))
    position = {name: i for i, name in enumerate(names)}
    kinds = [row.get("kind", "chemical").strip() or "chemical" for row in rows]
    if bad := sorted(set(kinds) - {"chemical", "electrical"}):
        raise ValueError(f"unknown kind '{bad[0]}' (chemical or electrical)")
    return _split(str(file),
                  np.array([position[r["pre"].strip()] for r in rows], dtype=np.int64),
                  np.array([position[r["post"].strip()] for r in rows], dtype=np.int64),
                  np.array([float(r.get("count") or 1) for r in rows]),
                  np.array([k == "electrical" for k in kinds]),
                  np.array([int(r["sign"]) for r in rows], dtype=np.int64) if "sign" in rows[0] else None,
                  names, None)
