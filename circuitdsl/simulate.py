"""Simulate a circuit over time and record every input, population and output: what `circuitdsl run` plots."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from circuitdsl.ir.model import Axis, CircuitIR
from circuitdsl.progress import progress


class SimulationInputError(ValueError):
    """An input given to a simulation that does not fit the circuit's input ports."""


@dataclass(frozen=True)
class Traces:
    """Activity over time: per signal (inputs, then populations, then outputs) an array [time, units]."""

    circuit: str
    signals: dict[str, np.ndarray]
    units: dict[str, list[str]]  # per signal, a label per unit ("joint=2", or the axis' own unit labels)
    kinds: dict[str, str]  # per signal: input | population | output


def unit_labels(shape: list[Axis]) -> list[str]:
    """A label per unit in row-major order: the axis labels where given, else `axis=index`."""
    per_axis = [a.labels if a.labels else [f"{a.name}={i}" for i in range(a.size)] for a in shape]
    labels = [""]
    for names in per_axis:
        labels = [f"{prefix},{name}" if prefix else name for prefix in labels for name in names]
    return labels


def input_sequences(ir: CircuitIR, given: Mapping[str, float | np.ndarray], steps: int) -> dict[str, np.ndarray]:
    """Every input port over time, [steps, units]: a constant or an array ([*shape] or [time, *shape]); 0 if not given."""
    ports = {p.name: p for p in ir.inputs}
    unknown = sorted(set(given) - set(ports))
    if unknown:
        raise SimulationInputError(f"circuit '{ir.name}' has no input '{unknown[0]}'; its inputs are "
                                   f"{sorted(ports) or 'none'}")
    sequences = {}
    for name, port in ports.items():
        shape = [a.size for a in port.shape]
        value = np.asarray(given.get(name, 0.0), dtype=np.float32)
        if value.ndim == 0 or list(value.shape) == shape:
            value = np.broadcast_to(value, (steps, *shape))
        elif list(value.shape[1:]) != shape or value.shape[0] < steps:
            axes = ", ".join(f"{a.name}={a.size}" for a in port.shape)
            raise SimulationInputError(f"input '{name}' has shape {list(value.shape)}; expected a number, "
                                       f"[{axes}] or [time >= {steps}, {axes}]")
        sequences[name] = np.ascontiguousarray(value[:steps].reshape(steps, math.prod(shape)))
    return sequences


def read_input(text: str) -> float | np.ndarray:
    """A command-line input value: a number, or a .npy file of values."""
    if text.endswith(".npy"):
        path = Path(text)
        if not path.is_file():
            raise SimulationInputError(f"input file {text!r} does not exist")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as error:  # a text file named .npy, a truncated array
            raise SimulationInputError(f"input file {text!r} is not a .npy array: {error}") from None
    try:
        return float(text)
    except ValueError:
        raise SimulationInputError(f"input value {text!r} is neither a number nor a .npy file") from None


Loop = Callable[[dict[str, np.ndarray] | None], dict[str, np.ndarray]]


def simulate(ir: CircuitIR, steps: int, inputs: Mapping[str, float | np.ndarray] | None = None,
             seed: int = 0, loop: Loop | None = None) -> Traces:
    """Run the circuit (torch backend, batch 1, parameters at their init drawn with `seed`) for `steps` steps.

    `loop`, when given, closes the loop through a world: called with the previous step's outputs (None at
    the first step), it returns inputs for this step (flat [units] arrays) that replace the given ones.
    """
    import torch

    from circuitdsl import compile as compile_circuit  # the public entry point: only it reaches the backends

    sequences = input_sequences(ir, inputs or {}, steps)
    module = compile_circuit(ir, backend="torch", seed=seed)
    state = module.initial_state(1)
    shapes = {p.name: [a.size for a in p.shape] for p in ir.inputs}
    recorded: dict[str, list[np.ndarray]] = {name: [] for name in sequences}
    recorded.update({p.name: [] for p in ir.populations})
    recorded.update({o.name: [] for o in ir.outputs})
    previous: dict[str, np.ndarray] | None = None
    with torch.no_grad():
        for t in progress(range(steps), steps, ir.name):
            given = {name: values[t] for name, values in sequences.items()} | (loop(previous) if loop else {})
            for name, values in given.items():
                recorded[name].append(np.asarray(values, dtype=np.float32).reshape(-1))
            out, state = module({name: torch.as_tensor(recorded[name][-1]).reshape(1, *shapes[name])
                                 for name in given}, state)
            for p in ir.populations:
                recorded[p.name].append(state[f"{p.name}:out"][0].numpy().copy())
            previous = {name: value[0].reshape(-1).numpy().copy() for name, value in out.items()}
            for name, value in previous.items():
                recorded[name].append(value)
    signals = {name: np.stack(values) for name, values in recorded.items()}
    axes = {p.name: p.shape for p in (*ir.inputs, *ir.populations)} | {o.name: o.shape for o in ir.outputs}
    kinds = ({p.name: "input" for p in ir.inputs} | {p.name: "population" for p in ir.populations}
             | {o.name: "output" for o in ir.outputs})
    return Traces(ir.name, signals, {name: unit_labels(axes[name]) for name in signals}, kinds)
