"""Checking a NeuroML2 export: pyNeuroML's validator on the .nml, jNeuroML running the LEMS simulation, and the
traces compared with circuitdsl's own float64 simulation of the same circuit and inputs.

jNeuroML needs a Java runtime (Debian's `default-jre-headless`; `make` installs it when run as root).  Without
one, the document is checked against the NeuroML2 schema by libNeuroML instead, the report says the simulation
was not run and why, and `simulate` raises a CircuitError (E954) saying what to install.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import neuroml
import numpy as np
import torch

import circuitdsl
from circuitdsl.errors import CircuitError, Diagnostic
from circuitdsl.interop.fidelity import FidelityReport
from circuitdsl.ir.model import CircuitIR

TIMEOUT_S = 300
SCHEMA = "v2.3.1"  # the schema jNeuroML 0.14 validates against
NO_JAVA = ("jNeuroML needs a Java runtime and none is installed: apt-get install default-jre-headless "
           "(`make` installs it when run as root)")


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """pyNeuroML's progress messages (logged at INFO) held back while it works for us."""
    previous = logging.root.manager.disable
    logging.disable(logging.INFO)  # its loggers set their own levels, so a parent's level does not reach them
    try:
        yield
    finally:
        logging.disable(previous)


def jar() -> Path:
    """The jNeuroML jar that pyNeuroML ships."""
    import pyneuroml

    found = sorted((Path(pyneuroml.__file__).parent / "lib").glob("jNeuroML-*-jar-with-dependencies.jar"))
    if not found:
        raise CircuitError([Diagnostic("E954", "pyNeuroML's jNeuroML jar is missing; reinstall pyNeuroML", None)])
    return found[-1]


def java() -> str | None:
    return shutil.which("java")


def validate(path: Path) -> str:
    """Validate the .nml: with pyNeuroML's validator (jNeuroML: schema and model checks) where Java is installed,
    else against the NeuroML2 schema with libNeuroML; a failure is a CircuitError (E950) with the validator's text."""
    if java():
        from pyneuroml.pynml import validate_neuroml2

        with quiet():
            ok, text = validate_neuroml2(str(path), verbose_validate=False, return_string=True)
        if not ok:
            raise CircuitError([Diagnostic("E950", f"{path}: pyNeuroML's validator rejects it", None, (text,))])
        return "pyNeuroML's validator (jNeuroML)"
    from lxml import etree

    schema = etree.XMLSchema(file=str(Path(neuroml.__file__).parent / "nml" / f"NeuroML_{SCHEMA}.xsd"))
    try:
        schema.assertValid(etree.parse(str(path)))
    except (etree.XMLSyntaxError, etree.DocumentInvalid, OSError) as error:
        raise CircuitError([Diagnostic("E950", f"{path}: not valid NeuroML2", None, (str(error),))]) from None
    return f"the NeuroML {SCHEMA} schema (libNeuroML's copy; no Java runtime for pyNeuroML's validator)"


def simulate(lems: Path) -> dict[str, np.ndarray]:
    """Run a LEMS simulation file under jNeuroML; the recorded columns by name ('t' and '<population>_<i>')."""
    if not java():
        raise CircuitError([Diagnostic("E954", NO_JAVA, None)])
    command = [java() or "java", "-Xmx1G", "-jar", str(jar()), lems.name, "-nogui"]
    run = subprocess.run(command, cwd=lems.parent, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    if run.returncode != 0:
        tail = "\n".join((run.stdout + run.stderr).splitlines()[-8:])
        raise CircuitError([Diagnostic("E950", f"{lems}: jNeuroML could not run it", None, (tail,))])
    from xml.etree import ElementTree

    root = ElementTree.parse(lems).getroot()
    output = next(e for e in root.iter() if e.tag.endswith("OutputFile"))
    columns = ["t"] + [c.get("id", "") for c in output if c.tag.endswith("OutputColumn")]
    data = np.loadtxt(lems.parent / output.get("fileName", ""), ndmin=2)
    return dict(zip(columns, data.T, strict=True))


def our_states(ir: CircuitIR, module: object, records: dict[str, tuple[str, str | None]], inputs: dict[str, float],
               steps: int) -> dict[str, np.ndarray]:
    """Our float64 simulation with the inputs held constant: each recorded state [time, units] (v in mV), times
    (1 - the state that resets it) where one does."""
    ours = circuitdsl.compile(ir, dtype="float64")
    ours.load_state_dict(module.state_dict())  # type: ignore[attr-defined]
    drive = {p.name: torch.full((1, *[a.size for a in p.shape]), float(inputs.get(p.name, 1.0)),
                                dtype=torch.float64) for p in ir.inputs}
    state = ours.initial_state(1)
    traces: dict[str, list[np.ndarray]] = {name: [] for name in records}
    with torch.no_grad():
        for _ in range(steps):
            _, state = ours(drive or None, state)
            for name, (variable, reset) in records.items():
                value = state[f"{name}.{variable}"] * (1 - state[f"{name}.{reset}"] if reset else 1)
                traces[name].append(value.reshape(-1).numpy())
    return {name: np.stack(values) for name, values in traces.items()}


def written_step(trace: np.ndarray) -> float:
    """How far (mV) jNeuroML's written trace may be from the exact value: it writes each value (in volts) as a
    32-bit float, in the fewest decimal digits that name that float, so a value and its written form are at most
    one float32 step apart (half a step to the nearest float32, half a step more to the decimal), at the largest
    |v| of the trace; 1e-9 mV more covers float64 rounding (jLEMS computes in volts, circuitdsl in mV)."""
    largest = np.float32(np.abs(trace).max() / 1e3)
    return float(np.spacing(largest)) * 1e3 + 1e-9


def measure(report: FidelityReport, export: object, ir: CircuitIR, module: object, lems: Path,
            inputs: dict[str, float], steps: int) -> None:
    """Fill in each population's largest |v difference| (mV) between jNeuroML and our float64 simulation."""
    from circuitdsl.interop.neuroml_export import nml_id

    records: dict[str, tuple[str, str | None]] = export.records  # type: ignore[attr-defined]
    if not java():
        report.comparison = f"not run: {NO_JAVA}"
        return
    theirs = simulate(lems)
    ours = our_states(ir, module, records, inputs, steps)
    for entry in report.entries:
        if entry.kind == "population" and entry.name in ours:
            trace = ours[entry.name]
            columns = [theirs[f"{nml_id(entry.name)}_{i}"][1:steps + 1] * 1e3 for i in range(trace.shape[1])]  # mV
            difference = np.abs(np.stack(columns, 1) - trace)
            report.measured(entry, float(difference.max()), tolerance=written_step(trace))
            if entry.status == "approximate":
                entry.why += f"; at the last step {float(difference[-1].max()):.3g}"
    report.comparison = (f"{steps} steps of {export.dt:g} ms, inputs held at "  # type: ignore[attr-defined]
                         f"{inputs or 'the default 1'}: v (mV) under jNeuroML against circuitdsl in float64; exact "
                         "within one float32 step of the largest |v| (jNeuroML writes 32-bit floats)")
