"""What every compiled circuit shares at its boundary: parameter keys, input checking, output shapes.

Written against the array methods torch and JAX have alike (`shape`, `reshape`), so the conventions
(dict keyed by port, a bare array for a single input, batch-first, errors naming the port and the
expected shape) are one piece of code for every backend.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from circuitdsl.backends.step import Array, Ops
from circuitdsl.ir.model import CircuitIR


class CircuitRuntimeError(ValueError):
    """Inputs that do not fit the circuit: an unknown port, or a wrong shape."""


DTYPES = ("float32", "float64")
"""The floating-point types a compiled circuit runs in (float32 by default)."""


def dtype_name(dtype: Any) -> str:
    """The name of a float dtype given as a string, a numpy, torch or JAX dtype; a clear error for any other."""
    name = str(dtype).removeprefix("torch.")
    if not isinstance(dtype, str) and not str(dtype).startswith("torch."):
        try:
            name = np.dtype(dtype).name
        except TypeError:
            pass
    if name not in DTYPES:
        raise CircuitRuntimeError(f"dtype {name!r} is not supported; a circuit runs in {' or '.join(DTYPES)}")
    return name


def param_key(name: str) -> str:
    """A parameter's key in a compiled circuit: its qualified name with '.' (reserved by torch) written as '/'."""
    return name.replace(".", "/")


def flat_inputs(ir: CircuitIR, inputs: Mapping[str, Array] | Array | None, leading: tuple[str, ...],
                ops: Ops) -> dict[str, Array]:
    """Inputs keyed by port, each checked as [*leading, *port shape] and flattened to [*leading, units] floats.

    A bare array stands for the circuit's single input port; `leading` names the axes before the port's
    own (`("batch",)` for a step, `("batch", "time")` for a rollout).
    """
    ports = {p.name: p for p in ir.inputs}
    if inputs is None:
        inputs = {}
    elif not isinstance(inputs, Mapping):
        if len(ports) != 1:
            raise CircuitRuntimeError(f"circuit '{ir.name}' has inputs {sorted(ports)}; pass a dict")
        inputs = {next(iter(ports)): inputs}
    flat = {}
    for name, value in inputs.items():
        if name not in ports:
            raise CircuitRuntimeError(f"circuit '{ir.name}' has no input '{name}'; its inputs are "
                                      f"{sorted(ports) or 'none'}")
        shape = [a.size for a in ports[name].shape]
        if len(value.shape) != len(leading) + len(shape) or list(value.shape[len(leading):]) != shape:
            expected = ", ".join([*leading, *(f"{a.name}={a.size}" for a in ports[name].shape)])
            raise CircuitRuntimeError(f"input '{name}' has shape {list(value.shape)}; expected [{expected}]")
        flat[name] = ops.to_float(value.reshape(*value.shape[:len(leading)], math.prod(shape)))
    missing = set(ports) - set(flat)
    if missing:
        raise CircuitRuntimeError(f"missing input{'s' * (len(missing) > 1)} {sorted(missing)}")
    if len({tuple(v.shape[:len(leading)]) for v in flat.values()}) > 1:
        sizes = {name: list(v.shape[:len(leading)]) for name, v in flat.items()}
        raise CircuitRuntimeError(f"inputs disagree on their [{', '.join(leading)}] sizes: {sizes}")
    return flat


def rollout_length(sequence: Mapping[str, Array], steps: int | None) -> int:
    """How many steps a rollout runs: the inputs' time axis, or `steps` for a circuit run without inputs."""
    if sequence:
        return int(next(iter(sequence.values())).shape[1])
    if steps is None:
        raise CircuitRuntimeError("rollout needs inputs over time or a number of steps")
    return steps


def shaped_outputs(ir: CircuitIR, outputs: Mapping[str, Array]) -> dict[str, Any]:
    """Flat outputs [..., units] reshaped to [..., *output shape], keyed by output name; recorded traces (the
    other keys, already shaped) as they are."""
    shapes = {o.name: [a.size for a in o.shape] for o in ir.outputs}
    return {name: value.reshape(*value.shape[:-1], *shapes[name]) if name in shapes else value
            for name, value in outputs.items()}
