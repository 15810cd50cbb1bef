"""circuit -> NeuroML2 + LEMS: a network of library neurons as a .net.nml file (valid under pyNeuroML's
validator), a LEMS simulation file `LEMS_<stem>.xml` that jNeuroML runs, and `<stem>.types.xml` with the
synapse types NeuroML2 lacks.

Neurons: the worm's `Rate` and the standard `Leaky` become non-spiking `iafCell`s (a leaky integrator with
tau = C / gL, gL = 1 uS, so that v in mV is circuitdsl's v), `neurons.Izhikevich` an `izhikevichCell` (the same
2003 equations), `LIF` an `iafCell` with tau = dt / (1 - beta).  Chemical projections from graded neurons become
continuous connections through a synapse giving weight x out(v_pre) nA; gap junctions electrical connections
through a gap junction giving weight x (out(v_peer) - out(v)) nA; an input port becomes a constant current at a
given value (NeuroML has no port for a signal from outside).  LEMS integrates with forward Euler at the
simulation step, every synapse reading its peer as it was before the step whatever order jLEMS updates the cells
in (neuroml_types says how): that is circuitdsl's step for recurrent projections and gap junctions; an
instantaneous projection arrives one step later (approximate).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import neuroml
import neuroml.writers
import numpy as np

from circuitdsl.interop import neuroml_types
from circuitdsl.interop.fidelity import FidelityReport
from circuitdsl.interop.matrices import matrices, stored_values
from circuitdsl.ir.model import CircuitIR, NeuronModel, Population, Projection, Ref

GRADED = {"Rate": "tanh", "Leaky": "linear"}  # model -> what its synapses read of v
# the state compared with LEMS's v, as (state, the state that zeroes it): a LIF's membrane is zeroed by its spike at
# the start of the next step, an iafCell's at once, so the LIF's is compared after its reset
STATE = {"Rate": ("v", None), "Leaky": ("v", None), "Izhikevich": ("v", None), "LIF": ("mem", "spk")}


@dataclass
class _Cell:
    """A population's NeuroML cell: its component id, what its synapses read, how its inputs are scaled."""

    component: str
    output: str | None  # "tanh" / "linear" for graded neurons, None for spiking ones
    scale: float  # factor on every weight into it (a LIF's input moves v by dt / tau of the current)
    dimensionless: bool  # an izhikevichCell takes a dimensionless current


@dataclass
class NeuromlExport:
    """The document being built and what the simulation file needs."""

    doc: neuroml.NeuroMLDocument
    network: neuroml.Network
    dt: float  # ms
    cells: dict[str, _Cell] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    records: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # population -> STATE entry


def nml_id(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "x"


def sim_dt(ir: CircuitIR) -> float:
    """The simulation step (ms): the one the neurons name (they must agree), else 1 ms."""
    steps = {float(m.args["dt"]) for m in ir.neurons.values() if isinstance(m.args.get("dt"), int | float)}
    return steps.pop() if len(steps) == 1 else 1.0


def build(ir: CircuitIR, values: dict[str, np.ndarray], inputs: dict[str, float], source: str,
          stem: str) -> tuple[NeuromlExport, FidelityReport]:
    """The NeuroML2 document of the circuit and its fidelity report (nothing measured yet)."""
    doc = neuroml.NeuroMLDocument(id=nml_id(stem))
    network = neuroml.Network(id="network")
    doc.networks.append(network)
    export = NeuromlExport(doc, network, sim_dt(ir))
    report = FidelityReport("circuit -> NeuroML2", source, f"{stem}.net.nml")
    report.notes.append(f"dt = {export.dt:g} ms; LEMS integrates with forward Euler, every synapse reading its peer "
                        "from before the step")
    for population in ir.populations:
        _population(export, population, ir.neurons[population.model], report)
    for projection in ir.projections:
        _projection(export, projection, ir, values, inputs, report)
    if not export.network.populations:  # a NeuroML2 network needs a population: nothing to write, even lossily
        report.refuse_lossy(False)
    return export, report


def _population(export: NeuromlExport, population: Population, model: NeuronModel, report: FidelityReport) -> None:
    size = math.prod(a.size for a in population.shape)
    cid = f"{nml_id(population.name)}_cell"
    args, dt = model.args, export.dt
    entry = report.add("population", population.name, "", "exact")
    if model.definition in GRADED:
        tau = float(args["tau"])
        cell = neuroml.IafCell(id=cid, leak_reversal="0mV", thresh="1e9mV", reset="0mV", C=f"{tau!r}nF",
                               leak_conductance="1uS")
        export.doc.iaf_cells.append(cell)
        export.cells[population.name] = _Cell(cid, GRADED[model.definition], 1.0, False)
        export.outputs.add(GRADED[model.definition])
        entry.target, entry.why = "iafCell (no spikes)", f"output {GRADED[model.definition]}(v) read by its synapses"
    elif model.definition == "Izhikevich":
        cell = neuroml.IzhikevichCell(id=cid, v0=f"{float(args['v0'])!r}mV", thresh=f"{float(args['peak'])!r}mV",
                                      a=repr(float(args["a"])), b=repr(float(args["b"])), c=repr(float(args["c"])),
                                      d=repr(float(args["d"])))
        export.doc.izhikevich_cells.append(cell)
        export.cells[population.name] = _Cell(cid, None, 1.0, True)
        entry.target = "izhikevichCell"
        if args.get("method", "euler") != "euler":
            entry.status, entry.why = "approximate", f"LEMS integrates with forward Euler, not {args['method']}"
        else:
            entry.why = "spikes at v > peak (circuitdsl: v >= peak)"
    elif model.definition == "LIF":
        beta = float(args["beta"])
        tau = dt / (1 - beta) if beta < 1 else 1e12
        cell = neuroml.IafCell(id=cid, leak_reversal="0mV", thresh=f"{float(args['threshold'])!r}mV", reset="0mV",
                               C=f"{tau!r}nF", leak_conductance="1uS")
        export.doc.iaf_cells.append(cell)
        export.cells[population.name] = _Cell(cid, None, tau / dt, False)
        entry.target = "iafCell"
        if args["reset"] != "zero":
            entry.status, entry.why = "approximate", f"reset = {args['reset']}; an iafCell resets to a value"
    else:
        entry.status, entry.why = "unsupported", f"NeuroML2 has no counterpart of {model.definition}"
        return
    entry.why = "; ".join(w for w in (entry.why, _dt_note(model, dt)) if w)
    if _dt_note(model, dt):
        entry.status = "approximate"
    export.records[population.name] = STATE[model.definition]
    members = neuroml.Population(id=nml_id(population.name), component=cid, size=size, type="populationList")
    for i in range(size):
        members.instances.append(neuroml.Instance(id=i, location=neuroml.Location(x=float(i), y=0.0, z=0.0)))
    export.network.populations.append(members)


def _dt_note(model: NeuronModel, dt: float) -> str:
    step = model.args.get("dt")
    return f"its dt = {step} ms, the simulation's {dt:g} ms" if isinstance(step, int | float) and step != dt else ""


def _projection(export: NeuromlExport, projection: Projection, ir: CircuitIR, values: dict[str, np.ndarray],
                inputs: dict[str, float], report: FidelityReport) -> None:
    why = _unsupported(export, projection, ir)
    if why:
        report.add("projection", projection.id, "-", "unsupported", why)
        return
    assert isinstance(projection.source, Ref)
    matrix = matrices(ir, projection, values)[0] * export.cells[projection.target].scale
    if projection.source.source in {p.name for p in ir.inputs}:
        _drive(export, projection, matrix, inputs.get(projection.source.source, 1.0), report)
        return
    source = export.cells[projection.source.source]
    electrical = projection.kind == "electrical"
    synapse = neuroml_types.synapse_id(source.output or "", electrical)
    pre_id, post_id = nml_id(projection.source.source), nml_id(projection.target)
    kind = neuroml.ElectricalProjection if electrical else neuroml.ContinuousProjection
    nml_projection = kind(id=nml_id(projection.id), presynaptic_population=pre_id, postsynaptic_population=post_id)
    posts, pres = np.nonzero(matrix)
    if electrical:  # a junction is one pair: the matrix lists it once (its symmetric current flows both ways)
        nml_projection.electrical_connection_instance_ws = [
            neuroml.ElectricalConnectionInstanceW(
                id=i, pre_cell=_cell(pre_id, source, pre), post_cell=_cell(post_id, export.cells[projection.target],
                                                                            post), synapse=synapse,
                weight=float(matrix[post, pre])) for i, (post, pre) in enumerate(zip(posts, pres, strict=True))]
        export.network.electrical_projections.append(nml_projection)
    else:
        nml_projection.continuous_connection_instance_ws = [
            neuroml.ContinuousConnectionInstanceW(
                id=i, pre_cell=_cell(pre_id, source, pre), post_cell=_cell(post_id, export.cells[projection.target],
                                                                            post),
                pre_component=neuroml_types.SOURCE, post_component=synapse, weight=float(matrix[post, pre]))
            for i, (post, pre) in enumerate(zip(posts, pres, strict=True))]
        export.network.continuous_projections.append(nml_projection)
    entry = report.add("projection", projection.id, "electricalProjection" if electrical else "continuousProjection",
                       "exact", f"{len(posts)} connections")
    if not electrical and not projection.recurrent:
        entry.status = "approximate"
        entry.why += "; instantaneous here, one step late in LEMS (a synapse reads its peer before the step)"


def _cell(population: str, cell: _Cell, index: int) -> str:
    return f"../{population}/{int(index)}/{cell.component}"


def _unsupported(export: NeuromlExport, projection: Projection, ir: CircuitIR) -> str:
    if not isinstance(projection.source, Ref):
        return "its source is a signal expression"
    if projection.target not in export.cells:
        return "its target population is not exported"
    if projection.delay or projection.learnable_delay is not None:
        return "a delayed graded connection has no NeuroML2 form"
    if projection.source.source in {p.name for p in ir.inputs}:
        return "" if projection.kind == "chemical" else "a gap junction with an input"
    source = export.cells.get(projection.source.source)
    if source is None:
        return "its source population is not exported"
    if source.output is None:
        return "a spike read as a one-step input has no NeuroML2 synapse"
    return ""


def _drive(export: NeuromlExport, projection: Projection, matrix: np.ndarray, value: float,
           report: FidelityReport) -> None:
    """An input port at a constant value: one constant current per target cell (pulse generators)."""
    assert isinstance(projection.source, Ref)  # only a read of an input port is driven
    currents = matrix.sum(axis=1) * value
    cell = export.cells[projection.target]
    target = nml_id(projection.target)
    kind, unit, store = ((neuroml.PulseGeneratorDL, "", export.doc.pulse_generator_dls) if cell.dimensionless
                         else (neuroml.PulseGenerator, "nA", export.doc.pulse_generators))
    for i in np.nonzero(currents)[0]:
        gid = f"{nml_id(projection.id)}_{i}"
        store.append(kind(id=gid, delay="0ms", duration="1e9ms", amplitude=f"{float(currents[i])!r}{unit}"))
        inputs = neuroml.InputList(id=f"{gid}_in", populations=target, component=gid)
        inputs.input_ws.append(neuroml.InputW(id=0, target=_cell(target, cell, i), destination="synapses", weight=1.0))
        export.network.input_lists.append(inputs)
    report.add("input", projection.id, "pulseGenerator", "approximate",
               f"the input '{projection.source.source}' held at {value:g} (NeuroML has no input port)")


def write(export: NeuromlExport, out: Path, steps: int) -> Path:
    """The .nml, the types file and the LEMS simulation (recording every exported neuron's v); returns the
    simulation file."""
    from pyneuroml.lems import LEMSSimulation

    from circuitdsl.interop import neuroml_run

    neuroml.writers.NeuroMLWriter.write(export.doc, str(out))
    stem = out.name.removesuffix(".nml").removesuffix(".net")
    types = out.with_name(f"{stem}.types.xml")
    types.write_text(neuroml_types.types_file(export.outputs))
    simulation = LEMSSimulation(f"sim_{nml_id(stem)}", steps * export.dt, export.dt, target="network")
    simulation.include_lems_file(types.name, include_included=False)
    simulation.include_neuroml2_file(out.name, include_included=False)
    simulation.create_output_file("traces", f"{stem}.v.dat")
    for population, cell in export.cells.items():
        if population in export.records:
            size = next(len(p.instances) for p in export.network.populations if p.id == nml_id(population))
            for i in range(size):
                simulation.add_column_to_output_file("traces", f"{nml_id(population)}_{i}",
                                                     f"{nml_id(population)}/{i}/{cell.component}/v")
    lems = out.with_name(f"LEMS_{stem}.xml")
    with neuroml_run.quiet():
        simulation.save_to_file(str(lems))
    return lems


def export_neuroml(ir: CircuitIR, module: object, out: Path, source: str, allow_lossy: bool,
                   inputs: dict[str, float] | None = None, steps: int = 100) -> FidelityReport:
    """Write the network and its simulation, validate it, run it under jNeuroML and measure it against our float64
    simulation (see neuroml_run)."""
    from circuitdsl.interop import neuroml_run

    unknown = set(inputs or {}) - {p.name for p in ir.inputs}
    if unknown:
        raise ValueError(f"circuit '{ir.name}' has no input {', '.join(sorted(unknown))}; its inputs: "
                         f"{', '.join(p.name for p in ir.inputs) or 'none'}")
    stem = out.name.removesuffix(".nml").removesuffix(".net")
    export, report = build(ir, stored_values(module), inputs or {}, source, stem)
    report.refuse_lossy(allow_lossy)
    lems = write(export, out, steps)
    report.notes.append(f"simulation: {lems.name} (runs under jNeuroML: pynml {lems.name} -nogui), synapse types: "
                        f"{stem}.types.xml")
    report.notes.append(f"valid under {neuroml_run.validate(out)}")
    neuroml_run.measure(report, export, ir, module, lems, inputs or {}, steps)
    return report

