"""What every compiled circuit shares at its boundary: parameter keys, input checking, output shapes.

Written against the array methods torch and JAX have alike (`shape`, `reshape`), so the conventions
(dict keyed by port, a bare array for a single input, batch-first, errors naming the port and the
expected shape) are one piece of code for every backend.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from circuitdsl.backends.step import Array, Ops
from circuitdsl.errors import did_you_mean

if TYPE_CHECKING:
    from circuitdsl.backends.record import Record
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


def checked_count(what: str, value: Any) -> int:
    """A count a caller gives (`initial_state(batch_size)`, a rollout's `steps`, compile's `seed`): a whole number,
    0 or more (numpy's integers too, not a bool); anything else is refused here naming `what`, rather than by the
    framework's allocation or a loop's range."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise CircuitRuntimeError(f"{what} must be a whole number, 0 or more, not {value!r}")
    return int(value)


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
            hint = did_you_mean(name, list(ports))
            raise CircuitRuntimeError(f"circuit '{ir.name}' has no input '{name}'; its inputs are "
                                      f"{sorted(ports) or 'none'}" + (f"; {hint}" if hint else ""))
        value = as_float_array(f"input '{name}'", value, ops)
        shape = [a.size for a in ports[name].shape]
        if len(value.shape) != len(leading) + len(shape) or list(value.shape[len(leading):]) != shape:
            expected = ", ".join([*leading, *(f"{a.name}={a.size}" for a in ports[name].shape)])
            raise CircuitRuntimeError(f"input '{name}' has shape {list(value.shape)}; expected [{expected}]")
        flat[name] = value.reshape(*value.shape[:len(leading)], math.prod(shape))
    missing = set(ports) - set(flat)
    if missing:
        raise CircuitRuntimeError(f"missing input{'s' * (len(missing) > 1)} {sorted(missing)}")
    if len({tuple(int(s) for s in v.shape[:len(leading)]) for v in flat.values()}) > 1:  # int: sizes, not traced
        sizes = {name: list(v.shape[:len(leading)]) for name, v in flat.items()}
        raise CircuitRuntimeError(f"inputs disagree on their [{', '.join(leading)}] sizes: {sizes}")
    return flat


Ports = Sequence[tuple[str, tuple[int, ...], int]]  # (name, shape, flat size) of each input port
Fits = Callable[[Any], bool]  # whether a value is the backend's array in its dtype (and on its device)


def ready_inputs(inputs: Any, ports: Ports, leading: int, fits: Fits) -> dict[str, Array] | None:
    """The inputs flat per port when they need no check or conversion: a dict of every port (a bare array for a
    circuit with one), each `fits` the backend and is [*leading, *port shape] with the same leading sizes; None
    for anything else, which `flat_inputs` then converts or refuses naming the mistake.  What a step's caller
    passes every step (its own arrays) costs a few attribute reads, not a conversion."""
    if len(ports) == 1 and fits(inputs):
        inputs = {ports[0][0]: inputs}
    if not isinstance(inputs, dict) or len(inputs) != len(ports):
        return None
    flat, lead = {}, None
    for name, shape, size in ports:
        x: Any = inputs.get(name)
        if (not fits(x) or x.shape[leading:] != shape or x.ndim != leading + len(shape)
                or (lead is not None and x.shape[:leading] != lead)):
            return None
        lead = x.shape[:leading]
        flat[name] = x if len(shape) == 1 else x.reshape(*lead, size)
    return flat


def ready_state(state: Any, sizes: Sequence[tuple[str, int]], batch: int, fits: Fits) -> bool:
    """Whether a state needs no check or conversion: a dict of every key in `sizes` (and no other), each `fits`
    the backend and is [batch, size] (what a step returned)."""
    if not isinstance(state, dict) or len(state) != len(sizes):
        return False
    for key, size in sizes:
        x: Any = state.get(key)
        if not fits(x) or x.shape != (batch, size):
            return False
    return True


def as_float_array(what: str, value: Any, ops: Ops) -> Array:
    """A value as the backend's float array in its dtype: arrays of either framework, numpy arrays, lists and
    numbers are converted; anything else (strings, objects, ragged lists, complex numbers, whose imaginary part a
    conversion would drop) is refused naming `what`."""
    if "complex" in str(getattr(value, "dtype", "")):  # torch.complex64, numpy's and JAX's complex128
        raise CircuitRuntimeError(f"{what} is complex ({value.dtype}); a circuit reads real numbers")
    if not hasattr(value, "shape") or not hasattr(value, "reshape") or isinstance(value, np.ndarray):
        try:
            value = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise CircuitRuntimeError(f"{what} is a {type(value).__name__}, not an array of numbers") from None
        return ops.asarray(value)
    try:
        return ops.to_float(value)
    except (TypeError, ValueError, RuntimeError) as error:
        raise CircuitRuntimeError(f"{what} cannot be read as floats: {error}") from None


NONFINITE = ("warn", "raise", "ignore")
"""What a compiled circuit does with NaN or infinite inputs (its `nonfinite` attribute): warn (the default),
raise a CircuitRuntimeError, or not check.  Checked where values are concrete (not inside jit or torch.compile)."""


class NonfinitePolicy:
    """A compiled circuit's `nonfinite` attribute (one of NONFINITE, "warn" until set), checked where it is set:
    a misspelled policy is named at its assignment, not at some later call, and a step need not check it again
    (a torch.compile'd step does not read it: inside the compiled graph no value is looked at)."""

    def __get__(self, owner: object, kind: type | None = None) -> str:
        return "warn" if owner is None else str(vars(owner).get("_nonfinite", "warn"))

    def __set__(self, owner: object, policy: object) -> None:
        if not isinstance(policy, str) or policy not in NONFINITE:
            hint = did_you_mean(policy, NONFINITE) if isinstance(policy, str) else None
            raise CircuitRuntimeError(f"nonfinite must be one of {', '.join(NONFINITE)}, not {policy!r}"
                                      + (f"; {hint}" if hint else ""))
        vars(owner)["_nonfinite"] = policy


def check_finite(inputs: Mapping[str, Array], policy: str, ops: Ops) -> None:
    """Warn about (or refuse) inputs holding NaN or infinity, naming them (`policy`: a NonfinitePolicy's)."""
    if policy == "ignore":
        return
    bad = [name for name, value in inputs.items() if ops.all_finite(value) is False]
    if bad:
        message = (f"input{'s' * (len(bad) > 1)} {', '.join(repr(b) for b in bad)} "
                   f"{'hold' if len(bad) > 1 else 'holds'} NaN or infinite values")
        if policy == "raise":
            raise CircuitRuntimeError(message)
        warnings.warn(message + " (set nonfinite = 'raise' to refuse them, 'ignore' to not check)",
                      RuntimeWarning, stacklevel=4)


def no_state_entry(key: object, keys: Iterable[str]) -> CircuitRuntimeError:
    """The error for a state key the circuit does not have: a did-you-mean and the keys it has."""
    keys = list(keys)
    hint = did_you_mean(str(key), keys)
    if hint is None and str(key).endswith(":out"):  # a population's last output no step reads
        hint = (f"a population's last output is state only where the next step reads it (a recurrent edge, a gap "
                f"junction); record=['{str(key).removesuffix(':out')}'] gives it as a step's output")
    return CircuitRuntimeError(f"state has no entry {key!r}" + (f"; {hint}" if hint else "") + f"; its keys are "
                               f"{sorted(keys)}")


def checked_state(layout: Mapping[str, tuple[int, float]], state: Any, batch: int, ops: Ops) -> dict[str, Array]:
    """A given state checked against the circuit's layout (every key, [batch, size] each) and converted to the
    backend's dtype; errors name the key and the expected shape."""
    if not isinstance(state, Mapping):
        raise CircuitRuntimeError(f"state is a {type(state).__name__}; pass the dict that initial_state or a "
                                  "previous step returned")
    unknown = [key for key in state if key not in layout]
    if unknown:
        raise no_state_entry(unknown[0], layout)
    missing = [key for key in layout if key not in state]
    if missing:
        raise CircuitRuntimeError(f"state is missing {', '.join(repr(k) for k in missing[:5])}"
                                  + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
                                  + "; start from initial_state(batch)")
    checked = {}
    for key, (size, _) in layout.items():
        value = as_float_array(f"state {key!r}", state[key], ops)
        if tuple(value.shape) != (batch, size):
            raise CircuitRuntimeError(f"state {key!r} has shape {list(value.shape)}; expected [batch={batch}, {size}]")
        checked[key] = value
    return checked


def checked_params(ir: CircuitIR, params: Any, what: str = "parameters") -> None:
    """A parameter set checked against the circuit's: every key (`param_key` of each IR parameter) present, no
    other, each of the parameter's shape; errors name the key and the expected shape."""
    if not isinstance(params, Mapping):
        raise CircuitRuntimeError(f"{what} are a {type(params).__name__}; pass the dict that init() returned")
    expected = {param_key(p.name): p for p in ir.parameters}
    unknown = [key for key in params if key not in expected]
    missing = [key for key in expected if key not in params]
    if unknown or missing:
        hint = did_you_mean(str(unknown[0]), expected) if unknown else None
        raise CircuitRuntimeError(f"{what} {sorted(params)} are not this circuit's {sorted(expected)}"
                                  + (f"; {hint}" if hint else ""))
    for key, parameter in expected.items():
        shape = tuple(getattr(params[key], "shape", ()))
        if shape != tuple(parameter.shape):
            raise CircuitRuntimeError(f"parameter {key!r} has shape {list(shape)}; expected {parameter.shape}")


def batch_of(inputs: Mapping[str, Array], state: Mapping[str, Array] | None) -> int:
    """The batch size: the inputs' first axis, else the state's, else 1."""
    for value in (*inputs.values(), *(state or {}).values()):
        return int(value.shape[0])
    return 1


def rollout_length(sequence: Mapping[str, Array], steps: int | None) -> int:
    """How many steps a rollout runs: the inputs' time axis, or `steps` for a circuit run without inputs; `steps`
    given with inputs must agree with their time axis (it was ignored: `steps=7` over 4 time steps ran 4)."""
    if steps is not None:
        steps = checked_count("steps", steps)
    if sequence:
        length = int(next(iter(sequence.values())).shape[1])
        if steps is not None and steps != length:
            raise CircuitRuntimeError(f"steps={steps}, but the inputs run over {length} time steps; give the inputs "
                                      f"alone, or steps={length}")
        return length
    if steps is None:
        raise CircuitRuntimeError("rollout needs inputs over time or a number of steps")
    return steps


def empty_outputs(ir: CircuitIR, records: Sequence[Record], batch: int, ops: Ops) -> dict[str, Array]:
    """A zero-length rollout's outputs and records: [batch, 0, *shape] each."""
    shapes = {o.name: tuple(a.size for a in o.shape) for o in ir.outputs} | {r.name: r.shape for r in records}
    return {name: ops.broadcast(0.0, (batch, 0, *shape)) for name, shape in shapes.items()}


def shaped_outputs(ir: CircuitIR, outputs: Mapping[str, Array]) -> dict[str, Any]:
    """Flat outputs [..., units] reshaped to [..., *output shape], keyed by output name; recorded traces (the
    other keys, already shaped) as they are."""
    shapes = {o.name: [a.size for a in o.shape] for o in ir.outputs}
    return {name: value.reshape(*value.shape[:-1], *shapes[name]) if name in shapes else value
            for name, value in outputs.items()}


def time_loop(step: Callable[..., tuple[dict[str, Array], Any]], prepared: Mapping[str, Any],
              sequence: Mapping[str, Array], length: int, state: Any, batch: int, records: Sequence[Any],
              ops: Ops) -> tuple[dict[str, Array], Any]:
    """A rollout's time loop: each input [batch, time, ...] split into its steps (one call per input, not a slice
    per step), the prepared step once per time step (`Program.rollout_step`: the outputs, or what they read), and
    each of its results' steps stacked along time, [batch, time, ...].  Under torch.compile the torch module calls
    it through `torch_traced.untraced_time_loop`, so the loop, the split and the stacking stay eager (not unrolled
    into one graph of every step, nor a graph with one output per step, each of which torch regenerates as a view
    on every call: 65 us a step) and the step it calls is compiled once and reused."""
    names = list(sequence)
    per_step = zip(*(ops.unstack(sequence[name], 1) for name in names)) if names else ((),) * length
    collected: dict[str, list[Array]] = {}
    for values in per_step:
        outputs, state = step(prepared, dict(zip(names, values)), state, batch, records)
        for name, value in outputs.items():
            collected.setdefault(name, []).append(value)
    return {name: ops.stack(values, 1) for name, values in collected.items()}, state
