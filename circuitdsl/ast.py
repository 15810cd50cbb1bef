"""The abstract syntax tree of a .circuit file: immutable nodes, each carrying its source span.

The parser (circuitdsl/parser.py) builds these from lark's parse tree; elaboration reads them and never
looks at the parse tree or the text again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

from circuitdsl.errors import Span


@dataclass(frozen=True)
class Node:
    span: Span


@dataclass(frozen=True)
class Ident(Node):
    """A name written where something is declared (so errors can point at the name itself)."""

    name: str


# ---- expressions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Number(Node):
    value: int | float


@dataclass(frozen=True)
class Quantity(Node):
    """A literal with a physical unit: `10 ms`, `-65 mV` (the sign is a Unary around it)."""

    value: int | float
    unit: Ident


@dataclass(frozen=True)
class String(Node):
    value: str


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Unary(Node):
    op: str  # "+", "-", "not"
    operand: Expr


@dataclass(frozen=True)
class Binary(Node):
    op: str  # + - * / % ** == != < <= > >= and or
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Conditional(Node):
    """`a if cond else b`."""

    cond: Expr
    then: Expr
    other: Expr


@dataclass(frozen=True)
class Over(Node):
    """`dense over channel`, `operator(spectral, modes = [12, 12]) over x, y`: an operator and the axes it acts on."""

    value: Expr
    axes: tuple[Ident, ...]


@dataclass(frozen=True)
class Contraction(Node):
    """`Q · K over head_dim`: two signals multiplied and summed over the named axes (an einsum)."""

    left: Expr
    right: Expr
    axes: tuple[Ident, ...]


@dataclass(frozen=True)
class Arg(Node):
    """One argument of a call or one option of a declaration: `expr` or `name = expr`."""

    name: Ident | None
    value: Expr


@dataclass(frozen=True)
class Call(Node):
    func: Expr
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Slice(Node):
    start: Expr | None
    stop: Expr | None
    step: Expr | None


@dataclass(frozen=True)
class AxisIndex(Node):
    """`x = 3` or `x = 0:64` inside brackets: an index on a named axis."""

    axis: Ident
    value: Expr | Slice


Index = Union["Expr", Slice, AxisIndex]


@dataclass(frozen=True)
class Subscript(Node):
    value: Expr
    indices: tuple[Index, ...]


@dataclass(frozen=True)
class Member(Node):
    value: Expr
    name: Ident


@dataclass(frozen=True)
class ListLit(Node):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class SetLit(Node):
    """`{AVA, PLM}`: bare names inside are symbols (labels), not variables."""

    items: tuple[Expr, ...]


Expr = (Number | Quantity | String | Bool | Name | Unary | Binary | Conditional | Call | Subscript | Member | ListLit
        | SetLit | Over | Contraction)


# ---- declarations and statements -----------------------------------------------------------------


@dataclass(frozen=True)
class Axis(Node):
    name: Ident | None
    size: Expr


@dataclass(frozen=True)
class Dimension(Node):
    """A compound dimension written as a type: `voltage / time`, `conductance / area`, `length ** 2`."""

    factors: tuple[tuple[Ident, int], ...]  # each named dimension with its power (divided by: negative)

    @property
    def name(self) -> str:
        """The dimension as written, e.g. `voltage / time`."""
        text = ""
        for i, (ident, exponent) in enumerate(self.factors):
            shown = exponent if i == 0 else abs(exponent)  # after the first, a negative power is written `/`
            text += ("" if i == 0 else " / " if exponent < 0 else " * ") + ident.name
            text += f" ** {shown}" if shown != 1 else ""
        return text


@dataclass(frozen=True)
class ArgDecl(Node):
    name: Ident
    type: Ident | Dimension
    default: Expr | None


@dataclass(frozen=True)
class Docstring(Node):
    text: str


@dataclass(frozen=True)
class Let(Node):
    name: Ident
    value: Expr


@dataclass(frozen=True)
class StateDecl(Node):
    name: Ident
    init: Expr
    shape: tuple[Axis, ...] | None = None  # a vector state over a neuron's internal axis


@dataclass(frozen=True)
class Port(Node):
    name: Ident
    shape: tuple[Axis, ...] | None
    dim: Ident | Dimension | None
    value: Expr | None


@dataclass(frozen=True)
class InputDecl(Node):
    ports: tuple[Port, ...]


@dataclass(frozen=True)
class OutputDecl(Node):
    ports: tuple[Port, ...]


@dataclass(frozen=True)
class ArrowPair(Node):
    source: Expr
    arrow: str  # "->", "-|", "<->"
    target: Expr


@dataclass(frozen=True)
class Projection(Node):
    pairs: tuple[ArrowPair, ...]
    options: tuple[Arg, ...]


@dataclass(frozen=True)
class InputProjection(Node):
    """`input touch[site = 4] -> N[...] : options`: declares an input and projects it at once."""

    port: Port
    arrow: str
    target: Expr
    options: tuple[Arg, ...]


@dataclass(frozen=True)
class ParamDecl(Node):
    names: tuple[Ident, ...]
    sign: Expr
    init: Expr | None
    options: tuple[Arg, ...]
    shape: tuple[Axis, ...] | None = None  # a neuron's private weights: axes inside each unit


@dataclass(frozen=True)
class ModelRef(Node):
    path: tuple[Ident, ...]
    args: tuple[Arg, ...] | None


@dataclass(frozen=True)
class PopName(Node):
    name: Ident
    shape: tuple[Axis, ...] | None


@dataclass(frozen=True)
class PopulationDecl(Node):
    names: tuple[PopName, ...]
    model: ModelRef
    source: Expr | None = None  # `from net`: the units and wiring of a connectome


@dataclass(frozen=True)
class Assign(Node):
    target: Expr
    value: Expr


@dataclass(frozen=True)
class Spike(Node):
    name: Ident
    condition: Expr
    options: tuple[Arg, ...]


@dataclass(frozen=True)
class For(Node):
    var: Ident
    start: Expr
    stop: Expr
    body: tuple[Stmt, ...]


@dataclass(frozen=True)
class If(Node):
    cond: Expr
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None


Stmt = (
    Docstring | Let | StateDecl | InputDecl | OutputDecl | InputProjection | ParamDecl | PopulationDecl | Assign | Spike
    | Projection | For | If
)


@dataclass(frozen=True)
class ImportFile(Node):
    path: String
    alias: Ident | None


@dataclass(frozen=True)
class ImportLibrary(Node):
    name: Ident
    alias: Ident | None


@dataclass(frozen=True)
class Definition(Node):
    """A `neuron` or `circuit` definition: a name, typed arguments and a body."""

    keyword: str  # "neuron" or "circuit"
    name: Ident
    params: tuple[ArgDecl, ...]
    body: tuple[Stmt, ...]

    @property
    def doc(self) -> str | None:
        first = self.body[0] if self.body else None
        return first.text if isinstance(first, Docstring) else None


Item = ImportFile | ImportLibrary | Definition | Let | Docstring


@dataclass(frozen=True)
class Module(Node):
    """One parsed file."""

    file: str
    items: tuple[Item, ...]

    @property
    def doc(self) -> str | None:
        first = self.items[0] if self.items else None
        return first.text if isinstance(first, Docstring) else None
