"""circuit -> NIR: populations of library neurons become NIR neuron nodes, projections Linear (and Delay) nodes.

NIR graphs state continuous-time ODEs and carry no time step, so the step is written into the graph's metadata
(`dt`, seconds) and every neuron's constants are chosen so that forward Euler at that step is our step:
`LIF(beta)` becomes a NIR LIF with tau = dt / (1 - beta) and r = tau / dt (snnTorch's own export rule, so its
importer reads the same beta back), `Leaky(tau, dt)` a LI with the time constant in export steps.  Sub-circuits
are flattened with their instance paths in the node names (NIR 1.0.8 cannot address a node inside a nested
graph, see docs/interop.md).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import nir
import numpy as np

from circuitdsl.interop.fidelity import FidelityReport
from circuitdsl.interop.matrices import matrices, signal_size
from circuitdsl.ir.expr import fold
from circuitdsl.ir.model import Binary, CircuitIR, Expr, NeuronModel, Population, Projection, Ref, Unary
from circuitdsl.ir.units import selected_units

DEFAULT_DT = 1e-4
"""Seconds per step when the circuit names none: the NIR paper's step, and the one snnTorch's importer assumes."""

MS = 1e-3  # circuitdsl stores times in ms (circuitdsl/units.py); NIR graphs are written in seconds


@dataclass
class NirExport:
    """The graph being built: its nodes and edges, and where each population enters and leaves it."""

    dt: float
    nodes: dict[str, nir.NIRNode] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)
    entry: dict[str, str] = field(default_factory=dict)  # population or input -> the node its inputs go to
    exit: dict[str, str] = field(default_factory=dict)  # population or input -> the node its output leaves

    def node(self, name: str, node: nir.NIRNode, origin: str) -> str:
        node.metadata = {"circuitdsl": origin}
        self.nodes[name] = node
        return name


def node_name(name: str) -> str:
    """A NIR node name for a circuit name: letters, digits and '_' only (nirtorch and snnTorch split on '.')."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "node"


def circuit_dt(ir: CircuitIR) -> float | None:
    """The step (seconds) the circuit's neurons name through a `dt` argument, when they agree on one."""
    steps = {float(m.args["dt"]) for m in ir.neurons.values() if isinstance(m.args.get("dt"), int | float)}
    return steps.pop() * MS if len(steps) == 1 else None


def to_nir(ir: CircuitIR, values: Mapping[str, np.ndarray], dt: float | None = None, source: str = "<circuit>",
           allow_lossy: bool = False) -> tuple[nir.NIRGraph, FidelityReport]:
    """The circuit as a NIR graph at step `dt` (seconds; default the circuit's own, else 1e-4), with its report;
    a circuit with parts NIR cannot hold is refused (E953) unless `allow_lossy`.

    `values` are the stored parameter values by qualified name (`matrices.stored_values(module)`)."""
    step = dt if dt is not None else circuit_dt(ir) or DEFAULT_DT
    report = FidelityReport("circuit -> NIR", source, "NIR graph")
    report.notes.append(f"dt = {step:g} s recorded in the graph's metadata; every node is exact for forward Euler "
                        "at that step, the reset in the step that spikes (a cycle reads the previous step)")
    graph = NirExport(step)
    for port in ir.inputs:
        size = math.prod(a.size for a in port.shape)
        name = graph.node(node_name(port.name), nir.Input(input_type=np.array([size])), port.name)
        graph.entry[port.name] = graph.exit[port.name] = name
        report.add("input", port.name, f"Input[{size}]", "exact")
    for population in ir.populations:
        _population(graph, population, ir.neurons[population.model], ir, report)
    for projection in ir.projections:
        _projection(graph, projection, ir, values, report)
    for output in ir.outputs:
        _output(graph, output.name, output.pieces, ir, report)
    report.refuse_lossy(allow_lossy)
    metadata = {"dt": step, "dt_unit": "s", "circuit": ir.name, "written_by": "circuitdsl"}
    # NIR's shape inference needs every node reachable from an Input, which a lossy graph may not be
    graph_out = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges, metadata=metadata,
                             type_check=not report.unsupported)
    return graph_out, report


def _population(graph: NirExport, population: Population, model: NeuronModel, ir: CircuitIR,
                report: FidelityReport) -> None:
    size = math.prod(a.size for a in population.shape)
    name = node_name(population.name)
    ones, zeros = np.ones(size), np.zeros(size)
    args = model.args
    if model.definition == "LIF":
        beta, threshold = float(args["beta"]), float(args["threshold"])
        tau = graph.dt / (1 - beta) if beta < 1 else math.inf
        core: nir.NIRNode
        if args["reset"] == "none":
            core = nir.LI(tau=ones * tau, r=ones * tau / graph.dt, v_leak=zeros) if beta < 1 else nir.I(r=ones / graph.dt)
            graph.node(f"{name}_v", core, population.name)
            graph.node(name, nir.Threshold(threshold=ones * threshold), population.name)
            graph.edges.append((f"{name}_v", name))
            graph.entry[population.name], graph.exit[population.name] = f"{name}_v", name
            report.add("population", population.name, f"{type(core).__name__} + Threshold", "exact")
            return
        if beta < 1:
            core = nir.LIF(tau=ones * tau, r=ones * tau / graph.dt, v_leak=zeros, v_threshold=ones * threshold,
                           v_reset=zeros)
        else:
            core = nir.IF(r=ones / graph.dt, v_threshold=ones * threshold, v_reset=zeros)
        entry = report.add("population", population.name, type(core).__name__, "exact")
        if args["reset"] == "subtract":
            entry.status = "approximate"
            entry.why = "NIR resets to v_reset; this LIF subtracts the threshold"
    elif model.definition == "Leaky":
        tau_steps = float(args["tau"]) / float(args["dt"])
        core = nir.LI(tau=ones * tau_steps * graph.dt, r=ones, v_leak=zeros)
        report.add("population", population.name, "LI", "exact", f"tau = {tau_steps:g} steps")
    elif model.definition == "Identity":
        core = nir.Scale(scale=ones)
        report.add("population", population.name, "Scale", "exact")
    else:
        report.add("population", population.name, "-", "unsupported",
                   f"NIR has no {model.definition} neuron (its nodes: LIF, LI, IF, I, CubaLIF, CubaLI, Threshold)")
        return
    graph.node(name, core, population.name)
    graph.entry[population.name] = graph.exit[population.name] = name


def _projection(graph: NirExport, projection: Projection, ir: CircuitIR, values: Mapping[str, np.ndarray],
                report: FidelityReport) -> None:
    why = _unsupported_projection(graph, projection, ir)
    if why:
        report.add("projection", projection.id, "-", "unsupported", why)
        return
    assert isinstance(projection.source, Ref)
    source, target = graph.exit[projection.source.source], graph.entry[projection.target]
    base = node_name(f"{projection.id}")
    parts = []
    for delay, matrix in matrices(ir, projection, values).items():
        name = base if delay == 0 else f"{base}_d{delay}"
        start = source
        if delay:
            delay_node = nir.Delay(delay=np.full(matrix.shape[1], delay * graph.dt))
            start = graph.node(f"{name}_delay", delay_node, projection.id)
            graph.edges.append((source, start))
        graph.node(name, nir.Linear(weight=matrix.astype(np.float32)), projection.id)
        graph.edges.extend([(start, name), (name, target)])
        parts.append("Delay + Linear" if delay else "Linear")
    entry = report.add("projection", projection.id, " | ".join(dict.fromkeys(parts)), "exact")
    if projection.learnable_delay is not None:
        sigma = float(np.asarray(values[projection.learnable_delay.sigma]).reshape(-1)[0])
        entry.why = "learned delays rounded to whole steps, one Delay per distinct delay"
        if sigma > 0:
            entry.status = "approximate"
            entry.why += f"; its kernel width sigma = {sigma:g} mixes neighbouring steps"


def _unsupported_projection(graph: NirExport, projection: Projection, ir: CircuitIR) -> str:
    """Why a projection cannot be written as NIR nodes, or '' when it can."""
    if projection.kind == "electrical":
        return "NIR has no gap junctions"
    if projection.operator is not None:
        return f"the {projection.operator.kind} operator has no NIR node"
    if not isinstance(projection.source, Ref):
        return "its source is a signal expression; NIR edges carry plain outputs"
    if projection.source.source not in graph.exit or projection.target not in graph.entry:
        return "its source or target population is not in the graph"
    if projection.port != ir.neurons[ir.population(projection.target).model].inputs[0].name:
        return f"port '{projection.port}': NIR neurons have one input"
    return ""


def _output(graph: NirExport, name: str, pieces: list, ir: CircuitIR, report: FidelityReport) -> None:
    size = math.prod(a.size for a in next(o for o in ir.outputs if o.name == name).shape)
    terms = [] if len(pieces) != 1 or pieces[0].select is not None else _terms(pieces[0].expr, ir.shared)
    if not terms or any(ref.source not in graph.exit for _, ref in terms):
        report.add("output", name, "-", "unsupported", "only a sum of (selected, signed) outputs maps to NIR")
        return
    out = graph.node(node_name(f"{name}_out") if name in graph.nodes else node_name(name),
                     nir.Output(output_type=np.array([size])), name)
    for i, (sign, ref) in enumerate(terms):
        n = signal_size(ir, ref.source)
        if ref.select is None and sign == 1.0:
            graph.edges.append((graph.exit[ref.source], out))
            continue
        sizes = [a.size for a in (next((p.shape for p in ir.inputs if p.name == ref.source), None)
                                  or ir.population(ref.source).shape)]
        picks = np.zeros((size, n), dtype=np.float32)
        picks[np.arange(size), selected_units(sizes, ref.select)] = sign
        term = graph.node(node_name(f"{name}_term{i}"), nir.Linear(weight=picks), name)
        graph.edges.extend([(graph.exit[ref.source], term), (term, out)])
    report.add("output", name, "Output", "exact")


def _terms(expr: Expr, shared: list[Expr]) -> list[tuple[float, Ref]]:
    """An output written as a signed sum of references (`Md - Mv`), or [] when it is anything else."""
    def visit(node: Expr, kids: tuple[list[tuple[float, Ref]], ...]) -> list[tuple[float, Ref]]:
        if isinstance(node, Ref):
            return [(1.0, node)]
        if not kids or not all(kids):
            return []
        if isinstance(node, Unary) and node.op == "-":
            return [(-sign, ref) for sign, ref in kids[0]]
        if isinstance(node, Binary) and node.op in ("+", "-"):
            left, right = kids
            return left + (right if node.op == "+" else [(-sign, ref) for sign, ref in right])
        return []

    return fold(expr, visit, shared)


def measure(graph: nir.NIRGraph, report: FidelityReport, ir: CircuitIR, module: object,
            steps: int = 100, seed: int = 0) -> None:
    """Run the circuit and the graph (nirtorch, forward Euler at the graph's dt) on the same random inputs and
    record each entry's largest difference: a population's output, a projection's through its target's."""
    from circuitdsl.interop import compare, nir_exec

    inputs = [n for n in graph.nodes.values() if isinstance(n, nir.Input)]
    outputs = [n for n in graph.nodes.values() if isinstance(n, nir.Output)]
    if len(inputs) != 1 or len(outputs) != 1 or report.unsupported:
        report.comparison = "not run: nirtorch runs graphs with one input, one output and no unsupported part"
        return
    x = compare.random_inputs(ir, steps, seed=seed)
    ours, populations = compare.our_traces(module, ir, x, steps)  # type: ignore[arg-type]
    record = [node_name(p.name) for p in ir.populations]
    theirs, traces = nir_exec.run(graph, next(iter(x.values())), graph.metadata["dt"], record)
    errors = {p.name: compare.max_error(populations[p.name], traces[node_name(p.name)]) for p in ir.populations}
    targets = {p.id: p.target for p in ir.projections}
    exact = {e.name for e in report.entries if e.kind == "population" and e.status == "exact"}
    for entry in report.entries:
        if entry.kind == "population":
            report.measured(entry, errors[entry.name])
        elif entry.kind == "projection" and targets[entry.name] in exact:  # seen through an exact target only
            report.measured(entry, errors[targets[entry.name]])
        elif entry.kind == "output":
            report.measured(entry, compare.max_error(ours[entry.name], theirs))
    report.comparison = (f"{steps} steps, batch {compare.BATCH}, uniform(0, 1) inputs (seed {seed}), float32, "
                         "the graph run by nirtorch 2.6 with forward-Euler neurons")
