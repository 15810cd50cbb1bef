"""Running both sides of a conversion on the same inputs, for the fidelity report's measured errors.

Our side is the compiled torch circuit stepped through its public `forward(inputs, state, record=...)`, recording
every population's output; the other side is whatever the converter targets.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import torch

from circuitdsl.ir.model import CircuitIR

STEPS = 100
BATCH = 4


def random_inputs(ir: CircuitIR, steps: int = STEPS, batch: int = BATCH, seed: int = 0) -> dict[str, np.ndarray]:
    """Uniform(0, 1) inputs [batch, time, units] per input port, the same for a given seed."""
    rng = np.random.default_rng(seed)
    return {p.name: rng.random((batch, steps, math.prod(a.size for a in p.shape))).astype(np.float32)
            for p in ir.inputs}


def our_traces(module: torch.nn.Module, ir: CircuitIR, inputs: Mapping[str, np.ndarray],
               steps: int = STEPS, batch: int = BATCH) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Outputs and population outputs of the compiled circuit, each [batch, time, units] (flat units)."""
    shapes = {p.name: [a.size for a in p.shape] for p in ir.inputs}
    state = module.initial_state(batch)  # type: ignore[operator]
    outputs: dict[str, list[torch.Tensor]] = {o.name: [] for o in ir.outputs}
    populations: dict[str, list[torch.Tensor]] = {p.name: [] for p in ir.populations}
    with torch.no_grad():
        for t in range(steps):
            x = {name: torch.as_tensor(v[:, t]).reshape(batch, *shapes[name]) for name, v in inputs.items()}
            out, state = module(x, state, record=list(populations))
            for name, value in out.items():
                (outputs[name] if name in outputs else populations[name]).append(value.reshape(batch, -1))
    return _stacked(outputs), _stacked(populations)


def _stacked(traces: dict[str, list[torch.Tensor]]) -> dict[str, np.ndarray]:
    """Per-step tensors [batch, units] stacked over time: [batch, time, units], float64."""
    return {name: torch.stack(steps, 1).double().numpy() for name, steps in traces.items() if steps}


def max_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.max(np.abs(np.asarray(ours, dtype=np.float64) - np.asarray(theirs, dtype=np.float64))))
