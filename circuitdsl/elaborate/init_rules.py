"""Init rules beyond constant / uniform / normal: `random_sign`, `orthogonal`, `low_rank`, `glorot`, `kaiming` and
`from_file`, read from a call, negated by `-rule`, and fitted to a parameter's shape once that is known.

A rule is a value of the language (a circuit argument of type `init`), so an ablation is `--arg init=...`.
Shapes are known only after every projection using a param was seen, so the shape checks (a matrix rule on a
vector, a rank above the matrix size, a file of another shape) run in `to_ir`, pointing at the rule as written.
`glorot` and `kaiming` become `normal(0, std)` with the std of the fans; `from_file` becomes the file's data;
the others stay rules that the backends draw (circuitdsl/ir/init_draws.py).
"""

from __future__ import annotations

import math
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from circuitdsl import ast
from circuitdsl.elaborate.values import InitRule, describe
from circuitdsl.errors import Problem, Span, did_you_mean
from circuitdsl.ir import arrays as ir_arrays
from circuitdsl.ir import model as ir
from circuitdsl.units import DIMENSIONLESS

if TYPE_CHECKING:
    from circuitdsl.elaborate.evaluate import Evaluator
    from circuitdsl.elaborate.scope import Scope

# name -> (positional names, defaults); the arguments of each new rule
SIGNATURES: dict[str, tuple[tuple[str, ...], dict[str, object]]] = {
    "random_sign": (("value",), {"value": 1.0}),
    "orthogonal": (("gain",), {"gain": 1.0}),
    "low_rank": (("rank", "norm"), {"norm": None, "like": None}),
    "glorot": (("gain",), {"gain": 1.0}),
    "kaiming": (("gain",), {"gain": 1.0}),
    "from_file": (("path",), {"key": None}),
}
MATRIX_RULES = ("orthogonal", "low_rank", "glorot", "kaiming")
MAX_FILE_ELEMENTS = 50_000_000  # a weights file larger than this is refused before it is read


@dataclass(frozen=True, eq=False)
class ShapedRule(InitRule):
    """A rule whose values depend on the parameter's shape, or on a file: kept with the place it was written."""

    span: Span | None = None
    like: InitRule | None = None  # low_rank(rank, like = rule): the norm that rule is expected to have
    data: np.ndarray | None = None  # from_file: the array read (already negated when written `-from_file(...)`)
    source: str = ""  # from_file: the file (and key) as written, for messages and the IR's argument text


def call(ev: Evaluator, node: ast.Call, scope: Scope, name: str) -> InitRule:
    """`random_sign(1)`, `low_rank(rank = 2, like = normal(0, 0.1))`, `from_file("w.npy", key = "w")`..."""
    values = _arguments(ev, node, scope, name)
    if name == "from_file":
        return _from_file(ev, node, values)
    if name == "low_rank":
        return _low_rank(ev, node, values)
    gain = _number(ev, node, name, "gain" if name != "random_sign" else "value", values)
    return ShapedRule(name, (gain,), DIMENSIONLESS, span=node.span)


def negate(rule: InitRule) -> InitRule:
    """`-rule`: every drawn value negated (`-uniform(0, 1)` is uniform(-1, 0)), for a mirrored sign class."""
    if rule.rule == "uniform":
        return InitRule("uniform", (0.0 - rule.args[1], 0.0 - rule.args[0]), rule.dim)  # 0.0 - x: no -0.0
    if rule.rule == "normal":
        return InitRule("normal", (0.0 - rule.args[0], rule.args[1]), rule.dim)
    if isinstance(rule, ShapedRule):
        args = (rule.args[0], 0.0 - rule.args[1]) if rule.rule == "low_rank" else tuple(0.0 - a for a in rule.args)
        like = negate(rule.like) if rule.like is not None else None
        data = -rule.data if rule.data is not None else None
        return ShapedRule(rule.rule, args, rule.dim, span=rule.span, like=like, data=data, source=rule.source)
    values = None if rule.values is None else -rule.values  # load(...): the file's values, negated
    return InitRule(rule.rule, tuple(0.0 - a for a in rule.args), rule.dim, rule.fixed, values)


def text(rule: InitRule) -> str:
    """The rule as it would be written, for the IR's record of circuit arguments (`init = "uniform(0, 1)"`)."""
    if isinstance(rule, ShapedRule) and rule.rule == "from_file":
        return f"from_file({rule.source})"
    if isinstance(rule, ShapedRule) and rule.like is not None:
        return f"low_rank(rank = {rule.args[0]:g}, like = {text(rule.like)})"
    return f"{rule.rule}({', '.join(f'{a:g}' for a in rule.args)})"


def value_range(rule: InitRule) -> tuple[float, float]:
    """The lowest and highest value a rule can draw (a normal's mean stands for both): for the sign checks."""
    if rule.values is not None:  # load(...)
        return (float(rule.values.min()), float(rule.values.max())) if rule.values.size else (0.0, 0.0)
    if rule.rule == "uniform":
        return rule.args[0], rule.args[1]
    if rule.rule in ("constant", "normal"):
        return rule.args[0], rule.args[0]
    if isinstance(rule, ShapedRule) and rule.data is not None:
        return (float(rule.data.min()), float(rule.data.max())) if rule.data.size else (0.0, 0.0)
    if rule.rule == "random_sign":
        return -abs(rule.args[0]), abs(rule.args[0])
    return -math.inf, math.inf  # orthogonal, low_rank, glorot, kaiming: both signs


def to_ir(ev: Evaluator, rule: InitRule, shape: list[int], name: str, param_span: Span | None = None) -> ir.Init:
    """The rule for a parameter of this shape, checked: an E302 when it does not fit, an E801 for a bad rank.

    Errors point at the rule as written; a rule given on the command line has no place in a file, so they point at
    the param that uses it instead."""
    if not isinstance(rule, ShapedRule):
        return ir.Init(rule=rule.rule, args=list(rule.args))  # type: ignore[arg-type]
    if rule.span is not None and rule.span.file.startswith("<") and param_span is not None:
        rule = ShapedRule(rule.rule, rule.args, rule.dim, span=param_span, like=rule.like, data=rule.data,
                          source=rule.source)
    where = f"param '{name}' has shape {list(shape)}"
    if rule.rule == "from_file":
        assert rule.data is not None
        if list(rule.data.shape) != list(shape):
            raise ev.fail("E302", f"from_file({rule.source}) holds shape {list(rule.data.shape)}, but {where}",
                          rule.span, ["save an array of the param's shape"])
        return ir.Init(rule="data", args=[], values=ir_arrays.Array(rule.data.astype(np.float64)))
    if rule.rule in MATRIX_RULES and len(shape) != 2:
        raise ev.fail("E302", f"{rule.rule}() needs a matrix [target, source], but {where}", rule.span,
                      ["use it on an all_to_all (dense) weight that is not shared"])
    fan_out, fan_in = shape if len(shape) == 2 else (1, 1)
    if rule.rule == "glorot":
        return ir.Init(rule="normal", args=[0.0, abs(rule.args[0]) * math.sqrt(2.0 / (fan_in + fan_out))])
    if rule.rule == "kaiming":
        return ir.Init(rule="normal", args=[0.0, abs(rule.args[0]) / math.sqrt(fan_in)])
    if rule.rule == "low_rank":
        return ir.Init(rule="low_rank", args=[rule.args[0], _low_rank_norm(ev, rule, shape, where)])
    return ir.Init(rule=rule.rule, args=list(rule.args))  # type: ignore[arg-type]


def expected_norm(ev: Evaluator, rule: InitRule, shape: list[int]) -> float:
    """E‖W‖_F of a full-rank rule over `shape` (the root of the expected sum of squares), signed like the rule."""
    n = math.prod(shape)
    a = rule.args
    if rule.rule == "constant" or rule.rule == "random_sign":
        return math.sqrt(n) * a[0]
    if rule.rule == "uniform":
        mean_square = (a[0] ** 2 + a[0] * a[1] + a[1] ** 2) / 3.0
        return math.copysign(math.sqrt(n * mean_square), a[0] + a[1] or 1.0)
    if rule.rule == "normal":
        return math.copysign(math.sqrt(n * (a[0] ** 2 + a[1] ** 2)), a[0] or 1.0)
    if rule.rule == "orthogonal":
        return a[0] * math.sqrt(min(shape))
    if rule.rule in ("glorot", "kaiming"):
        return math.sqrt(n) * to_ir(ev, rule, shape, "", None).args[1]
    raise ev.fail("E301", f"low_rank(like = ...) needs a random rule, not {rule.rule}()",
                  rule.span if isinstance(rule, ShapedRule) else None)


def _low_rank_norm(ev: Evaluator, rule: ShapedRule, shape: list[int], where: str) -> float:
    rank = int(rule.args[0])
    if rank > min(shape):
        raise ev.fail("E801", f"low_rank(rank = {rank}) is above the matrix size: {where}", rule.span,
                      [f"the rank is at most {min(shape)} here"])
    return expected_norm(ev, rule.like, shape) if rule.like is not None else rule.args[1]


def _low_rank(ev: Evaluator, node: ast.Call, values: dict[str, tuple[object, Span]]) -> ShapedRule:
    rank = _number(ev, node, "low_rank", "rank", values)
    if not float(rank).is_integer() or rank < 1:
        raise ev.fail("E801", f"low_rank() needs a rank >= 1, an integer; got {rank:g}", values["rank"][1])
    has_norm, has_like = values["norm"][0] is not None, values["like"][0] is not None
    if has_norm == has_like:
        raise ev.fail("E301", "low_rank() takes its size as norm = number or like = a full-rank rule, one of them",
                      node.span, ["e.g. low_rank(rank = 1, norm = 5) or low_rank(rank = 1, like = normal(0, 0.1))"])
    if has_like:
        like, span = values["like"]
        if not isinstance(like, InitRule) or like.rule in ("low_rank", "from_file", "data"):
            raise ev.fail("E301", f"low_rank(like = ...) needs a full-rank rule, not {describe(like)}", span)
        return ShapedRule("low_rank", (rank, 0.0), DIMENSIONLESS, span=node.span, like=like)
    norm = _number(ev, node, "low_rank", "norm", values)
    return ShapedRule("low_rank", (rank, norm), DIMENSIONLESS, span=node.span)


def _arguments(ev: Evaluator, node: ast.Call, scope: Scope, name: str) -> dict[str, tuple[object, Span]]:
    """Positional and keyword arguments matched to the rule's names; defaults filled in."""
    positional, defaults = SIGNATURES[name]
    names = [*positional, *(k for k in defaults if k not in positional)]
    values: dict[str, tuple[object, Span]] = {}
    for i, arg in enumerate(node.args):
        key = arg.name.name if arg.name is not None else (positional[i] if i < len(positional) else None)
        if key is None or key not in names:
            where = arg.name.span if arg.name is not None else arg.span
            raise ev.fail("E203", f"{name}() has no argument {key!r}" if key else f"{name}() takes "
                          f"{len(positional)} positional argument{'s' * (len(positional) != 1)}", where,
                          [did_you_mean(key or "", names), f"arguments: {', '.join(names)}"])
        if key in values:
            raise ev.fail("E202", f"argument '{key}' of {name}() is given twice", arg.span)
        values[key] = (ev.constant(arg.value, scope, f"an argument of {name}()"), arg.value.span)
    for key in names:
        if key not in values:
            if key not in defaults:
                raise ev.fail("E204", f"{name}() needs the argument '{key}'", node.span,
                              [f"arguments: {', '.join(names)}"])
            values[key] = (defaults[key], node.span)
    return values


def _number(ev: Evaluator, node: ast.Call, name: str, key: str, values: dict[str, tuple[object, Span]]) -> float:
    value, span = values[key]
    if not isinstance(value, int | float) or isinstance(value, bool):  # a quantity (with a unit) is refused too
        raise ev.fail("E301", f"{name}() needs a plain number for '{key}', not {describe(value)}", span)
    number = float(value)
    if not math.isfinite(number):
        raise ev.fail("E801", f"{name}(): '{key}' must be finite", span)
    return number


def _from_file(ev: Evaluator, node: ast.Call, values: dict[str, tuple[object, Span]]) -> ShapedRule:
    path, span = values["path"]
    key, key_span = values["key"]
    if not isinstance(path, str):
        raise ev.fail("E301", f"from_file() needs a file name in quotes, not {describe(path)}", span)
    if key is not None and not isinstance(key, str):
        raise ev.fail("E301", f"from_file(key = ...) is a name in quotes, not {describe(key)}", key_span)
    data = read_weights(ev, _located(ev, path, span), path, key, span)
    source = repr(path).replace("'", '"') + (f', key = "{key}"' if key else "")
    return ShapedRule("from_file", (), DIMENSIONLESS, span=node.span, data=data, source=source)


def _located(ev: Evaluator, path: str, span: Span) -> Path:
    """A weights file inside the sandbox (like imports and data files, docs/limits.md): next to the .circuit file
    that names it, or for a rule given on the command line, next to the top file."""
    here = Path(span.file)
    folder = here.parent if here.exists() else (ev.sandbox.roots[0] if ev.sandbox.roots else Path("."))
    try:
        return Path(ev.sandbox.resolve(path, str(folder), "the weights file"))
    except Problem as problem:
        raise ev.fail("E907", problem.message, span, list(problem.notes)) from None


def read_weights(ev: Evaluator, file: Path, written: str, key: str | None, span: Span) -> np.ndarray:
    """A float array from .npy, .npz or .safetensors (a key picks the array of a multi-array file); E907 if not."""
    suffix = file.suffix.lower()
    if suffix not in (".npy", ".npz", ".safetensors"):
        raise ev.fail("E907", f"weights file '{written}' is not .npy, .npz or .safetensors", span)
    if not file.is_file():
        raise ev.fail("E907", f"no weights file '{written}' (looked for {file})", span,
                      ["paths are relative to the .circuit file"])
    try:
        arrays = _load(file, suffix)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise ev.fail("E907", f"cannot read weights file '{written}': {error}", span) from None
    if key is None and len(arrays) != 1:
        raise ev.fail("E907", f"weights file '{written}' holds {len(arrays)} arrays; pick one with key = ...", span,
                      [f"keys: {', '.join(sorted(arrays))}"])
    if key is not None and key not in arrays:
        raise ev.fail("E907", f"weights file '{written}' has no array '{key}'", span,
                      [did_you_mean(key, list(arrays)), f"keys: {', '.join(sorted(arrays))}"])
    array = arrays[key] if key is not None else next(iter(arrays.values()))
    if array.dtype.kind not in "fiu" or not np.all(np.isfinite(array)):
        raise ev.fail("E907", f"weights file '{written}' must hold finite numbers, not {array.dtype}", span)
    return np.asarray(array, dtype=np.float64)


def _load(file: Path, suffix: str) -> dict[str, np.ndarray]:
    """Every array of the file, by name, without unpickling anything (sizes checked before reading data)."""
    if suffix == ".npy":
        array = np.load(file, mmap_mode="r", allow_pickle=False)
        _check_size(array.size)
        return {"": np.array(array)}
    if suffix == ".npz":
        with np.load(file, allow_pickle=False) as archive:
            return {name: _sized(archive[name]) for name in archive.files}
    from safetensors.numpy import load_file
    return {name: _sized(array) for name, array in load_file(str(file)).items()}


def _sized(array: np.ndarray) -> np.ndarray:
    _check_size(array.size)
    return array


def _check_size(size: int) -> None:
    if size > MAX_FILE_ELEMENTS:
        raise ValueError(f"{size} values, above the limit of {MAX_FILE_ELEMENTS}")
