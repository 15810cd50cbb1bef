"""Backends: compile a circuit's IR into something that runs.  Only the asked-for framework is imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from circuitdsl.ir.model import CircuitIR

BACKENDS = ("torch", "jax", "numpy")


def compile_circuit(circuit: CircuitIR | str | Path, backend: str = "torch", seed: int = 0, lowering: str = "auto",
                    dtype: Any = "float32", **args: Any) -> Any:
    """A circuit (IR, or a .circuit path elaborated with `args`) compiled for `backend`, parameters drawn with `seed`.

    `lowering` picks how projections run: `auto` (by rule and density), or `dense` / `sparse` for all of them.
    `dtype` is the float type of parameters, state and outputs: `float32` (default) or `float64` (JAX: with
    `jax_enable_x64` on); inputs of another float type are converted to it.  `numpy` runs inference only (no
    gradients): fast on a CPU at a small batch, e.g. acting in an environment (docs/engine.md).
    """
    from circuitdsl.backends.interface import CircuitRuntimeError, checked_count, dtype_name
    from circuitdsl.errors import did_you_mean

    dtype = dtype_name(dtype)
    if backend not in BACKENDS:
        hint = did_you_mean(str(backend), BACKENDS)
        raise CircuitRuntimeError(f"unknown backend {backend!r}; backends: {', '.join(BACKENDS)}"
                                  + (f"; {hint}" if hint else ""))
    seed = checked_count("seed", seed)
    if not isinstance(circuit, CircuitIR):
        from circuitdsl.api import load

        circuit = load(circuit, **args)
    elif args:
        raise CircuitRuntimeError(f"circuit arguments ({', '.join(sorted(args))}) apply when compiling from a path; "
                                  f"this IR is already elaborated: pass them to circuitdsl.load(path, ...)")
    if backend == "torch":
        try:
            import torch  # noqa: F401 - the framework first, so a missing one is named with its extra
        except ImportError as error:
            raise _not_installed(backend) from error
        from circuitdsl.backends.torch_backend import CircuitModule

        return CircuitModule(circuit, seed=seed, lowering=lowering, dtype=dtype)
    if backend == "numpy":
        from circuitdsl.backends.numpy_backend import NumpyCircuit

        return NumpyCircuit(circuit, seed=seed, lowering=lowering, dtype=dtype)
    try:
        import jax  # noqa: F401
    except ImportError as error:
        raise _not_installed(backend) from error
    from circuitdsl.backends.jax_backend import JaxCircuit

    return JaxCircuit(circuit, seed=seed, lowering=lowering, dtype=dtype)


def _not_installed(backend: str) -> ImportError:
    """The error for a backend whose framework is missing: which extra installs it."""
    from circuitdsl.extras import install_hint

    return ImportError(f"the {backend} backend needs the '{backend}' package, which is not installed: "
                       f"{install_hint(backend)}", name=backend)
