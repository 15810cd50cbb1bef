"""The numpy backend: the same program (circuitdsl/backends/program.py) over numpy, for fast inference on a CPU.

At batch 1 a step of a small circuit is a few dozen operations on arrays of a handful of elements, and what
each costs is the framework's dispatch, not the arithmetic: a numpy call costs a fraction of a torch call, so an
agent acting in an environment one step at a time (`circuitdsl.envs.swim.CircuitPolicy`) acts through this
backend.  It computes no gradients (a spike is a plain Heaviside step): train with the torch or JAX backend and
load the weights here (`set_params`, `load_state_dict`).

`NumpyCircuit` holds its parameters, as the torch module does, and prepares the program's parameter-only work
(effective values, operators) once when they are set, not once per step: its parameters are read-only arrays,
so the prepared operators cannot go stale.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from circuitdsl.backends.array_ops import ArrayModuleOps
from circuitdsl.backends.interface import (
    CircuitRuntimeError,
    NonfinitePolicy,
    batch_of,
    check_finite,
    checked_count,
    checked_params,
    checked_state,
    dtype_name,
    empty_outputs,
    flat_inputs,
    param_key,
    ready_inputs,
    ready_state,
    rollout_length,
    shaped_outputs,
    time_loop,
)
from circuitdsl.backends.plan import Plan, make_plan
from circuitdsl.backends.program import Program
from circuitdsl.backends.record import resolve
from circuitdsl.backends.step import State, initial_state, state_layout
from circuitdsl.ir.expr import NUMPY_FUNCTIONS
from circuitdsl.ir.model import CircuitIR
from circuitdsl.ir.params import initial_values
from circuitdsl.ir.primitives import NUMPY

if TYPE_CHECKING:
    from scipy.sparse import csr_array

_GRID, _TAPS = "xyzw", "PQRS"  # einsum letters of a convolution's grid axes and of its taps


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def _erf(x: Any) -> Any:
    """erf as one ufunc in x's float type (the reference evaluator's calls math.erf per element)."""
    from scipy.special import erf  # a dependency, imported on first use: it takes a tenth of a second

    return erf(x)


class NumpyOps(ArrayModuleOps):
    """The array operations the program needs, in numpy: forward values only."""

    functions: Mapping[str, Callable[..., Any]] = {**NUMPY_FUNCTIONS, "erf": _erf}  # circuitdsl/ir/expr.py's
    primitives = NUMPY

    def __init__(self, dtype: str = "float32") -> None:
        super().__init__(np, dtype, np.int64)
        self._zero = self.constant(0.0)

    def scatter_add(self, n: int, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self.add_at(np.zeros((values.shape[0], n), values.dtype), index, values)

    def add_at(self, x: np.ndarray, index: np.ndarray, values: np.ndarray) -> np.ndarray:
        out = np.array(x, dtype=np.result_type(x, values))
        np.add.at(out.T, index, np.broadcast_to(values, (x.shape[0], index.shape[0])).T)  # out.T: a view
        return out

    def fits(self, x: Any) -> bool:
        """Whether x is a numpy array in the ops' dtype (a builtin dtype is one object)."""
        return type(x) is np.ndarray and x.dtype is self.dtype

    def constant(self, value: float) -> np.ndarray:
        """A constant operand as a 0-d array in the ops' dtype: the same result as the Python number (which numpy
        converts to the array's dtype), without converting it on every call (half the cost of a small ufunc)."""
        with np.errstate(over="ignore"):  # a constant beyond float32's range is infinite, as the conversion gives
            return np.asarray(value, self.dtype)

    def clamp_between(self, lo: float, hi: float) -> Callable[[np.ndarray], np.ndarray]:
        """clamp(x, lo, hi) for constant bounds: one ufunc per finite bound."""
        low, high = self.constant(lo), self.constant(hi)
        if math.isinf(lo) and math.isinf(hi):
            return _identity
        if math.isinf(hi):
            return lambda x: np.maximum(x, low)
        if math.isinf(lo):
            return lambda x: np.minimum(x, high)
        return lambda x: np.minimum(np.maximum(x, low), high)

    def all_finite(self, x: np.ndarray) -> bool:
        return bool(np.logical_and.reduce(np.isfinite(x), axis=None))  # the ufunc itself: x.all() wraps it

    def spike(self, x: np.ndarray, surrogate: str, slope: float) -> np.ndarray:
        """The Heaviside step x > 0 (there is no backward pass, so no surrogate)."""
        return (x > self._zero).astype(x.dtype)

    def softplus(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, x)

    def einsum(self, spec: str, *operands: np.ndarray) -> np.ndarray:
        return np.einsum(spec, *operands)

    def correlate(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """Valid cross-correlation over the grid axes: x [batch, in, *grid], w [out, in, *taps]."""
        d = w.ndim - 2
        windows = x  # [batch, in, *outputs, *taps]: each grid axis's windows appended last, in order
        for axis, taps in enumerate(w.shape[2:]):
            windows = np.lib.stride_tricks.sliding_window_view(windows, taps, axis=2 + axis)
        grid, letters = _GRID[:d], _TAPS[:d]
        return np.einsum(f"bi{grid}{letters},oi{letters}->bo{grid}", windows, w)

    def complex(self, real: np.ndarray, imag: np.ndarray) -> np.ndarray:
        return real + 1j * imag

    def csr(self, crow: np.ndarray, rows: np.ndarray, cols: np.ndarray, values: np.ndarray,
            shape: tuple[int, int]) -> csr_array:
        from scipy.sparse import csr_array  # imported on first use, as erf

        return csr_array((values, cols, crow), shape=shape)

    def csr_matmul(self, matrix: csr_array, x: np.ndarray) -> np.ndarray:
        return np.asarray((matrix @ x.T).T)


class NumpyCircuit:
    """A compiled circuit for inference in numpy: `step(inputs, state)` advances one time step, `rollout(inputs)`
    many; batch-first, inputs, outputs and state as the torch module has them (dicts of [batch, *shape] arrays,
    a bare array for a circuit with one input), as numpy arrays.

    The parameters (`params`, keyed as the torch module's) start at the torch module's initial values for the same
    seed and change only through `set_params` or `load_state_dict`, which prepare the program's operators once.
    """

    nonfinite = NonfinitePolicy()  # NaN / infinite inputs: "warn" (until set), "raise" or "ignore" (docs/engine.md)

    def __init__(self, ir: CircuitIR, seed: int = 0, lowering: str = "auto", dtype: str = "float32") -> None:
        self.ir, self.seed, self.lowering = ir, seed, lowering
        self.dtype = dtype_name(dtype)
        self.plan: Plan = make_plan(ir, lowering)
        self._layout = state_layout(self.plan)
        self._ports = [(p.name, tuple(a.size for a in p.shape), math.prod(a.size for a in p.shape))
                       for p in ir.inputs]
        self._sizes = [(key, size) for key, (size, _) in self._layout.items()]
        self._flat_outputs = all(len(o.shape) == 1 for o in ir.outputs)
        rng = np.random.default_rng(seed)
        self._lower({param_key(p.name): initial_values(p, rng, self.dtype) for p in ir.parameters})

    def _lower(self, params: Mapping[str, Any]) -> None:
        """The program and its operators, prepared for `params` (when built, and when copied)."""
        self.ops = NumpyOps(self.dtype)
        self.program = Program(self.plan, self.ops, self.lowering)
        # the state the last step returned, its keys and arrays, and its batch
        self._returned: tuple[State | None, tuple[str, ...], tuple[np.ndarray, ...], int] = (None, (), (), 0)
        self._params: Mapping[str, np.ndarray] = {}
        self._prepared: dict[str, Any] = {}
        self.set_params(params)

    def __getstate__(self) -> dict[str, Any]:
        """What a copy (`copy.deepcopy`, pickle) holds: the IR, plan, settings and parameters; its program and
        prepared operators (closures, not picklable) are built again for it (`_lower`)."""
        rebuilt = {"ops", "program", "_returned", "_params", "_prepared"}
        return {**{k: v for k, v in self.__dict__.items() if k not in rebuilt}, "params": dict(self._params)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        params = state.pop("params")
        self.__dict__.update(state)
        self._lower(params)

    @property
    def params(self) -> Mapping[str, np.ndarray]:
        """The parameters by key (`osc`, `seg[2]/w`): read-only arrays; change them with `set_params`."""
        return self._params

    def set_params(self, params: Mapping[str, Any]) -> None:
        """Replace every parameter (keys and shapes as `params`; numpy arrays, torch tensors, JAX arrays or
        lists, converted to the circuit's dtype) and prepare the operators they give."""
        checked_params(self.ir, params)
        arrays = {}
        for key in (param_key(p.name) for p in self.ir.parameters):
            value = params[key]
            try:
                value = value.detach().cpu().numpy() if hasattr(value, "detach") else value  # a torch tensor
                array = np.array(value, dtype=self.ops.dtype)  # a copy: nobody else can change it
            except (TypeError, ValueError):
                raise CircuitRuntimeError(f"parameter {key!r} is a {type(value).__name__}, not an array of "
                                          "numbers") from None
            array.flags.writeable = False
            arrays[key] = array
        named = {p.name: arrays[param_key(p.name)] for p in self.ir.parameters}
        self._prepared = self.program.prepare(named)
        self._params = MappingProxyType(arrays)

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """The parameters of a torch `CircuitModule`'s `state_dict()` (keys `params.<key>`) for the same circuit."""
        params = {key.removeprefix("params."): value for key, value in state_dict.items()
                  if isinstance(key, str) and key.startswith("params.")}
        if len(params) != len(state_dict):
            raise CircuitRuntimeError(f"state_dict keys {sorted(map(str, state_dict))} are not this circuit's "
                                      f"(params.<key>)")
        checked_params(self.ir, params, "state_dict keys")
        self.set_params(params)

    def initial_state(self, batch_size: int = 1) -> State:
        """Neuron states at their initial values, last outputs at 0, delay lines empty: a dict of [batch, units]."""
        return initial_state(self._layout, checked_count("batch_size", batch_size), self.ops)

    def step(self, inputs: Mapping[str, Any] | Any | None = None, state: State | None = None,
             record: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray], State]:
        """One step: inputs [batch, *shape]; outputs (and the `record`ed names, see `rollout`) [batch, *shape]."""
        flat = self._inputs(inputs, 1)
        check_finite(flat, self.nonfinite, self.ops)
        records = resolve(self.plan, record) if record is not None else []
        batch = int(next(iter(flat.values())).shape[0]) if flat else batch_of(flat, state)
        outputs, new_state = self.program.step(self._prepared, flat, self._state(state, batch), batch, records)
        self._returned = (new_state, tuple(new_state), tuple(new_state.values()), batch)
        return (outputs if self._flat_outputs and not records else shaped_outputs(self.ir, outputs)), new_state

    def rollout(self, inputs: Mapping[str, Any] | Any | None = None, steps: int | None = None,
                state: State | None = None, record: Sequence[str] | None = None) -> tuple[dict[str, np.ndarray],
                                                                                             State]:
        """Run over time: each input is [batch, time, *shape]; outputs come back [batch, time, *shape], and so
        does each name in `record` (`pop`, `pop.state`, `pop.let`; docs/engine.md), keyed by that name."""
        sequence = self._inputs(inputs, 2)
        check_finite(sequence, self.nonfinite, self.ops)
        length = rollout_length(sequence, steps)
        records = resolve(self.plan, record)
        batch = batch_of(sequence, state)
        state = self._state(state, batch)
        if length == 0:
            return empty_outputs(self.ir, records, batch, self.ops), state
        program = self.program
        step = program.rollout_step(batch, length)
        stacked, state = time_loop(step, self._prepared, sequence, length, state, batch, records, self.ops)
        outputs = program.rollout_outputs(self._prepared, sequence, stacked, batch, length)
        return shaped_outputs(self.ir, {**outputs, **{r.name: stacked[r.name] for r in records}}), state

    def _inputs(self, inputs: Any, leading: int) -> dict[str, np.ndarray]:
        """The inputs flat per port: numpy arrays in the circuit's dtype and of the ports' shapes as they are,
        anything else checked (converted, or the mistake named)."""
        flat = ready_inputs(inputs, self._ports, leading, self.ops.fits)
        return flat_inputs(self.ir, inputs, ("batch", "time")[:leading], self.ops) if flat is None else flat

    def _state(self, state: State | None, batch: int) -> State:
        """The given state checked and in the circuit's dtype, or the initial state.  The dict the last step
        returned, untouched, and a dict of numpy arrays of the right dtype and shapes pass as they are."""
        if state is None:
            return self.initial_state(batch)
        last, keys, values, last_batch = self._returned
        if (state is last and last_batch == batch and len(state) == len(keys) and all(map(operator.is_, state, keys))
                and all(map(operator.is_, state.values(), values))):
            return state  # the dict the last step returned, holding the very keys and arrays it returned
        if ready_state(state, self._sizes, batch, self.ops.fits):
            return state
        return checked_state(self._layout, state, batch, self.ops)

    def at_resolution(self, **sizes: int) -> NumpyCircuit:
        """This circuit with grid axes at other sizes (`x = 512`), with these parameters (an operator layer's do
        not depend on its grid)."""
        other = NumpyCircuit(self.ir.at_resolution(**sizes), self.seed, self.lowering, self.dtype)
        other.set_params(self._params)
        return other

