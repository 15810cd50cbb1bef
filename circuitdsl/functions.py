"""The built-in element-wise functions of the language: arity, how they treat units, and their value.

Defined once here: elaboration uses the table to check dimensions and fold constants; backends map
the same names onto their array operations.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

# How a function treats the dimensions of its arguments:
#   same        all arguments share one dimension, which the result keeps (clamp, min, max, where's branches)
#   keep        the result has the first argument's dimension (abs, relu, detach)
#   pure        arguments must be dimensionless, so is the result (exp, tanh, ...)
#   indicator   any dimension in, a dimensionless 0/1 out (step)
#   sqrt        halves the dimension's exponents
#   where       a dimensionless condition, then two branches of one dimension
#   reduce      the first argument's dimension, its last axis reduced away (a neuron port's segments)
#   winners     the first argument's dimension; the second is a whole number of winners (k-WTA)
#   matvec      the product of the dimensions: a neuron's matrix param times a vector over its last axis
#   push        a vector (a history) and one value of its dimension; the vector's shape
DimRule = Literal["same", "keep", "pure", "indicator", "sqrt", "where", "reduce", "winners", "matvec", "push"]


@dataclass(frozen=True)
class Function:
    name: str
    arity: int
    dims: DimRule
    value: Callable[..., float]
    doc: str


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))


def _log(x: float) -> float:
    if x <= 0:
        raise ValueError("log of a non-positive number")
    return math.log(x)


def _sqrt(x: float) -> float:
    if x < 0:
        raise ValueError("square root of a negative number")
    return math.sqrt(x)


FUNCTIONS: Final[dict[str, Function]] = {f.name: f for f in [
    Function("clamp", 3, "same", lambda x, lo, hi: min(max(x, lo), hi), "clamp(x, lo, hi): x limited to [lo, hi]"),
    Function("min", 2, "same", min, "min(a, b)"),
    Function("max", 2, "same", max, "max(a, b)"),
    Function("abs", 1, "keep", abs, "abs(x)"),
    Function("relu", 1, "keep", lambda x: max(x, 0.0), "relu(x) = max(x, 0)"),
    Function("detach", 1, "keep", lambda x: x, "detach(x): x, with no gradient flowing back through it"),
    Function("floor", 1, "keep", math.floor, "floor(x)"),
    Function("exp", 1, "pure", math.exp, "exp(x)"),
    Function("log", 1, "pure", _log, "natural logarithm"),
    Function("tanh", 1, "pure", math.tanh, "tanh(x)"),
    Function("erf", 1, "pure", math.erf, "erf(x), the Gauss error function (GELU is x (1 + erf(x / sqrt(2))) / 2)"),
    Function("sigmoid", 1, "pure", _sigmoid, "sigmoid(x) = 1 / (1 + exp(-x))"),
    Function("sin", 1, "pure", math.sin, "sin(x), x in radians"),
    Function("cos", 1, "pure", math.cos, "cos(x), x in radians"),
    Function("step", 1, "indicator", lambda x: 1.0 if x > 0 else 0.0, "step(x) = 1 if x > 0 else 0"),
    Function("sqrt", 1, "sqrt", _sqrt, "square root"),
    Function("where", 3, "where", lambda c, a, b: a if c else b, "where(c, a, b): a where c holds, else b"),
    Function("reduce_sum", 1, "reduce", lambda x: x, "reduce_sum(x): the sum over x's last axis"),
    Function("reduce_max", 1, "reduce", lambda x: x, "reduce_max(x): the largest value over x's last axis"),
    Function("reduce_absmax", 1, "reduce", lambda x: x,
             "reduce_absmax(x): the value of largest magnitude over x's last axis, its sign kept"),
    Function("kwta", 2, "winners", lambda x, k: x,
             "kwta(x, k): the k largest values over all units kept, the others 0; gradient to winners only"),
    Function("matvec", 2, "matvec", lambda w, x: w * x,
             "matvec(W, x): a neuron's matrix param W[out, in] times its vector x[in], per unit: a vector [out]"),
    Function("push", 2, "push", lambda h, x: x,
             "push(h, x): the history h without its first (oldest) element, x appended last"),
]}

REDUCTIONS: Final = frozenset(f.name for f in FUNCTIONS.values() if f.dims == "reduce")
"""Functions over an axis: the IR passes the axis' size as an extra last argument, so backends reshape."""

# Surrogate gradients for `spike` statements: name -> (parameter, default), as in snnTorch.
SURROGATES: Final[dict[str, dict[str, float]]] = {
    "atan": {"alpha": 2.0},
    "fast_sigmoid": {"slope": 25.0},
    "sigmoid": {"slope": 25.0},
    "straight_through": {},
}
