"""What an expression evaluates to during elaboration.

Constants are Python numbers, bools and strings, or `Quantity` when they carry a unit.  Everything the
network is made of — signals, parameters, instances, rules — has a value type here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, NamedTuple

import numpy as np

from circuitdsl import ast
from circuitdsl.errors import Span
from circuitdsl.ir import model as ir
from circuitdsl.units import DIMENSIONLESS, Dim, Quantity

if TYPE_CHECKING:
    from circuitdsl.elaborate.modules import ModuleScope

# Enumerations usable as argument types; a bare member name is accepted where one is expected.
ENUMS: Final[dict[str, tuple[str, ...]]] = {
    "sign": ("excitatory", "inhibitory", "free", "fixed"),
    "enforce": ("clamp", "softplus", "abs", "none"),
    "share": ("all", "population", "projection", "edge"),
    "reset": ("subtract", "zero", "none"),
    "surrogate": ("atan", "fast_sigmoid", "sigmoid", "straight_through"),
    "dendrite": ("absolute", "gate", "bias"),  # how active dendrites modulate a unit (library/dendrites.circuit)
    "solver": ("euler", "exponential_euler", "rk4", "exact"),  # a neuron's `method` (elaborate/integrators.py)
    "unit_share": ("class",),  # a neuron param's `shared = class`: one value per cell class of the population
}
# Enumerations whose places also take true or false (`shared = true`, `shared = class`).
WITH_BOOLS: Final[frozenset[str]] = frozenset({"share", "unit_share"})


def choices(kind: str) -> tuple[str, ...]:
    """Every value an enumeration's place accepts, as written (true and false first where they are accepted)."""
    return ("true", "false", *ENUMS[kind]) if kind in WITH_BOOLS else ENUMS[kind]


@dataclass(frozen=True)
class Symbol:
    """A member of an enumeration (`clamp`, `excitatory`) or a label inside a set literal (`{AVAL, AVAR}`)."""

    name: str
    enum: str | None = None


@dataclass(frozen=True)
class Signal:
    """An array-valued expression over populations and ports (or, in a neuron, over its variables)."""

    expr: ir.Expr
    shape: tuple[ir.Axis, ...]
    dim: Dim = DIMENSIONLESS

    @property
    def size(self) -> int:
        return math.prod(a.size for a in self.shape)


@dataclass(frozen=True)
class PopulationRef:
    """A population, a selection of its units, and one of its model's input ports (for projection targets)."""

    name: str
    shape: tuple[ir.Axis, ...]
    select: tuple[ir.AxisSel, ...] | None
    model: str
    port: str = "in"


@dataclass(frozen=True)
class InitRule:
    rule: str  # constant | uniform | normal | data (values from `load(file, name)`)
    args: tuple[float, ...]
    dim: Dim = DIMENSIONLESS
    fixed: bool = False
    values: np.ndarray | None = field(default=None, compare=False)  # the flat values of a `data` rule


@dataclass(frozen=True)
class Rule:
    """A connectivity rule as written: `one_to_one`, `all_to_all`, `pairs(...)`, `random(p = 0.1, seed = 1)`."""

    name: str
    args: tuple[tuple[str, object], ...] = ()


class ParamUse(NamedTuple):
    """One projection's use of a param: the param is sized, and each use given its offset, from all of them."""

    projection: str  # the projection's id
    synapses: int  # how many weights it takes (per-edge sharing)
    natural_shape: tuple[int, ...]  # the weight's shape when this is the param's only use
    target: str  # the target population (per-population sharing)


@dataclass
class ParamHandle:
    """A declared `param`: its settings, and every projection that uses it (to size its tensor)."""

    name: str
    sign: ir.Sign
    enforce: ir.Enforce
    init: InitRule
    trainable: bool
    share: ir.Share
    span: Span
    uses: list[ParamUse] = field(default_factory=list)
    anonymous: bool = False
    mask: Any = None  # a numpy 0/1 weight-sparsity mask (flat), for a projection's own dense weight


@dataclass(frozen=True)
class Builtin:
    """A built-in callable: an element-wise function, an init rule, a connectivity rule or a data import."""

    name: str
    kind: str  # function | init | rule | data | grid | option | axis (circuitdsl/elaborate/axis_ops.py)


@dataclass(frozen=True)
class DataCall:
    """`celegans.connectome(...)` or `connectome("edges.npz", ...)`, waiting for the name it is assigned to."""

    builtin: Builtin
    node: ast.Call


# Built-ins that a shipped library adds to its namespace: `import celegans` gives `celegans.connectome`.
LIBRARY_BUILTINS: Final[dict[str, dict[str, Builtin]]] = {
    "celegans": {"connectome": Builtin("celegans.connectome", "data")},
}


@dataclass(frozen=True)
class Definition:
    """A `neuron` or `circuit` definition together with the module it was written in."""

    node: ast.Definition
    module: ModuleScope

    @property
    def name(self) -> str:
        return self.node.name.name

    @property
    def kind(self) -> str:
        return self.node.keyword


@dataclass(frozen=True)
class Namespace:
    """An imported file or library reached through its alias: `m.Segment`."""

    name: str
    module: ModuleScope


@dataclass
class InstanceValue:
    """An instantiated sub-circuit: its outputs and its still-unbound inputs, reached with `seg[2].bend`."""

    name: str
    definition: Definition
    outputs: dict[str, Signal]
    bound: dict[str, Signal]
    populations: dict[str, PopulationRef]


@dataclass
class InstanceArray:
    """`seg[i] = Segment(...)`: instances collected under one name, indexed by integers."""

    name: str
    items: dict[int, InstanceValue] = field(default_factory=dict)


Value = (
    bool | int | float | str | Quantity | Symbol | Signal | PopulationRef | InitRule | Rule | ParamHandle | Builtin
    | Definition | Namespace | InstanceValue | InstanceArray | list | frozenset
)


def describe(value: object) -> str:
    """What a value is, in a word or two, for error messages."""
    names = {bool: "a bool", int: "an int", float: "a float", str: "a string", Quantity: "a quantity",
             Symbol: "a symbol", Signal: "a signal", PopulationRef: "a population", InitRule: "an init rule",
             Rule: "a connectivity rule", ParamHandle: "a param", Builtin: "a built-in function",
             Namespace: "an imported module", InstanceValue: "a circuit instance",
             InstanceArray: "an array of circuit instances", list: "a list", frozenset: "a set",
             DataCall: "a connectome"}
    if isinstance(value, Definition):
        return f"the {value.kind} '{value.name}'"
    if type(value) in (int, float):  # "a whole number >= 1, not 0": the value itself, never "not an int"
        text = repr(value)
        return f"{names[type(value)]} ({text if len(text) <= 24 else text[:12] + '…'})"
    return names.get(type(value), type(value).__name__)


@dataclass(frozen=True)
class Unbound:
    """An input port of a sub-circuit that its parent did not connect: reading it is an error (E307)."""

    port: str
    instance: str
