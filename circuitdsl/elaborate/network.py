"""The state one elaboration's passes share: the network built so far (`Network`), the circuit instance whose
body is running (`Frame`), and the typed records they hold between the passes.

The passes: statements.py runs a body (instances.py expands sub-circuits in it), ports.py declares and fills
inputs and outputs, populations.py and params.py declare (shapes.py checks their axes), projections.py wires,
param_layout.py sizes the params and completes the projections, circuits.py assembles the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from circuitdsl.elaborate import select
from circuitdsl.elaborate.evaluate import Evaluator, Poisoned
from circuitdsl.elaborate.sandbox import Sandbox
from circuitdsl.elaborate.scope import Binding, Scope
from circuitdsl.elaborate.values import Definition, ParamHandle, PopulationRef, Signal
from circuitdsl.errors import Reporter, Span
from circuitdsl.ir import model as ir
from circuitdsl.limits import Limits
from circuitdsl.units import Dim

Arrow = Literal["->", "-|", "<->"]


@dataclass
class Counts:
    """Running totals, checked against the limits as statements run (limits.py)."""

    units: int = 0
    synapses: int = 0
    statements: int = 0
    instances: int = 0


class OutputPiece(NamedTuple):
    """One assignment to an output: the units it fills, the signal they get, and where it is written."""

    picks: tuple[select.AxisPick, ...]
    signal: Signal
    span: Span


@dataclass
class PortOutput:
    """A declared output while its body runs: assignments add pieces; ports.finish_outputs checks the cover."""

    name: str
    shape: tuple[ir.Axis, ...]
    dim: Dim
    span: Span
    pieces: list[OutputPiece] = field(default_factory=list)
    failed: bool = False  # an assignment to it failed (and was reported): no E306 on top of that


@dataclass(frozen=True)
class ProjectionDraft:
    """A projection's IR fields except its weight reference, which waits for its param's layout."""

    id: str
    kind: Literal["chemical", "electrical"]
    arrow: Arrow
    source: ir.Expr
    source_shape: list[ir.Axis]
    target: str
    target_select: list[ir.AxisSel] | None
    target_shape: list[ir.Axis]
    port: str
    connectivity: ir.Connectivity
    synapses: int
    instance: str
    span: Span
    delay: int = 0
    learnable_delay: ir.LearnableDelay | None = None
    operator: ir.Operator | None = None

    def complete(self, weight: ir.WeightRef) -> ir.Projection:
        """The IR projection, reading its weights at `weight`."""
        return ir.Projection(id=self.id, kind=self.kind, arrow=self.arrow, source=self.source,
                             source_shape=self.source_shape, target=self.target, target_select=self.target_select,
                             target_shape=self.target_shape, port=self.port, connectivity=self.connectivity,
                             synapses=self.synapses, weight=weight, delay=self.delay,
                             learnable_delay=self.learnable_delay, operator=self.operator, instance=self.instance,
                             span=self.span)


@dataclass(frozen=True)
class PendingProjection:
    """A projection whose weight offsets are known only once every use of its param is seen."""

    draft: ProjectionDraft
    param: ParamHandle
    use: int  # the index of this projection's entry in `param.uses`


class LetName(NamedTuple):
    """A `let`'s name for its signal, should the signal be stored as a shared entry (named in diagrams)."""

    expr: ir.Expr  # held, so that the id keying it stays this expression's
    name: str


@dataclass
class Frame:
    """The state of one circuit instance while its body runs."""

    definition: Definition
    prefix: str  # "" at the top, "seg[2]." in an instance
    scope: Scope
    top: bool
    bound_inputs: dict[str, Signal]
    bound_params: dict[str, ParamHandle]
    outputs: dict[str, PortOutput] = field(default_factory=dict)
    inputs: dict[str, ir.Port] = field(default_factory=dict)
    populations: dict[str, PopulationRef] = field(default_factory=dict)
    children: list[ir.Instance] = field(default_factory=list)

    @property
    def instance(self) -> str:
        """The instance's qualified name ("" at the top)."""
        return self.prefix[:-1]


@dataclass
class Network:
    """What the passes add to while one circuit elaborates."""

    reporter: Reporter
    limits: Limits
    evaluator: Evaluator
    output_dims: dict[str, Dim]  # per neuron model, the dimension of its output (shared with the evaluator)
    neurons: dict[str, ir.NeuronModel] = field(default_factory=dict)
    model_inputs: dict[str, dict[str, Dim]] = field(default_factory=dict)  # per neuron model, its inputs' dims
    populations: list[ir.Population] = field(default_factory=list)
    params: list[ParamHandle] = field(default_factory=list)
    pending: list[PendingProjection | ir.Projection] = field(default_factory=list)  # ir.Projection: a connectome's
    data_parameters: list[ir.Parameter] = field(default_factory=list)
    sources: list[ir.DataSource] = field(default_factory=list)
    projection_ids: set[str] = field(default_factory=set)
    id_counts: dict[str, int] = field(default_factory=dict)  # projections so far between the same sources, arrow, target
    winners: dict[str, int] = field(default_factory=dict)  # per neuron model, the k of its kwta(): populations need k units
    active: list[Definition] = field(default_factory=list)  # the circuits being instantiated, outermost first
    counts: Counts = field(default_factory=Counts)
    let_names: dict[int, LetName] = field(default_factory=dict)  # keyed by the id of the let's signal expression

    @classmethod
    def start(cls, reporter: Reporter, limits: Limits, sandbox: Sandbox | None) -> Network:
        """An empty network, with an evaluator reading its neuron models' output dimensions."""
        output_dims: dict[str, Dim] = {}
        return cls(reporter, limits, Evaluator(reporter, output_dims, limits, sandbox), output_dims)


def poisoned(span: Span | None) -> Binding:
    """The binding of a name whose declaration failed: later uses fail quietly instead of cascading."""
    return Binding(Poisoned(), span, "poisoned", True)
