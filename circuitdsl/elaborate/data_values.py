"""`load("weights.npz", "name")`: an init rule whose values come from an array in a numpy .npz file.

Converted models (circuitdsl convert model.nir) keep their weight matrices beside the .circuit file this way,
so the circuit stays readable text.  The path is relative to the .circuit file; the array is checked (a
number array, finite, within the synapse limit) before it is used, and its size against the parameter's later.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, TYPE_CHECKING

import numpy as np

from circuitdsl import ast
from circuitdsl.elaborate.values import InitRule
from circuitdsl.errors import Problem

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator
    from circuitdsl.elaborate.scope import Scope


def load_rule(ev: Evaluator, node: ast.Call, scope: Scope, limit: int) -> InitRule:
    """The `load(file, name)` init rule: the named array of the file, flattened, as float64 values."""
    if len(node.args) != 2:
        raise ev.fail("E301", f"load() takes 2 arguments (file, array name), got {len(node.args)}", node.span,
                      ['e.g. weight = load("weights.npz", "fc1")'])
    file, name = (ev.constant(a.value, scope, "an argument of load()") for a in node.args)
    for value, arg in zip((file, name), node.args, strict=True):
        if not isinstance(value, str):
            raise ev.fail("E301", "load() takes a file name and an array name, as strings", arg.value.span)
    where = node.args[0].value.span
    try:  # inside the sandbox, like imports and connectivity files (docs/limits.md)
        path = ev.sandbox.resolve(str(file), str(Path(node.span.file).parent), "the data file")
    except Problem as problem:
        raise ev.fail("E907", problem.message, where, list(problem.notes)) from None
    try:
        with zipfile.ZipFile(path) as archive:
            names = [n.removesuffix(".npy") for n in archive.namelist()]
            if name not in names:
                raise ev.fail("E907", f"'{file}' has no array '{name}'", node.args[1].value.span,
                              [f"its arrays: {', '.join(sorted(names)) or 'none'}"])
            with archive.open(f"{name}.npy") as member:
                values = _read_array(member, limit)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ev.fail("E907", f"cannot read array '{name}' of '{file}'", where, [str(error)]) from None
    values = values.astype(np.float64).reshape(-1)
    if not np.all(np.isfinite(values)):
        raise ev.fail("E907", f"array '{name}' of '{file}' holds NaN or infinite values", where)
    return InitRule("data", (), values=values)


def _read_array(member: IO[bytes], limit: int) -> np.ndarray:
    """One .npy member: its header checked (numbers, at most `limit` values) before the data is read."""
    version = np.lib.format.read_magic(member)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read_header(member)
    size = int(np.prod(shape, dtype=np.int64))
    if dtype.kind not in "biuf" or size > limit:
        raise ValueError(f"an array of {size} {dtype} values; expected at most {limit} numbers")
    data = np.frombuffer(member.read(size * dtype.itemsize), dtype=dtype)
    if data.size != size:
        raise ValueError(f"the array is truncated: {data.size} of {size} values")
    return data.reshape(shape, order="F" if fortran else "C")

