"""What every backend provides and shares: the table of array operations the engine is written against,
spikes' surrogate gradients, and the initial state.

Arrays are batch-first and flat per population: an output is [batch, units].  Everything is functional (no
in-place writes), so the same program runs under torch autograd and under jax.jit.  The step itself is
circuitdsl/backends/program.py, compiled once from the plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from circuitdsl.backends.plan import Plan, read_later
from circuitdsl.ir.expr import evaluate
from circuitdsl.ir.model import Ref, Var
from circuitdsl.ir.primitives import Primitives

Array = Any
State = dict[str, Array]
Pick = Callable[[np.ndarray, "Ops"], Callable[[Array], Array] | None]
"""A backend's read of a vector at indices fixed at compile time that is cheaper than a gather (JAX: a few
slices and broadcasts, circuitdsl/backends/jax_lowering.py `pick`): given the indices (any shape), a function of
the vector giving its elements there, shaped as the indices; or None where it has nothing better."""


class Ops(Protocol):
    """What a backend provides: array creation, indexing, and the element-wise functions by name."""

    functions: Mapping[str, Callable[..., Array]]
    fuses: bool  # element-wise work runs as one compiled loop (torch.compile, XLA), not one kernel call per op
    accelerator: bool  # a device other than the host's CPU: each operation a kernel launch, memory plenty and fast

    @property
    def primitives(self) -> Primitives: ...  # numpy-named array functions (ir/primitives.py)

    def asarray(self, values: np.ndarray) -> Array: ...
    def zeros(self, batch: int, n: int) -> Array: ...
    def full(self, batch: int, n: int, value: float) -> Array: ...
    def take(self, x: Array, index: Array) -> Array: ...  # x[:, index]
    def scatter_add(self, n: int, index: Array, values: Array) -> Array: ...  # zeros(B, n) with values added
    def add_at(self, x: Array, index: Array, values: Array) -> Array: ...  # x with values added at [:, index]
    def to_float(self, x: Array) -> Array: ...
    def spike(self, x: Array, surrogate: str, slope: float) -> Array: ...  # x > 0, surrogate_derivative back
    def softplus(self, x: Array) -> Array: ...
    def stack_time(self, history: Array, latest: Array) -> Array: ...  # drop the oldest step, append latest
    # fields (circuitdsl/backends/operators.py): the grid is the trailing axes
    def einsum(self, spec: str, *operands: Array) -> Array: ...
    def stack(self, xs: list[Array], axis: int) -> Array: ...
    def unstack(self, x: Array, axis: int) -> list[Array] | tuple[Array, ...]: ...  # x's slices along axis
    def concat(self, xs: list[Array], axis: int) -> Array: ...
    def pad(self, x: Array, widths: list[tuple[int, int]]) -> Array: ...  # zeros (before, after) the last axes
    def rfftn(self, x: Array, axes: int) -> Array: ...  # over the last `axes` axes; norm 'forward': means
    def irfftn(self, x: Array, sizes: list[int]) -> Array: ...  # norm 'forward'; the last axis zero-padded
    def complex(self, real: Array, imag: Array) -> Array: ...
    def correlate(self, x: Array, w: Array) -> Array: ...  # valid: x [batch, in, *grid], w [out, in, *taps]
    # the engine (circuitdsl/backends/program.py)
    def broadcast(self, x: Array | float, shape: tuple[int, ...]) -> Array: ...  # x broadcast against shape
    def clamp_between(self, lo: float, hi: float) -> Callable[[Array], Array]: ...  # clamp with constant bounds
    def all_finite(self, x: Array) -> bool | None: ...  # None where values are not concrete (a trace)
    def csr(self, crow: Array, rows: Array, cols: Array, values: Array, shape: tuple[int, int]) -> Any: ...
    def csr_matmul(self, matrix: Any, x: Array) -> Array: ...  # x [batch, n] by a csr [m, n]: [batch, m]


Fixed = Any
"""Indices fixed at compile time as a backend reads a vector there (`fixed`, `read_at`): an index array (or int),
or the function its `pick` gave."""


def fixed(index: np.ndarray, ops: Ops, pick: Pick | None = None) -> Fixed:
    """`index` as the backend reads at it: the function its `pick` gives where it has one, else the index array
    (read as `x[index]`, the plain gather)."""
    picked = None if pick is None else pick(index, ops)
    return ops.asarray(index) if picked is None else picked


def read_at(x: Array, at: Fixed) -> Array:
    """x read at fixed indices (`fixed`)."""
    return at(x) if callable(at) else x[at]


# ---- spikes --------------------------------------------------------------------------------------


def surrogate_derivative(x: Array, surrogate: str, slope: float, functions: Mapping[str, Callable[..., Array]]) -> Array:
    """d spike / dx that the backward pass uses in place of the Heaviside's: snnTorch's formulas, for every backend."""
    if surrogate == "atan":
        return slope / 2 / (1 + (math.pi / 2 * slope * x) ** 2)
    if surrogate == "fast_sigmoid":
        return 1 / (slope * functions["abs"](x) + 1) ** 2
    if surrogate == "sigmoid":
        s = functions["sigmoid"](slope * x)
        return slope * s * (1 - s)
    return 1.0 + 0.0 * functions["step"](x)  # straight_through: ones shaped like x


def surrogate_slope(args: Mapping[str, float]) -> float:
    """The one argument of a spike's surrogate (alpha or slope; straight_through has none)."""
    return next(iter(args.values()), 1.0)


# ---- state ---------------------------------------------------------------------------------------


def _no_lookup(name: Var | Ref) -> Array:
    raise ValueError(f"an initial value cannot read {name!r}")


def state_layout(plan: Plan) -> dict[str, tuple[int, float]]:
    """Every state entry's key with its flat size per sample and initial value: what the next step reads, and
    nothing else.  Neuron states, the last outputs read a step later (0; `read_later`), delay lines (0)."""
    layout: dict[str, tuple[int, float]] = {}
    later = read_later(plan)
    for population in plan.populations.values():
        for variable in population.model.states:
            size = population.size * math.prod([a.size for a in variable.shape])
            layout[f"{population.name}.{variable.name}"] = (size, float(evaluate(variable.init, _no_lookup)))
        if population.name in later:
            out_size = math.prod([a.size for a in population.model.output_shape])
            layout[f"{population.name}:out"] = (population.size * out_size, 0.0)
    for projection in plan.projections:
        if projection.delay:
            layout[f"{projection.id}:delay"] = (projection.delay * projection.source_size, 0.0)
    return layout


def initial_state(layout: Mapping[str, tuple[int, float]], batch: int, ops: Ops) -> State:
    """Neuron states at their initial values, last outputs at 0, delay lines empty: from the plan's `state_layout`,
    worked out once per compile (its initial values are expressions evaluated in numpy, which torch.compile would
    stop its graph at)."""
    return {key: ops.full(batch, size, value) for key, (size, value) in layout.items()}


def as_batch(value: Array, batch: int, n: int, ops: Ops) -> Array:
    """A signal as [batch, n]: constants and single units broadcast."""
    if isinstance(value, float):
        return ops.full(batch, n, value)
    if len(value.shape) == 2 and value.shape[1] == n and value.shape[0] == batch:
        return value
    return ops.broadcast(value, (batch, n))
