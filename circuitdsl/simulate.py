"""Simulate a circuit over time and record every input, population and output: what `circuitdsl run` plots."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from circuitdsl.ir.model import Axis, CircuitIR, NeuronModel, Output, Ref
from circuitdsl.limits import Limits
from circuitdsl.progress import progress


class SimulationInputError(ValueError):
    """An input given to a simulation that does not fit the circuit's input ports."""


@dataclass(frozen=True)
class Traces:
    """Activity over time: per signal (inputs, populations, outputs, then recorded names) an array [time, units]."""

    circuit: str
    signals: dict[str, np.ndarray]
    units: dict[str, list[str]]  # per signal, a label per unit ("joint=2", or the axis' own unit labels)
    kinds: dict[str, str]  # per signal: input | population | output | record
    dt: float | None = None  # ms per step, when every neuron with a time step has the same one
    groups: dict[str, list[str]] = field(default_factory=dict)  # per signal with layered units: each unit's layer
    events: frozenset[str] = frozenset()  # signals that are spikes (0/1 from a neuron's `spike`): drawn as rasters
    dims: dict[str, str] = field(default_factory=dict)  # per signal with a physical dimension, its name


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
        value = np.asarray(given.get(name, 0.0), dtype=np.float64)  # the circuit converts to its own dtype
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
             seed: int = 0, loop: Loop | None = None, record: Sequence[str] = (), dtype: str = "float32",
             limits: Limits | None = None) -> Traces:
    """Run the circuit (torch backend, batch 1, parameters at their init drawn with `seed`) for `steps` steps,
    recording every input, population and output, and the names in `record` (`RS.v`, `h1.spk`; docs/engine.md),
    in `dtype` (float32 or float64).  What it would record is checked against `limits.trace_values` first.

    `loop`, when given, closes the loop through a world: called with the previous step's outputs (None at
    the first step), it returns inputs for this step (flat [units] arrays) that replace the given ones.
    """
    import torch

    from circuitdsl import CircuitRuntimeError
    from circuitdsl import compile as compile_circuit  # the public entry point: only it reaches the backends

    _check_trace_size(ir, steps, record, limits or Limits())
    sequences = input_sequences(ir, inputs or {}, steps)
    module = compile_circuit(ir, backend="torch", seed=seed, dtype=dtype)
    names = [p.name for p in ir.populations] + [name for name in record if name not in {p.name for p in ir.populations}]
    try:
        with torch.no_grad():
            recorded = _closed_loop(ir, module, sequences, steps, names, loop) if loop else _rollout(
                ir, module, sequences, steps, names)
    except CircuitRuntimeError as error:
        raise SimulationInputError(str(error)) from None
    return _traces(ir, recorded, list(record))


def _check_trace_size(ir: CircuitIR, steps: int, record: Sequence[str], limits: Limits) -> None:
    """Refuse, before anything is allocated, a simulation whose traces would pass `limits.trace_values`: steps
    times the units of every input, population and output, and of the population each recorded name belongs to
    (a state with an axis of its own records more: a lower bound there).  It bounds the run's time too."""
    signals = [(p.name, p.shape) for p in ir.inputs] + [(p.name, p.shape) for p in ir.populations]
    signals += [(o.name, o.shape) for o in ir.outputs]
    sizes = {name: math.prod(a.size for a in shape) for name, shape in signals}
    units = sum(sizes.values()) + sum(sizes.get(name.rsplit(".", 1)[0], 0) for name in record if name not in sizes)
    if steps * units > limits.trace_values:
        raise SimulationInputError(f"error[E712]: {steps} steps of {units} recorded units are {steps * units} values, "
                                   f"{limits.over('trace_values')}; {limits.hint('trace_values')}")


def _rollout(ir: CircuitIR, module: object, sequences: dict[str, np.ndarray], steps: int,
             names: list[str]) -> dict[str, np.ndarray]:
    """Open loop: one rollout; every signal [time, units]."""
    import torch

    shapes = {p.name: [a.size for a in p.shape] for p in ir.inputs}
    given = {name: torch.as_tensor(values).reshape(1, steps, *shapes[name]) for name, values in sequences.items()}
    outputs, _ = module.rollout(given or None, steps=steps, record=names)  # type: ignore[attr-defined]
    return dict(sequences) | {name: value[0].reshape(steps, -1).numpy() for name, value in outputs.items()}


def _closed_loop(ir: CircuitIR, module: object, sequences: dict[str, np.ndarray], steps: int, names: list[str],
                 loop: Loop) -> dict[str, np.ndarray]:
    """Closed loop: step by step, each step's inputs from the world; every signal [time, units]."""
    import torch

    shapes = {p.name: [a.size for a in p.shape] for p in ir.inputs}
    recorded: dict[str, list[np.ndarray]] = {}
    state = module.initial_state(1)  # type: ignore[attr-defined]
    previous: dict[str, np.ndarray] | None = None
    for t in progress(range(steps), steps, ir.name):  # a bar only when stderr is a terminal
        given = {name: values[t] for name, values in sequences.items()} | loop(previous)
        tensors = {name: torch.as_tensor(np.asarray(v, dtype=np.float32)).reshape(1, *shapes[name])
                   for name, v in given.items()}
        out, state = module(tensors, state, record=names)  # type: ignore[operator]
        for name, value in {**tensors, **out}.items():
            recorded.setdefault(name, []).append(value[0].reshape(-1).numpy().copy())
        previous = {o.name: recorded[o.name][-1] for o in ir.outputs}
    if previous is not None:
        loop(previous)  # the last step's outputs act on the world too: `steps` steps, `steps` actions taken
    return {name: np.stack(values) for name, values in recorded.items()}


def _traces(ir: CircuitIR, recorded: dict[str, np.ndarray], record: list[str]) -> Traces:
    """Signals in order (inputs, populations, outputs, recorded names) with their unit labels, layers and kinds."""
    kinds = ({p.name: "input" for p in ir.inputs} | {p.name: "population" for p in ir.populations}
             | {o.name: "output" for o in ir.outputs})
    kinds |= {name: "record" for name in record if name not in kinds}
    signals = {name: recorded[name] for name in kinds}
    axes: dict[str, list[Axis]] = ({p.name: p.shape for p in ir.inputs} | {p.name: p.shape for p in ir.populations}
                                   | {o.name: o.shape for o in ir.outputs})
    axes |= {name: axes[name.rsplit(".", 1)[0]] for name in record if name not in axes}  # a population's state or let
    units = {name: unit_labels(axes[name]) for name in signals}
    units |= {name: [str(i) for i in range(values.shape[1])] for name, values in signals.items()
              if len(units[name]) != values.shape[1]}  # a state with an axis of its own: units x that axis
    groups = {name: layers for name in signals if len(axes[name]) == 1 and (layers := axes[name][0].layers)
              and len(layers) == signals[name].shape[1]}
    return Traces(ir.name, signals, units, kinds, time_step(ir), groups, spike_signals(ir, signals),
                  {name: dim for name, dim in _dims(ir, record).items() if name in signals and dim != "dimensionless"})


def _dims(ir: CircuitIR, record: list[str]) -> dict[str, str]:
    """The dimension of every input, population, output and recorded state."""
    dims = {p.name: p.dim for p in ir.inputs} | {o.name: o.dim for o in ir.outputs}
    models = {p.name: ir.neurons[p.model] for p in ir.populations}
    dims |= {name: model.output_dim for name, model in models.items()}
    for name in record:
        population, _, variable = name.rpartition(".")
        states = {v.name: v.dim for v in models[population].states} if population in models else {}
        if variable in states:
            dims[name] = states[variable]
    return dims


def time_step(ir: CircuitIR) -> float | None:
    """The ms per step of every neuron model that has a `dt: time` argument, if they agree (else None)."""
    steps = {float(m.args["dt"]) for m in ir.neurons.values() if isinstance(m.args.get("dt"), float | int)
             and not isinstance(m.args.get("dt"), bool)}
    return steps.pop() if len(steps) == 1 else None


def spike_signals(ir: CircuitIR, signals: Mapping[str, np.ndarray]) -> frozenset[str]:
    """The signals that are spike trains: a population whose model fires spikes, an output reading only such
    populations, a recorded `spike`, an input of a circuit with spiking populations; each with values 0 or 1."""
    models = {p.name: ir.neurons[p.model] for p in ir.populations}
    firing = {name for name, model in models.items() if _fires(model)}
    spikes = {f"{p}.{e.target}" for p, model in models.items() for e in model.equations if e.kind == "spike"}
    spikes |= firing | {o.name for o in ir.outputs if _reads_only(o, firing)}
    if firing:  # a spiking network's 0/1 inputs are spike trains too
        spikes |= {p.name for p in ir.inputs}
    return frozenset(name for name in spikes & set(signals) if np.isin(signals[name], (0.0, 1.0)).all())


def _fires(model: NeuronModel) -> bool:
    return any(e.kind == "spike" for e in model.equations)


def _reads_only(output: Output, populations: set[str]) -> bool:
    """An output whose every piece is a population of `populations`, read as it is."""
    return all(isinstance(piece.expr, Ref) and piece.expr.source in populations for piece in output.pieces)
