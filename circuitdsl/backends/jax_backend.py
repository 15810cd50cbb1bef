"""The JAX backend: the shared step semantics over jax.numpy, as pure functions of parameters and state.

`JaxCircuit` holds no arrays that change: `init` makes the parameters (a dict keyed like the torch
module's `params`), `step` and `rollout` map (params, state, inputs) to (outputs, state), and all of
them work under `jax.jit`, `jax.vmap` and `jax.grad`.  Parameters that the circuit fixes
(`fixed(x)`, not trainable) pass through `stop_gradient`, so their gradient is zero as in torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, Final

import jax
import jax.numpy as jnp
import numpy as np

from circuitdsl.backends.array_ops import ArrayModuleOps
from circuitdsl.backends.interface import (
    CircuitRuntimeError,
    NonfinitePolicy,
    as_float_array,
    batch_of,
    check_finite,
    checked_count,
    checked_params,
    checked_state,
    dtype_name,
    empty_outputs,
    flat_inputs,
    param_key,
    rollout_length,
    shaped_outputs,
)
from circuitdsl.backends.jax_lowering import choose, pick
from circuitdsl.backends.jax_prepared import PreparedParams
from circuitdsl.backends.packed_state import PackedState, StateLayout
from circuitdsl.backends.plan import Plan, make_plan
from circuitdsl.backends.program import Program
from circuitdsl.backends.record import Record, resolve
from circuitdsl.backends.step import State, state_layout, surrogate_derivative
from circuitdsl.ir.composite import bind
from circuitdsl.ir.model import CircuitIR
from circuitdsl.ir.params import Sampler, initial_values, sampled_values
from circuitdsl.ir.primitives import NumpyPrimitives

Params = dict[str, jax.Array]


def _clamp(x: Any, lo: Any, hi: Any) -> jax.Array:
    """x limited to [lo, hi], with torch.clamp's gradient: 1 inside the closed interval, 0 outside."""
    return jnp.where(x < lo, lo, jnp.where(x > hi, hi, x))


@partial(jax.custom_jvp, nondiff_argnums=(1, 2))
def _clamp_constant(x: jax.Array, lo: float, hi: float) -> jax.Array:
    """x limited to constant bounds [lo, hi]: one lax.clamp, with torch.clamp's gradient (1 on the closed
    interval, as `_clamp`; lax.clamp's own is 0 at the bounds)."""
    return jax.lax.clamp(jnp.asarray(lo, x.dtype), x, jnp.asarray(hi, x.dtype))


@_clamp_constant.defjvp
def _clamp_constant_jvp(lo: float, hi: float, primals: tuple[jax.Array], tangents: tuple[jax.Array]) -> tuple[
        jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    return _clamp_constant(x, lo, hi), jnp.where((x >= lo) & (x <= hi), dx, jnp.zeros_like(dx))


def _abs(x: Any) -> jax.Array:
    """|x| with torch's gradient at 0 (sign(0) = 0)."""
    return x * jnp.sign(x)


def _step(x: Any) -> jax.Array:
    x = jnp.asarray(x)
    return (x > 0).astype(x.dtype if jnp.issubdtype(x.dtype, jnp.floating) else float)


class JaxPrimitives(NumpyPrimitives):
    """circuitdsl/ir/primitives.py's table in jax.numpy, with JAX's top-k and gradient stop and einsum at full
    float32 precision; the composites (ir/composite.py) and the operations over named axes (ir/axes.py) are
    written over it."""

    def __init__(self) -> None:
        super().__init__(jnp)

    def topk(self, x: jax.Array, k: int) -> jax.Array:
        return jax.lax.top_k(x, k)[0]

    def stop_gradient(self, x: jax.Array) -> jax.Array:
        return jax.lax.stop_gradient(x)

    def matmul(self, a: jax.Array, b: jax.Array) -> jax.Array:
        """Full float32 products: XLA's default on a GPU is TF32 (11 significant bits), which put the whole
        worm's outputs 4e-4 off from the second step on an H200 (the torch module and the CPU agree to 1e-8)."""
        return jnp.matmul(a, b, precision=jax.lax.Precision.HIGHEST)


PRIMITIVES: Final = JaxPrimitives()


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "clamp": _clamp,
    "min": jnp.minimum,
    "max": jnp.maximum,
    "abs": _abs,
    "relu": jax.nn.relu,
    "detach": jax.lax.stop_gradient,
    "floor": jnp.floor,
    "exp": jnp.exp,
    "log": jnp.log,
    "tanh": jnp.tanh,
    "erf": jax.lax.erf,
    "sigmoid": jax.nn.sigmoid,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "step": _step,
    "sqrt": jnp.sqrt,
    "where": lambda c, a, b: jnp.where(jnp.asarray(c) > 0, a, b),
    **bind(PRIMITIVES),  # reduce_*, kwta, matvec, push
}


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _spike(x: jax.Array, surrogate: str, slope: float) -> jax.Array:
    """Heaviside forward (x > 0), the shared surrogate derivative backward."""
    return (x > 0).astype(x.dtype)


def _spike_forward(x: jax.Array, surrogate: str, slope: float) -> tuple[jax.Array, jax.Array]:
    return _spike(x, surrogate, slope), x


def _spike_backward(surrogate: str, slope: float, x: jax.Array, grad: jax.Array) -> tuple[jax.Array]:
    return (grad * surrogate_derivative(x, surrogate, slope, _FUNCTIONS),)


_spike.defvjp(_spike_forward, _spike_backward)


class JaxOps(ArrayModuleOps):
    """The array operations the shared step semantics needs, in jax.numpy (those written alike for numpy in
    circuitdsl/backends/array_ops.py), with gradients as torch's."""

    functions: Mapping[str, Callable[..., Any]] = _FUNCTIONS
    primitives = PRIMITIVES

    def __init__(self, dtype: str = "float32") -> None:
        super().__init__(jnp, dtype, np.int32)

    def scatter_add(self, n: int, index: jax.Array, values: jax.Array) -> jax.Array:
        return jax.ops.segment_sum(values.T, index, num_segments=n).T

    def add_at(self, x: jax.Array, index: jax.Array, values: jax.Array) -> jax.Array:
        return x.at[:, index].add(jnp.broadcast_to(values, (x.shape[0], index.shape[0])))

    def clamp_between(self, lo: float, hi: float) -> Callable[[jax.Array], jax.Array]:
        """clamp(x, lo, hi) for constant bounds."""
        return lambda x: _clamp_constant(jnp.asarray(x), lo, hi)

    def all_finite(self, x: jax.Array) -> bool | None:
        """Whether x holds no NaN or infinity; None inside a trace (no values to look at)."""
        return None if isinstance(x, jax.core.Tracer) else bool(jnp.isfinite(x).all())

    def spike(self, x: jax.Array, surrogate: str, slope: float) -> jax.Array:
        return _spike(x, surrogate, slope)

    def softplus(self, x: jax.Array) -> jax.Array:
        return jax.nn.softplus(x)

    def einsum(self, spec: str, *operands: jax.Array) -> jax.Array:
        return jnp.einsum(spec, *operands, precision=jax.lax.Precision.HIGHEST)

    def correlate(self, x: jax.Array, w: jax.Array) -> jax.Array:
        """Valid cross-correlation over the grid axes: x [batch, in, *grid], w [out, in, *taps]."""
        return jax.lax.conv_general_dilated(x, w, (1,) * (w.ndim - 2), "VALID",
                                            precision=jax.lax.Precision.HIGHEST)

    def complex(self, real: jax.Array, imag: jax.Array) -> jax.Array:
        return jax.lax.complex(real, imag)

    def csr(self, crow: jax.Array, rows: jax.Array, cols: jax.Array, values: jax.Array,
            shape: tuple[int, int]) -> tuple[jax.Array, jax.Array, jax.Array, int]:
        """A CSR matrix as its entries' rows (sorted), columns and values: a segment sum over rows multiplies."""
        return rows, cols, values, shape[0]

    def csr_matmul(self, matrix: tuple[jax.Array, jax.Array, jax.Array, int], x: jax.Array) -> jax.Array:
        rows, cols, values, m = matrix
        return jax.ops.segment_sum((x[:, cols] * values).T, rows, num_segments=m, indices_are_sorted=True).T


def _batch(inputs: Mapping[str, Any], state: Any) -> int:
    """The batch size: the inputs' first axis, else a packed state's, else 1 (no entry of the state sliced out:
    outside a trace each slice is an operation of its own)."""
    if inputs or state is None:
        return batch_of(inputs, None)
    if isinstance(state, PackedState) and len(getattr(state.buffer, "shape", ())) == 2:
        return int(state.buffer.shape[0])
    return batch_of(inputs, state)


def _usable(dtype: str) -> str:
    """`dtype` if JAX can run in it now: float64 needs JAX's 64-bit mode, which is off by default."""
    if dtype == "float64" and not jax.config.read("jax_enable_x64"):
        raise CircuitRuntimeError(f"dtype {dtype} needs JAX's 64-bit mode: call jax.config.update('jax_enable_x64', "
                                  "True) (or run inside `with jax.enable_x64(True):`) before compiling and running")
    return dtype


def _samplers(key: jax.Array, dtype: Any) -> tuple[Sampler, Sampler]:
    """Uniform and normal draws from `key` in `dtype`, as `sampled_values` takes them: (low/mean, high/std, shape)."""

    def uniform(low: float, high: float, shape: tuple[int, ...]) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, low, high)

    def normal(mean: float, std: float, shape: tuple[int, ...]) -> jax.Array:
        return mean + std * jax.random.normal(key, shape, dtype)

    return uniform, normal


class JaxCircuit:
    """A compiled circuit as pure functions: `init`, `initial_state`, `step`, `rollout`; batch-first.

    Inputs are a dict keyed by input port (a bare array when the circuit has one input), each
    `[batch, *port shape]` for a step and `[batch, time, *port shape]` for a rollout; outputs come back
    the same way.  Parameters are a dict keyed as the torch module's `params` (`osc`, `seg[2]/w`).
    """

    nonfinite = NonfinitePolicy()  # NaN / infinite inputs: "warn" (until set), "raise" or "ignore" (docs/engine.md)

    def __init__(self, ir: CircuitIR, seed: int = 0, lowering: str = "auto", dtype: str = "float32") -> None:
        self.ir = ir
        self.seed = seed
        self.lowering = lowering
        self.dtype = _usable(dtype_name(dtype))
        self.plan: Plan = make_plan(ir, lowering)
        self._layout = state_layout(self.plan)
        self._packing = StateLayout({key: size for key, (size, _) in self._layout.items()})
        self._programs: dict[str, Program] = {}
        self._jitted: dict[tuple[Any, ...], Callable[..., Any]] = {}
        self._program()

    def __getstate__(self) -> dict[str, Any]:
        """What a copy (`copy.deepcopy`, pickle) holds: the IR, plan and settings; its programs and jitted
        functions (closures over JAX arrays, not picklable) are built again for it."""
        return {**self.__dict__, "_programs": {}, "_jitted": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._program()

    def _program(self, dtype: str | None = None) -> Program:
        """The program for `dtype` (the compiled one by default), built once per dtype."""
        dtype = self.dtype if dtype is None else dtype
        if dtype not in self._programs:
            with jax.ensure_compile_time_eval():  # concrete arrays, also when first asked for inside a jit trace
                self._programs[dtype] = Program(self.plan, JaxOps(_usable(dtype)), self.lowering, choose, pick)
        return self._programs[dtype]

    def _params_dtype(self, params: Params | PreparedParams) -> str:
        """The dtype the parameters are in (the compiled one when the circuit has none), once they are checked:
        this circuit's keys and shapes, one float dtype; prepared ones: this circuit's."""
        if isinstance(params, PreparedParams):
            if params.circuit is not self:
                raise CircuitRuntimeError("these prepared parameters are another circuit's: prepare the parameters "
                                          "with this circuit's prepare(params)")
            return params.dtype
        checked_params(self.ir, params)
        kinds = {key: dtype_name(jnp.asarray(value).dtype) for key, value in params.items()}
        if len(set(kinds.values())) > 1:
            raise CircuitRuntimeError(f"parameters disagree on their dtype: {kinds}")
        return next(iter(kinds.values()), self.dtype)

    def init(self, key: jax.Array | None = None) -> Params:
        """The parameters.  Without a key: numpy's draws seeded by the compile `seed`, equal to the torch
        module's initial parameters.  With a PRNG key: other draws from the same init rules (jax.random),
        so `jax.vmap(circuit.init)(keys)` gives a stack of parameter sets."""
        if key is None:
            rng = np.random.default_rng(self.seed)
            return {param_key(p.name): jnp.asarray(initial_values(p, rng, self.dtype)) for p in self.ir.parameters}
        if not hasattr(key, "shape"):  # a seed (an int) given for a key
            raise CircuitRuntimeError(f"init takes a JAX PRNG key (jax.random.key(0)) or nothing, not {key!r}; a "
                                      f"seed is compile's: circuitdsl.compile(..., backend='jax', seed=N)")
        params = {}
        kind = jnp.dtype(self.dtype)
        for i, parameter in enumerate(self.ir.parameters):
            uniform, normal = _samplers(jax.random.fold_in(key, i), kind)
            params[param_key(parameter.name)] = sampled_values(parameter, uniform, normal, jnp, self.dtype)
        return params

    def prepare(self, params: Params) -> PreparedParams:
        """What the parameters alone decide (effective values, each fused group's operator), computed once: `step`
        and `rollout` take it in place of the parameters and give the same numbers without that work, for a caller
        that steps one call at a time with unchanged parameters (circuitdsl/backends/jax_prepared.py).  Prepare
        again after the parameters change.  One jitted call (a sparse operator's row count stays a number: it is
        static data of the result); inside the caller's `jit` or `grad` it is traced into theirs."""
        dtype = self._params_dtype(params)
        prepared: PreparedParams = self._compiled(self._prepared_params, dtype, dtype)(params)
        return prepared

    def _prepared_params(self, program: Program, dtype: str, params: Params) -> PreparedParams:
        return PreparedParams(self, dtype, self._prepare(program, params))

    def _prepare(self, program: Program, params: Params | PreparedParams) -> dict[str, Any]:
        """The program's prepared arrays for `params`; prepared ones as they are."""
        return params.arrays if isinstance(params, PreparedParams) else program.prepare(self._named(params))

    def initial_state(self, batch_size: int = 1, dtype: str | None = None) -> PackedState:
        """Neuron states at their initial values, last outputs at 0, delay lines empty, in `dtype` (the compiled
        one by default): one [batch, total] array read as a Mapping of [batch, units] entries
        (circuitdsl/backends/packed_state.py)."""
        values = {key: value for key, (_, value) in self._layout.items()}
        kind = jnp.dtype(_usable(dtype_name(self.dtype if dtype is None else dtype)))
        return PackedState.filled(self._packing, values, checked_count("batch_size", batch_size), kind)

    def step(self, params: Params | PreparedParams, state: Mapping[str, Any] | None = None,
             inputs: Mapping[str, Any] | Any | None = None,
             record: Sequence[str] | None = None) -> tuple[dict[str, jax.Array], PackedState]:
        """One time step: (outputs, new state); a missing state starts from `initial_state`, a dict is checked and
        packed.  Everything runs in the parameters' dtype: inputs and state of another float type are converted to
        it.  `record`: as in `rollout`, each [batch, *shape].  `params` may be `prepare(params)`."""
        dtype = self._params_dtype(params)
        program = self._program(dtype)
        flat = flat_inputs(self.ir, inputs, ("batch",), program.ops)
        check_finite(flat, self.nonfinite, program.ops)
        records = resolve(self.plan, record)
        packed = self._state(state, dtype, _batch(flat, state))
        return self._compiled(self._step, dtype, tuple(records))(params, flat, packed)

    def rollout(self, params: Params | PreparedParams, inputs: Mapping[str, Any] | Any | None = None,
                state: Mapping[str, Any] | None = None, steps: int | None = None,
                record: Sequence[str] | None = None) -> tuple[dict[str, jax.Array], PackedState]:
        """Run over time with `jax.lax.scan`: inputs [batch, time, *shape] (or `steps` for a circuit without
        inputs); outputs come back [batch, time, *shape], with the final state, and so does each name in `record`
        (`pop`, `pop.state`, `pop.let`; docs/engine.md), keyed by that name."""
        dtype = self._params_dtype(params)
        program = self._program(dtype)
        sequence = flat_inputs(self.ir, inputs, ("batch", "time"), program.ops)
        check_finite(sequence, self.nonfinite, program.ops)
        length = rollout_length(sequence, steps)
        records = resolve(self.plan, record)
        batch = _batch(sequence, state)
        packed = self._state(state, dtype, batch)
        if length == 0:
            return empty_outputs(self.ir, records, batch, program.ops), packed
        return self._compiled(self._rollout, dtype, tuple(records), length)(params, sequence, packed)

    def _compiled(self, run: Callable[..., Any], dtype: str, *static: Any) -> Callable[..., Any]:
        """`run` for a dtype and static arguments, jitted once: the arguments were checked outside, so an eager
        call runs one compiled program (a rollout's scan is not traced and compiled again on every call), and a
        call inside the user's own jit, grad or vmap is traced into theirs."""
        key = (run.__name__, dtype, *static)
        if key not in self._jitted:
            self._jitted[key] = jax.jit(partial(run, self._program(dtype), *static))
        return self._jitted[key]

    def _step(self, program: Program, records: tuple[Record, ...], params: Params | PreparedParams,
              flat: dict[str, jax.Array], state: PackedState) -> tuple[dict[str, jax.Array], PackedState]:
        """One step on checked arguments: the entries read as slices of the buffer, the new state packed by one
        concatenation, and the outputs read from it (`_settle`)."""
        batch = _batch(flat, state)
        settle = partial(self._settle, batch, state.buffer.dtype, bool(self.ir.outputs or records))
        outputs, new_state = program.step(self._prepare(program, params), flat, state, batch, records, settle)
        return shaped_outputs(self.ir, outputs), new_state

    def _settle(self, batch: int, dtype: Any, read: bool, entries: State) -> PackedState:
        """A step's new state packed, behind an optimization barrier when outputs or records `read` the
        populations' outputs from it.  XLA would otherwise see through the slices to the values and compute them
        for the outputs and for the state apart: each population once per loop, and a value it counts as expensive
        (a clock's `%`, a gather) in a loop of its own for both to read.  So the whole step is one fused loop
        writing the state, and the outputs one small loop reading it (NCAP: 2, the hand-written step's count, from
        9).  With nothing to read back, no barrier: it would only keep XLA from leaving out the entries a caller
        does not use (a fly-scale graph's step read for its output alone)."""
        packed = PackedState.pack(self._packing, entries, batch, dtype)
        return PackedState(self._packing, jax.lax.optimization_barrier(packed.buffer)) if read else packed

    def _rollout(self, program: Program, records: tuple[Record, ...], length: int, params: Params | PreparedParams,
                 sequence: dict[str, jax.Array], state: PackedState) -> tuple[dict[str, jax.Array], PackedState]:
        """A rollout of `length` >= 1 steps on checked arguments."""
        batch = _batch(sequence, state)
        prepared = self._prepare(program, params)  # once, outside the scan

        def one_step(carry: State, x: dict[str, jax.Array]) -> tuple[State, dict[str, jax.Array]]:
            outputs, new_state = program.step(prepared, x, carry, batch, records)
            return dict(new_state), outputs

        # the scan carries the state (what a step reads) as separate arrays: inside one compiled program they cost
        # nothing per array; the last step runs after it and its state is packed.  (Scanning all the steps instead
        # measured slower: NCAP's 1000-step rollout 1.23-1.26x the hand-written scan against 1.18-1.21x.)
        time_major = {k: jnp.swapaxes(v, 0, 1) for k, v in sequence.items()}
        carry, outputs = jax.lax.scan(one_step, {key: state[key] for key in self._layout},
                                      {k: v[:-1] for k, v in time_major.items()}, length=length - 1)
        last, final = program.step(prepared, {k: v[-1] for k, v in time_major.items()}, carry, batch, records)
        outputs = {k: jnp.concatenate([v, last[k][None]], 0) for k, v in outputs.items()}
        return (shaped_outputs(self.ir, {k: jnp.swapaxes(v, 0, 1) for k, v in outputs.items()}),
                PackedState.pack(self._packing, final, batch, state.buffer.dtype))

    def _state(self, state: Mapping[str, Any] | None, dtype: str, batch: int) -> PackedState:
        """The given state packed, in the program's dtype (a scan carries one dtype), or the initial state.  A
        packed state of this layout and shape passes as it is (converted if of another float type); anything else
        is checked entry by entry as a Mapping (errors name the entry) and packed."""
        if state is None:
            return self.initial_state(batch, dtype)
        ops = self._program(dtype).ops
        if (isinstance(state, PackedState) and state.layout == self._packing
                and tuple(getattr(state.buffer, "shape", ())) == (batch, self._packing.total)):
            return PackedState(self._packing, as_float_array("state", state.buffer, ops))
        return PackedState.pack(self._packing, checked_state(self._layout, state, batch, ops), batch, dtype)

    def at_resolution(self, **sizes: int) -> JaxCircuit:
        """This circuit with grid axes at other sizes (`x = 512`); it takes the same parameters (an operator
        layer's do not depend on its grid)."""
        return JaxCircuit(self.ir.at_resolution(**sizes), self.seed, self.lowering, self.dtype)

    def rezero_weights(self, params: Params) -> Params:
        """The parameters with every masked weight (a projection's `sparsity`) set back to zero: apply after
        each optimiser update, as the torch module's `keep_masks` hook does."""
        masks = {param_key(p.name): p.mask.data.reshape(p.shape) for p in self.ir.parameters if p.mask is not None}
        return {k: v * jnp.asarray(masks[k], v.dtype) if k in masks else v for k, v in params.items()}

    def _named(self, params: Params) -> dict[str, jax.Array]:
        """Parameters by IR name, the fixed ones cut from the gradient."""
        named = {p.name: params[param_key(p.name)] for p in self.ir.parameters}
        return {p.name: named[p.name] if p.trainable else jax.lax.stop_gradient(named[p.name])
                for p in self.ir.parameters}

    def to_torch(self, params: Params) -> dict[str, Any]:
        """The parameters as a torch `state_dict` for the same circuit's `CircuitModule` (`load_state_dict`)."""
        import torch

        return {f"params.{k}": torch.from_numpy(np.array(v)) for k, v in params.items()}

    def from_torch(self, state_dict: Mapping[str, Any]) -> Params:
        """Parameters from a `CircuitModule`'s `state_dict()`, exactly."""
        params = {key.removeprefix("params."): value for key, value in state_dict.items()
                  if isinstance(key, str) and key.startswith("params.")}
        if len(params) != len(state_dict):
            raise CircuitRuntimeError(f"state_dict keys {sorted(map(str, state_dict))} are not this circuit's "
                                      f"(params.<key>)")
        checked_params(self.ir, params, "state_dict keys")
        return {key: jnp.asarray(value.detach().cpu().numpy()) for key, value in params.items()}
