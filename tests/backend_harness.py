"""One interface over both backends for the behaviour tests: compile, parameters, rollouts, steps and gradients,
everything in and out as numpy, so a test is written once and parametrised over `BACKENDS`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

import circuitdsl

BACKENDS = ("torch", "jax")
Arrays = dict[str, np.ndarray]


@dataclass
class Handle:
    """A compiled circuit, its current parameters (JAX keeps them outside the circuit) and its jitted functions."""

    backend: str
    circuit: Any
    params: Any = None
    jitted: dict[str, Any] = field(default_factory=dict)
    dtype: str = "float32"


def build(circuit: Any, backend: str, seed: int = 0, lowering: str = "auto", dtype: str = "float32",
          **args: Any) -> Handle:
    """`circuitdsl.compile` for a backend, wrapped for the functions below (float64: JAX needs its 64-bit mode
    on while the handle is used)."""
    if isinstance(circuit, str) and not circuit.endswith(".circuit"):
        circuit = circuitdsl.loads(circuit)
    compiled = circuitdsl.compile(circuit, backend=backend, seed=seed, lowering=lowering, dtype=dtype, **args)
    return Handle(backend, compiled, compiled.init() if backend == "jax" else None, dtype=dtype)


def params(handle: Handle) -> Arrays:
    """Every parameter by key (`osc`, `x -> h/weight`)."""
    if handle.backend == "torch":
        return {k: v.detach().numpy().copy() for k, v in handle.circuit.params.items()}
    return {k: np.asarray(v) for k, v in handle.params.items()}


def set_params(handle: Handle, values: Arrays) -> None:
    """Replace the parameters named in `values`."""
    if handle.backend == "torch":
        import torch

        with torch.no_grad():
            for key, value in values.items():
                handle.circuit.params[key].copy_(torch.from_numpy(np.asarray(value, np.float32)))
    else:
        import jax.numpy as jnp

        handle.params = {**handle.params, **{k: jnp.asarray(v, handle.dtype) for k, v in values.items()}}


def _tensors(inputs: Arrays | None) -> Any:
    import torch

    return None if inputs is None else {k: torch.from_numpy(np.asarray(v, np.float32)) for k, v in inputs.items()}


def _numpy(outputs: dict[str, Any]) -> Arrays:
    return {k: np.asarray(v.detach() if hasattr(v, "detach") else v) for k, v in outputs.items()}


def run(handle: Handle, inputs: Arrays | None, steps: int | None = None) -> Arrays:
    """A rollout from the initial state: inputs and outputs [batch, time, *shape]."""
    if handle.backend == "torch":
        return _numpy(handle.circuit.rollout(_tensors(inputs), steps=steps)[0])
    import jax

    key = f"run{steps}"
    if key not in handle.jitted:
        handle.jitted[key] = jax.jit(lambda p, x: handle.circuit.rollout(p, x, steps=steps)[0])
    return _numpy(handle.jitted[key](handle.params, inputs))


def start(handle: Handle, batch: int) -> Any:
    """The initial state, for `step`."""
    return handle.circuit.initial_state(batch)


def step(handle: Handle, state: Any, inputs: Arrays | np.ndarray) -> tuple[Arrays, Any]:
    """One step: inputs [batch, *shape] (a dict, or one array for a single input port)."""
    if handle.backend == "torch":
        import torch

        value = _tensors(inputs) if isinstance(inputs, dict) else torch.from_numpy(np.asarray(inputs, np.float32))
        outputs, state = handle.circuit(value, state)
    else:
        outputs, state = handle.circuit.step(handle.params, state, inputs)
    return _numpy(outputs), state


def grad(handle: Handle, inputs: Arrays | None, weights: Arrays, steps: int | None = None) -> tuple[Arrays, Arrays]:
    """A rollout's outputs and the gradient of sum(output * weight) over outputs for every parameter
    (zero for the fixed ones)."""
    if handle.backend == "torch":
        module = handle.circuit
        module.zero_grad()
        outputs, _ = module.rollout(_tensors(inputs), steps=steps)
        sum((outputs[k] * _tensors(weights)[k]).sum() for k in weights).backward()
        grads = {k: np.zeros(p.shape, np.float32) if p.grad is None else p.grad.numpy().copy()
                 for k, p in module.params.items()}
        return _numpy(outputs), grads
    import jax

    key = f"grad{steps}"
    if key not in handle.jitted:
        def loss(p: Any, x: Any, w: Any) -> tuple[Any, Any]:
            outputs = handle.circuit.rollout(p, x, steps=steps)[0]
            return sum((outputs[k] * w[k]).sum() for k in w), outputs

        handle.jitted[key] = jax.jit(jax.grad(loss, has_aux=True))
    grads, outputs = handle.jitted[key](handle.params, inputs, weights)
    return _numpy(outputs), _numpy(grads)
