"""What a rollout can record besides the circuit's outputs: population outputs, neuron states and named values.

A record name is `pop` (the population's output, as the populations that read it see it), `pop.var` (a state
variable of its neuron model, after the step) or `pop.name` (a `let` or `spike` of its neuron model, this
step's value).  Each recorded trace comes back [batch, time, *population shape, *inner axis] beside the outputs,
keyed by its record name.  Names are resolved once per call; an unknown one is a `CircuitRuntimeError` with a
did-you-mean.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from circuitdsl.backends.interface import CircuitRuntimeError
from circuitdsl.backends.plan import Plan
from circuitdsl.errors import did_you_mean


@dataclass(frozen=True)
class Record:
    """One recorded trace: `kind` out (the population's output), state (`variable` of its neuron) or value
    (a let or spike of its neuron); `shape` is one sample's shape at one step."""

    name: str
    population: str
    kind: str
    variable: str
    shape: tuple[int, ...]


def recordable(plan: Plan) -> dict[str, Record]:
    """Every name a rollout of this plan can record, with what it records."""
    names: dict[str, Record] = {}
    for population in plan.ir.populations:
        model = plan.populations[population.name].model
        shape = tuple(a.size for a in population.shape)
        out = tuple(a.size for a in model.output_shape)
        names[population.name] = Record(population.name, population.name, "out", "", shape + out)
        for variable in model.states:
            inner = tuple(a.size for a in variable.shape)
            name = f"{population.name}.{variable.name}"
            names[name] = Record(name, population.name, "state", variable.name, shape + inner)
        for equation in model.equations:
            name = f"{population.name}.{equation.target}"
            if equation.kind in ("let", "spike") and name not in names:
                names[name] = Record(name, population.name, "value", equation.target, shape)
    return names


def resolve(plan: Plan, names: Iterable[str] | None) -> list[Record]:
    """The records asked for, in order; an unknown name, a repeated one or one that is also an output is an error."""
    if names is None:
        return []
    if isinstance(names, str):
        names = [names]
    known = recordable(plan)
    outputs = {o.name for o in plan.ir.outputs}
    records: list[Record] = []
    for name in names:
        if not isinstance(name, str):
            raise CircuitRuntimeError(f"record takes names (`pop`, `pop.v`), not {name!r}")
        if name not in known:
            hint = did_you_mean(name, list(known))
            raise CircuitRuntimeError(f"circuit '{plan.ir.name}' has nothing to record named '{name}'"
                                      + (f"; {hint}" if hint else "")
                                      + "; record a population (`pop`), a neuron state (`pop.v`) or a neuron's "
                                        "let or spike (`pop.spk`)")
        if name in outputs or any(r.name == name for r in records):
            raise CircuitRuntimeError(f"'{name}' is recorded twice (or is also an output of the circuit)")
        records.append(known[name])
    return records
