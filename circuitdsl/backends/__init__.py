"""Backends: compile a circuit's IR into something that runs.  Only the asked-for framework is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitdsl.ir.model import CircuitIR

BACKENDS = ("torch",)


def compile_circuit(circuit: CircuitIR | str | Path, backend: str = "torch", seed: int = 0, **args: Any) -> Any:
    """A circuit (IR, or a .circuit path elaborated with `args`) compiled for `backend`, parameters drawn with `seed`."""
    if not isinstance(circuit, CircuitIR):
        from circuitdsl.api import load

        circuit = load(circuit, **args)
    elif args:
        raise TypeError("circuit arguments apply when compiling from a path; this IR is already elaborated")
    if backend == "torch":
        from circuitdsl.backends.torch_backend import CircuitModule

        return CircuitModule(circuit, seed=seed)
    raise ValueError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}")
