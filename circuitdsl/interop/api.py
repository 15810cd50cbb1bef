"""The interop entry points: `export` (by the output's suffix: .nir, .nml, .onnx), `convert` (a .nir file to a
.circuit file), and `to_nir` / `from_nir` for Python.  Each writes its fidelity report beside its output and
refuses a conversion with unsupported parts unless `allow_lossy`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import circuitdsl
from circuitdsl.interop.fidelity import FidelityReport
from circuitdsl.ir.model import CircuitIR

FORMATS = {".nir": "NIR", ".nml": "NeuroML2", ".onnx": "ONNX"}


def _compiled(circuit: CircuitIR | str | Path, seed: int, args: dict[str, Any]) -> tuple[CircuitIR, Any, str]:
    ir = circuit if isinstance(circuit, CircuitIR) else circuitdsl.load(circuit, **args)
    source = str(circuit) if not isinstance(circuit, CircuitIR) else f"circuit {ir.name}"
    return ir, circuitdsl.compile(ir, seed=seed), source


def to_nir(circuit: CircuitIR | str | Path, dt: float | None = None, seed: int = 0, allow_lossy: bool = False,
           module: Any = None, **args: Any) -> Any:
    """The circuit as a `nir.NIRGraph` (its fidelity report in `graph.metadata["fidelity"]`, as text).

    `dt`: seconds per step (default: the circuit's own, else 1e-4 s); `module`: a compiled (trained) torch
    circuit whose parameters to write, else one compiled with `seed`."""
    graph, _ = export_nir(circuit, dt, seed, allow_lossy, module, **args)
    return graph


def export_nir(circuit: CircuitIR | str | Path, dt: float | None = None, seed: int = 0, allow_lossy: bool = False,
               module: Any = None, **args: Any) -> tuple[Any, FidelityReport]:
    """`to_nir` and its fidelity report, measured through nirtorch over 100 steps."""
    from circuitdsl.interop import nir_export
    from circuitdsl.interop.matrices import stored_values

    ir, compiled, source = _compiled(circuit, seed, args)
    module = module if module is not None else compiled
    graph, report = nir_export.to_nir(ir, stored_values(module), dt, source, allow_lossy)
    nir_export.measure(graph, report, ir, module)
    graph.metadata["fidelity"] = report.render()
    return graph, report


def from_nir(graph: Any, output: str | Path, dt: float | None = None, allow_lossy: bool = False) -> CircuitIR:
    """A NIR graph (a `nir.NIRGraph` or a .nir path) written as `output` (.circuit) with its weights in a .npz
    beside it; returns the circuit loaded back from that file."""
    return convert(graph, output, dt, allow_lossy)[0]


def convert(graph: Any, output: str | Path, dt: float | None = None,
            allow_lossy: bool = False) -> tuple[CircuitIR, FidelityReport]:
    """`from_nir` and its fidelity report (measured through nirtorch over 100 steps), written beside `output`."""
    from circuitdsl.interop import nir_import, nir_read

    file = str(graph) if isinstance(graph, str | Path) else "<NIR graph>"
    if isinstance(graph, str | Path):
        graph = nir_read.read(graph)
    else:
        nir_read.check(graph, file)
    out = Path(output)
    converted = nir_import.convert(graph, file, dt, out.stem)
    converted.report.refuse_lossy(allow_lossy)
    np.savez(out.with_suffix(".npz"), **converted.arrays)
    out.write_text(converted.text)
    ir = circuitdsl.load(out)
    nir_import.measure(converted, graph, circuitdsl.compile(ir), ir)
    converted.report.write_beside(out)
    return ir, converted.report


def export(circuit: CircuitIR | str | Path, output: str | Path, allow_lossy: bool = False, dt: float | None = None,
           seed: int = 0, inputs: dict[str, float] | None = None, steps: int = 100, **args: Any) -> FidelityReport:
    """Write the circuit in the format its suffix names (.nir, .nml, .onnx) and the fidelity report beside it.

    NeuroML2 only: `inputs`, the constant value each input port is held at (default 1); `steps`, how long the
    LEMS simulation runs (and is compared with ours)."""
    out = Path(output)
    if out.suffix not in FORMATS:
        raise ValueError(f"cannot export to {out.name!r}: name a {', '.join(FORMATS)} file")
    if out.suffix == ".nir":
        import nir

        graph, report = export_nir(circuit, dt, seed, allow_lossy, **args)
        nir.write(out, graph)
    elif out.suffix == ".onnx":
        from circuitdsl.interop import onnx_export

        ir, module, source = _compiled(circuit, seed, args)
        report = onnx_export.export_onnx(module, ir, out, source, allow_lossy=allow_lossy)
    else:
        from circuitdsl.interop import neuroml_export

        ir, module, source = _compiled(circuit, seed, args)
        report = neuroml_export.export_neuroml(ir, module, out, source, allow_lossy, inputs, steps)
    report.destination = str(out)
    report.write_beside(out)
    return report
