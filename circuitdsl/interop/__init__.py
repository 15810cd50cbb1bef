"""Interchange: NIR export and import, NeuroML2/LEMS export, a stateful ONNX step, each with a fidelity report.

See docs/interop.md.  The converters need the `interop` extra (`pip install -e '.[interop]'` in a clone, or `make`); importing
this package imports none of it: `to_nir` and `from_nir` load it when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from circuitdsl.ir.model import CircuitIR


def to_nir(circuit: CircuitIR | str | Path, **options: Any) -> Any:
    """The circuit as a `nir.NIRGraph`: see `circuitdsl.interop.api.to_nir` for the options."""
    from circuitdsl.interop import api

    return api.to_nir(circuit, **options)


def from_nir(graph: Any, output: str | Path, **options: Any) -> CircuitIR:
    """A NIR graph (or .nir path) written as a .circuit file (weights in a .npz beside it) and loaded back: see
    `circuitdsl.interop.api.from_nir` for the options."""
    from circuitdsl.interop import api

    return api.from_nir(graph, output, **options)
