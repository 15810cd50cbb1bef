"""A connectome as edge lists over named cells, from a cect dataset or from a user's CSV / NPZ file.

Everything downstream (selection, signs, weights, the IR) reads a `Source`, never cect or the file: cells in
a canonical order, and per synapse kind the (pre, post, count) arrays indexed into those cells.
"""

from __future__ import annotations

import functools
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def from_file(path: str, max_rows: int) -> Source:
    """Edges from a CSV file (columns pre, post, and optionally count, kind, sign) or an NPZ file (arrays pre,
    post, and optionally count, electrical, sign, names, classes); at most `max_rows` edges (E710)."""
    file = Path(path)
    if not file.is_file():
        raise Problem("E906", f"no connectivity file '{path}'")
    try:
        if file.suffix == ".npz":
            return _from_npz(file, max_rows)
        if file.suffix == ".csv":
            return _from_csv(file, max_rows)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise Problem("E906", f"cannot read '{path}': {error}") from None
    raise Problem("E906", f"'{path}' is neither a .csv nor an .npz file")


def _too_many(rows: int, max_rows: int) -> Problem:
    return Problem("E710", f"the file has {rows} edges or more, over the limit data_rows = {max_rows}",
                   ("if that is really meant, raise it: --limit data_rows=N, or Limits(data_rows=N) from Python",))


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

    chemical = part(~electrical) if electrical.any() else Edges(pre, post, count, sign)  # no copies when one kind
    return Source(label, "file", "counts as given in the file", names, chemical, part(electrical), False,
                  classes, labelled)


def _from_npz(file: Path, max_rows: int) -> Source:
    with np.load(file, allow_pickle=False) as data:
        for key in data.files:  # sizes from the headers, before any array is read
            if (rows := _npz_length(data.zip, f"{key}.npy")) > max_rows:
                raise _too_many(rows, max_rows)
        arrays = {key: data[key] for key in ("pre", "post", "count", "electrical", "sign", "names", "classes")
                  if key in data}
    if "pre" not in arrays or "post" not in arrays:
        raise ValueError("an NPZ connectivity file holds the arrays pre and post")
    if bad := [key for key, value in arrays.items() if value.ndim != 1]:
        raise ValueError(f"'{bad[0]}' is an array of shape {arrays[bad[0]].shape}; every array is one-dimensional")
    pre, post = (_whole(arrays[key], key) for key in ("pre", "post"))
    count = np.asarray(arrays["count"], dtype=np.float64) if "count" in arrays else np.ones(len(pre))
    electrical = np.asarray(arrays["electrical"], dtype=bool) if "electrical" in arrays else np.zeros(len(pre), bool)
    sign = _whole(arrays["sign"], "sign") if "sign" in arrays else None
    n = int(max(pre.max(initial=-1), post.max(initial=-1))) + 1
    labelled = "names" in arrays
    names = tuple(str(x) for x in arrays["names"]) if labelled else tuple(str(i) for i in range(n))
    classes = tuple(str(x) for x in arrays["classes"]) if "classes" in arrays else None
    if classes is not None and len(classes) != len(names):
        raise ValueError(f"{len(classes)} classes for {len(names)} cells")
    if not len({len(pre), len(post), len(count), len(electrical), len(pre) if sign is None else len(sign)}) == 1:
        raise ValueError("the edge arrays differ in length")
    return _split(str(file), pre, post, count, electrical, sign, names, classes, labelled)


def _npz_length(archive: zipfile.ZipFile, member: str) -> int:
    """The first dimension of an array stored in an NPZ file, read from its header alone."""
    with archive.open(member) as handle:
        version = np.lib.format.read_magic(handle)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape = read(handle)[0]
    return int(shape[0]) if shape else 1


def _whole(values: np.ndarray, what: str) -> np.ndarray:
    """Indices or signs as int64: whole numbers (an integer array, or floats without a fraction) only."""
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    if values.dtype.kind == "f" and np.all(np.isfinite(values)) and np.all(values == np.round(values)) \
            and np.all(np.abs(values) < 2**62):
        return values.astype(np.int64)
    raise ValueError(f"'{what}' holds {values.dtype} values, not whole numbers")


def _from_csv(file: Path, max_rows: int) -> Source:
    """A CSV edge list read column-wise by pandas' C parser; names numbered in order of first appearance (as pre
    or post).  Spaces around a name are dropped on the distinct names, not on every row."""
    table = _read_table(file, max_rows)
    pairs = np.column_stack([table["pre"].to_numpy(object), table["post"].to_numpy(object)]).ravel()
    raw_codes, raw_names = _pandas().factorize(pairs)
    merged, names = _pandas().factorize(np.array([str(n).strip() for n in raw_names], dtype=object))
    codes = merged[raw_codes]
    if "" in set(names):  # a row without a pre or a post
        row = int(np.flatnonzero(codes == list(names).index(""))[0])
        raise ValueError(f"line {row // 2 + 2} has no '{('pre', 'post')[row % 2]}'")
    electrical = _electrical(table["kind"]) if "kind" in table else np.zeros(len(table), dtype=bool)
    count = _numbers(table["count"], "count", 1.0) if "count" in table else np.ones(len(table))
    sign = _numbers(table["sign"], "sign", None) if "sign" in table else None
    if sign is not None and not np.all(np.isin(sign, (-1, 1))):
        raise ValueError("every sign must be +1 or -1")
    return _split(str(file), codes[0::2].astype(np.int64), codes[1::2].astype(np.int64), count,
                  electrical, None if sign is None else sign.astype(np.int64),
                  tuple(str(n) for n in names), None)


def _read_table(file: Path, max_rows: int) -> Any:
    """The CSV as a table: names and kinds as text (a missing field is ""), numbers parsed where every row has
    one; at most `max_rows` rows read."""
    pandas = _pandas()
    try:
        with warnings.catch_warnings():  # a first row longer than the header: pandas warns, and would drop fields
            warnings.simplefilter("error", pandas.errors.ParserWarning)
            table = pandas.read_csv(file, dtype={"pre": str, "post": str, "kind": str}, keep_default_na=False,
                                    nrows=max_rows + 1, encoding="utf-8", skipinitialspace=True, index_col=False,
                                    on_bad_lines="error")
    except pandas.errors.ParserWarning:
        raise ValueError("line 2 has more fields than the header") from None
    except (pandas.errors.ParserError, pandas.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise ValueError(" ".join(str(error).split())[:300]) from None
    if len(table) > max_rows:
        raise _too_many(len(table), max_rows)
    table.columns = [str(c).strip() for c in table.columns]
    if not {"pre", "post"} <= set(table.columns) or table.empty:
        raise ValueError("a connectivity CSV needs a header with the columns pre and post, and one edge a line")
    return table


def _electrical(column: Any) -> np.ndarray:
    """The `kind` column as a mask of gap junctions: chemical (the default for an empty field) or electrical,
    read on the distinct values."""
    codes, values = _pandas().factorize(column.to_numpy(object))
    kinds = [str(v).strip() or "chemical" for v in values]
    if bad := sorted(set(kinds) - {"chemical", "electrical"}):
        raise ValueError(f"unknown kind '{bad[0]}' (chemical or electrical)")
    return np.array([k == "electrical" for k in kinds], dtype=bool)[codes] if kinds else np.zeros(0, dtype=bool)


def _numbers(column: Any, what: str, default: float | None) -> np.ndarray:
    """A column of numbers (pandas parsed it already when every row holds one); a missing field is `default`,
    and the first line that holds no number is named."""
    if column.dtype.kind in "iuf":
        return column.to_numpy(dtype=np.float64)
    text = column.to_numpy(object)
    if default is not None:
        text = np.where(np.char.strip(text.astype(str)) == "", str(default), text)
    values = _pandas().to_numeric(_pandas().Series(text), errors="coerce").to_numpy(dtype=np.float64)
    if bad := np.flatnonzero(np.isnan(values)).tolist():
        raise ValueError(f"line {bad[0] + 2}: '{what}' is {column.iloc[bad[0]]!r}, not a number")
    return values


def _pandas() -> Any:
    """pandas, imported when a CSV is read (the `connectome` extra installs it)."""
    try:
        import pandas
    except ImportError:
        raise Problem("E906", "reading a CSV edge list needs pandas", ("pip install 'circuitdsl[connectome]'",)) \
            from None
    return pandas
