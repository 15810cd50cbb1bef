"""The elaborated circuit: a typed, versioned, JSON-serialisable graph that backends and renderers read.

Everything here is plain data.  Populations are the nodes, projections the edges; parameters are a table
that projections index into; neuron models are expression trees.  Quantities are stored as floats in the
canonical units of circuitdsl/units.py.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from circuitdsl.errors import Span
from circuitdsl.ir.arrays import Array

SCHEMA_VERSION = 2  # 2: shared subexpressions (`CircuitIR.shared`, `Shared` nodes)

Value = bool | int | float | str


class _Data(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- shapes -----------------------------------------------------------------------------------------


class Domain(_Data):
    """A field-valued axis: `size` points discretising [low, high] (the last point left out when periodic),
    each point carrying the quadrature weight `measure` = (high - low) / size; operator layers may run the
    axis at another size (`CircuitIR.at_resolution`)."""

    low: float
    high: float
    periodic: bool = False

    def measure(self, size: int) -> float:
        """The quadrature weight of one of `size` points."""
        return (self.high - self.low) / (size if self.periodic else max(size - 1, 1))


class Axis(_Data):
    """A named axis of a population or port; `labels` name its units (e.g. neuron names); `domain` makes it
    a grid over an interval (`x = grid(128, domain = [0, 1], periodic)`)."""

    name: str
    size: int
    labels: list[str] | None = None
    domain: Domain | None = None
    classes: list[str] | None = None  # per unit, its cell class (AVAL, AVAR -> AVA): diagrams group by it
    layers: list[str] | None = None  # per unit, its layer (sensory, inter, motor, muscle): diagram columns


# ---- expressions ------------------------------------------------------------------------------------


class Const(_Data):
    node: Literal["const"] = "const"
    value: bool | int | float


class Var(_Data):
    """A name inside a neuron model: an argument, state, input port, `let`, or `dt`."""

    node: Literal["var"] = "var"
    name: str


class SliceSel(_Data):
    start: int
    stop: int
    step: int = 1


class Gather(_Data):
    indices: Array


AxisSel = int | SliceSel | Gather


class Ref(_Data):
    """A signal: the output of a population (or an input port), optionally a selection of its units."""

    node: Literal["ref"] = "ref"
    source: str
    select: list[AxisSel] | None = None


class Unary(_Data):
    node: Literal["unary"] = "unary"
    op: Literal["-", "not"]
    x: Expr


class Binary(_Data):
    node: Literal["binary"] = "binary"
    op: Literal["+", "-", "*", "/", "%", "**", "==", "!=", "<", "<=", ">", ">=", "and", "or"]
    left: Expr
    right: Expr


class Call(_Data):
    """A built-in element-wise function (see circuitdsl/functions.py for the list and their arities)."""

    node: Literal["call"] = "call"
    fn: str
    args: list[Expr]


class Cond(_Data):
    node: Literal["cond"] = "cond"
    cond: Expr
    then: Expr
    other: Expr


class Shared(_Data):
    """A shared subexpression: entry `index` of `CircuitIR.shared`, stored (and evaluated) once however often it
    is read.  An entry reads only entries before it, so the table is a DAG in topological order."""

    node: Literal["shared"] = "shared"
    index: int


# ---- operations over named axes (circuitdsl/ir/axes.py holds their semantics) -------------------------
# A signal is flat per sample ([batch, units]); these nodes record the named shape of each operand, so that
# every backend reads it as [batch, *sizes], acts on the named axes and flattens the result again.


class Reduce(_Data):
    """`sum(x over token)`, `mean(...)`, `max(...)`: x, laid out `shape`, reduced over the named `axes`; the
    result keeps the other axes in their order."""

    node: Literal["reduce"] = "reduce"
    op: Literal["sum", "mean", "max"]
    x: Expr
    shape: list[Axis]
    axes: list[str]


class Softmax(_Data):
    """`softmax(x over key)`: exp(x) normalised to sum 1 along `axis`, for every unit of the other axes.  With
    `causal` (another axis of the same size, the query), unit j of `axis` gets weight 0 where j is after the
    query's unit i (j > i), as a causal attention mask does."""

    node: Literal["softmax"] = "softmax"
    x: Expr
    shape: list[Axis]
    axis: str
    causal: str | None = None


class Contract(_Data):
    """`Q · K over head_dim`: the product of `left` and `right` summed over the named `axes` (each on both
    sides, of one size).  Every other axis found on both sides is matched unit by unit (broadcast, like heads);
    the result `shape` is left's remaining axes in order, then right's axes that left lacks."""

    node: Literal["contract"] = "contract"
    left: Expr
    right: Expr
    left_shape: list[Axis]
    right_shape: list[Axis]
    axes: list[str]
    shape: list[Axis]


class Rearrange(_Data):
    """x, laid out `shape`, read as `out`: `rename` (an axis gets another name), `transpose` (the same axes in
    another order), `split` (one axis as several of the same total size, `feature = heads × head_dim`) or
    `merge` (adjacent axes as one).  Only `transpose` moves data; the others relabel the flat units."""

    node: Literal["rearrange"] = "rearrange"
    op: Literal["rename", "transpose", "split", "merge"]
    x: Expr
    shape: list[Axis]
    out: list[Axis]


Expr = Annotated[Const | Var | Ref | Unary | Binary | Call | Cond | Shared | Reduce | Softmax | Contract | Rearrange,
                 Field(discriminator="node")]
for _model in (Unary, Binary, Call, Cond, Reduce, Softmax, Contract, Rearrange):
    _model.model_rebuild()


# ---- neuron models ----------------------------------------------------------------------------------


class NeuronInput(_Data):
    """An input port of a neuron model: every projection into it is summed into the variable `name`.

    `shape` gives each unit an internal axis on this port (a dendrite's segments): a projection into it
    reaches unit × segment, and the model's equations reduce the axis (reduce_absmax, ...)."""

    name: str
    dim: str = "dimensionless"
    shape: list[Axis] = []


class StateVar(_Data):
    """A neuron's state; with `shape` (one axis) each unit holds a vector of it, e.g. a history."""

    name: str
    init: Expr
    dim: str
    shape: list[Axis] = []


class NeuronParam(_Data):
    """A neuron model's private weights: every unit of a population holds its own tensor of `shape` (at most
    two axes; a matrix is read through matvec), registered as the parameter `<population>.<name>`; `shared`:
    one tensor for all units of the population instead; `by_class`: one per cell class of the population's
    units (its axis' `classes`, in order of first appearance), gathered per unit as flyvis does."""

    name: str
    shape: list[Axis] = []
    init: Init
    trainable: bool = True
    shared: bool = False
    by_class: bool = False
    dim: str = "dimensionless"


class Equation(_Data):
    """One statement of a neuron's step, run in order.

    kind `let`: bind a local; `update`: assign a state; `ode`: assign a state its integrated value (the
    neuron's method, expanded at elaboration; circuitdsl/elaborate/integrators.py);
    `spike`: name = Heaviside(expr) forward, surrogate derivative backward; `out`: the unit's output.
    """

    kind: Literal["let", "update", "ode", "spike", "out"]
    target: str
    expr: Expr
    surrogate: str | None = None
    surrogate_args: dict[str, float] = {}


class NeuronModel(_Data):
    """One neuron definition elaborated with one set of arguments, which are folded into the equations."""

    name: str
    definition: str
    doc: str | None = None
    args: dict[str, Value]
    inputs: list[NeuronInput]
    states: list[StateVar]
    equations: list[Equation]
    output_dim: str
    params: list[NeuronParam] = []
    output_shape: list[Axis] = []  # a vector output: each unit's out has this axis (e.g. a readout)
    span: Span | None = None


# ---- the network ------------------------------------------------------------------------------------


class Population(_Data):
    name: str
    shape: list[Axis]
    model: str
    args: dict[str, Value]
    instance: str = ""
    span: Span | None = None


class Port(_Data):
    name: str
    shape: list[Axis]
    dim: str = "dimensionless"
    span: Span | None = None


class OutputPiece(_Data):
    """`expr` fills the units `select` of the output (all of it when `select` is None)."""

    select: list[AxisSel] | None = None
    expr: Expr


class Output(_Data):
    name: str
    shape: list[Axis]
    dim: str = "dimensionless"
    pieces: list[OutputPiece]
    span: Span | None = None


class Init(_Data):
    """How a parameter starts: `constant`, `uniform` or `normal` with `args`, or `data`: exactly `values`;
    `random_sign` [value], `orthogonal` [gain], `low_rank` [rank, Frobenius norm] (circuitdsl/ir/init_draws.py)."""

    rule: Literal["constant", "uniform", "normal", "data", "random_sign", "orthogonal", "low_rank"]
    args: list[float]
    values: Array | None = None


Sign = Literal["excitatory", "inhibitory", "free", "fixed"]
Enforce = Literal["clamp", "softplus", "abs", "none"]
Share = Literal["all", "population", "projection", "edge", "class", "unit"]  # unit: a neuron's private weights


class Parameter(_Data):
    """A trainable (or frozen) tensor.  Sign class, enforcement, init and sharing as declared."""

    name: str
    shape: list[int]
    sign: Sign
    enforce: Enforce
    init: Init
    trainable: bool
    share: Share
    dim: str = "dimensionless"
    mask: Array | None = None  # 0/1 per element (flat): a fixed weight-sparsity mask, kept at 0 after each update
    span: Span | None = None

    @property
    def size(self) -> int:
        return math.prod(self.shape)


class Connectivity(_Data):
    """Which source units reach which target units.

    `one_to_one`: unit k to unit k; `all_to_all`: every pair, synapse (t, s) at t * n_source + s;
    explicit rules (`pairs`, `random`, data) list `pre` and `post` flat unit indices, one entry per synapse.
    `args` records how the rule was written (p, seed...) for drawing and provenance.
    """

    rule: str
    pre: Array | None = None
    post: Array | None = None
    args: dict[str, Value] = {}


class WeightRef(_Data):
    """Synapse s of a projection uses element `offset + stride * s` of the flattened parameter, or element
    `index[s]` where `index` is given (a shared group per synapse); times `sign[s] * scale[s]` where those are
    given (fixed data of a connectome: the sign and the magnitude that training scales)."""

    param: str
    offset: int = 0
    stride: int = 0
    index: Array | None = None
    sign: Array | None = None
    scale: Array | None = None


class LearnableDelay(_Data):
    """`delay = learnable(max = K)`: each synapse's delay (element s of `param`) lies in 1..K steps and is read
    through a normalised Gaussian kernel of width `sigma` (a fixed scalar param: > 0 while training, 0 for
    whole-step delays); the projection's `delay` is K, the steps of history it keeps."""

    param: str
    sigma: str
    max: int


class Operator(_Data):
    """A projection between fields: `kind` spectral (FFT, complex weights on `modes` kept modes per grid axis),
    multigrid (a V-cycle over `levels` grids with `smoothing` = [pre, post] steps) or dense (a pointwise
    matrix over `channel`); it acts on the grid `axes` (whether each is `periodic`: the others are zero-padded)
    and mixes `channel` (absent: one channel).  Its weights are the projection's param (layout:
    circuitdsl/ir/operators.py); `bias`, when given, names a param
    holding a function on the grid per output channel.  A multigrid operator's stencils span grid points, so
    `points` fixes them in domain units: the axes' sizes it was elaborated at, where its V-cycle always runs
    (at any other size its input and output are resampled; `at_resolution` leaves `points` as it is).

    On any signal with named axes (no grid: `axes` is empty): `linear` (`dense over token`) is a matrix [out, in]
    over the axis `channel` at every unit of the projection's other axes (source and target alike but for the
    size of `channel`), `bias` a param [out]; `layer_norm` normalises over `channel` (mean 0, variance 1, with
    circuitdsl/ir/axes.py's LAYER_NORM_EPS) at every unit of the other axes, then scales by its weight param [n]
    and shifts by `bias` [n]."""

    kind: Literal["spectral", "multigrid", "dense", "linear", "layer_norm"]
    axes: list[str]
    periodic: list[bool] = []
    channel: str | None = None
    modes: list[int] = []
    levels: int = 0
    smoothing: list[int] = []
    points: list[int] = []
    bias: str | None = None


class Projection(_Data):
    id: str
    kind: Literal["chemical", "electrical"]
    arrow: Literal["->", "-|", "<->"]
    source: Expr
    source_shape: list[Axis]
    target: str
    target_select: list[AxisSel] | None = None
    target_shape: list[Axis]
    port: str
    connectivity: Connectivity
    synapses: int
    weight: WeightRef
    delay: int = 0
    learnable_delay: LearnableDelay | None = None
    operator: Operator | None = None
    recurrent: bool = False
    instance: str = ""
    span: Span | None = None


class Wire(_Data):
    """The signal on a port of an instance: for an input, the parent's signal bound to it; for an output, the
    instance's signal it exports.  Renderers draw sub-circuit ports with these; backends need not read them."""

    port: str
    expr: Expr
    shape: list[Axis]


class Instance(_Data):
    """A node of the circuit hierarchy (the top circuit is the root, with name "")."""

    name: str
    circuit: str
    args: dict[str, Value]
    doc: str | None = None
    array: str | None = None
    index: int | None = None
    inputs: list[str] = []
    outputs: list[str] = []
    populations: list[str] = []
    children: list[Instance] = []
    bound: list[Wire] = []
    exported: list[Wire] = []
    span: Span | None = None


class DataSource(_Data):
    """Where a population's units and wiring came from: a cect dataset or a user's edge file."""

    name: str  # the name the circuit gave it (`net`)
    population: str
    provider: str  # "cect 0.3.5", or "file"
    dataset: str  # the dataset's name, or the file's path
    weights: str  # what a count means, as the provider states it
    sign: str  # the sign policy
    weight: str  # the weight expression as written, e.g. "count * 0.1"
    neurons: int


class CircuitIR(_Data):
    """A whole elaborated circuit, ready for a backend or a renderer."""

    schema_version: int = SCHEMA_VERSION
    name: str
    doc: str | None = None
    args: dict[str, Value]
    inputs: list[Port]
    outputs: list[Output]
    populations: list[Population]
    projections: list[Projection]
    parameters: list[Parameter]
    neurons: dict[str, NeuronModel]
    hierarchy: Instance
    files: list[str]
    sources: list[DataSource] = []
    shared: list[Expr] = []  # shared subexpressions, read through `Shared` nodes (a `let` read more than once)
    shared_names: list[str] = []  # per shared entry, the let that named it ("" if none): diagrams print it

    @property
    def trainable_scalars(self) -> int:
        return sum(p.size for p in self.parameters if p.trainable)

    @property
    def units(self) -> int:
        return sum(math.prod(a.size for a in p.shape) for p in self.populations)

    @property
    def synapses(self) -> int:
        return sum(p.synapses for p in self.projections)

    def population(self, name: str) -> Population:
        for population in self.populations:
            if population.name == name:
                return population
        raise KeyError(name)

    def parameter(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)

    def summary(self) -> str:
        """One line: populations, units, projections, synapses, trainable scalars."""
        return (f"{self.name}: {len(self.populations)} populations, {self.units} units, "
                f"{len(self.projections)} projections, {self.synapses} synapses, "
                f"{self.trainable_scalars} trainable scalars")

    def at_resolution(self, **sizes: int) -> CircuitIR:
        """This circuit with grid axes at other sizes (`x = 512`), for operator layers: see circuitdsl/ir/fields.py."""
        from circuitdsl.ir.fields import at_resolution

        return at_resolution(self, **sizes)

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> CircuitIR:
        from circuitdsl.ir.validate import from_json  # the schema, then the meaning: circuitdsl/ir/validate.py

        return from_json(cls, text)

    def to_networkx(self):  # type: ignore[no-untyped-def]  # networkx has no type stubs
        from circuitdsl.ir.graph import to_networkx

        return to_networkx(self)

    def _repr_pretty_(self, printer, cycle: bool) -> None:  # type: ignore[no-untyped-def]
        printer.text(self.summary())

    def _repr_svg_(self) -> str | None:
        """The folded diagram, for notebooks; None (text is shown instead) where graphviz is not installed."""
        from circuitdsl.draw import notebook_svg

        return notebook_svg(self)


Instance.model_rebuild()
NeuronParam.model_rebuild()  # its Init is defined further down
NeuronModel.model_rebuild()
