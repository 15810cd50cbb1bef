"""The PyTorch backend: the shared step semantics over torch ops, as a trainable `nn.Module`.

Parameters are registered under the IR's qualified names with '.' written as '/' (torch reserves '.'),
so `state_dict()` keys read `params.osc`, `params.seg[2]/w`, `params.x -> h/weight`.
"""

from __future__ import annotations

import math
import operator
import types
import warnings
import weakref
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from functools import partial
from typing import Any, Final

import numpy as np
import torch
from torch import nn

from circuitdsl.backends.fusion import accelerator_choice
from circuitdsl.backends.interface import (
    NonfinitePolicy,
    batch_of,
    check_finite,
    checked_count,
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
from circuitdsl.backends.step import State, initial_state, state_layout, surrogate_derivative
from circuitdsl.ir.composite import bind
from circuitdsl.ir.model import CircuitIR
from circuitdsl.ir.params import initial_values


class _Spike(torch.autograd.Function):
    """Heaviside forward (x > 0), the shared surrogate derivative backward."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, surrogate: str, slope: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.slope = surrogate, slope
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        return grad * surrogate_derivative(x, ctx.surrogate, ctx.slope, _FUNCTIONS), None, None


def _tensor(x: Any) -> torch.Tensor:
    """A constant as a 0-d float64 tensor: exact, and (0-d) it takes the dtype of the arrays it meets."""
    return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float64)


def _bound(value: Any) -> Any:
    """A clamp bound for torch: an infinite float means no bound."""
    return None if isinstance(value, float) and math.isinf(value) else value


def _clamp(x: Any, lo: Any, hi: Any) -> Any:
    if not any(isinstance(v, torch.Tensor) for v in (x, lo, hi)):
        return min(max(float(x), float(lo)), float(hi))
    return torch.clamp(_tensor(x), _bound(lo), _bound(hi))


def _pair(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any, Any], Any]:
    return lambda a, b: fn(_tensor(a), _tensor(b))


class TorchPrimitives:
    """circuitdsl/ir/primitives.py's table in torch: the composites (ir/composite.py) and the operations over
    named axes (ir/axes.py) are written over it."""

    def asarray(self, x: Any) -> torch.Tensor:
        return x if isinstance(x, torch.Tensor) else torch.as_tensor(x)

    def reshape(self, x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
        return x.reshape(shape)

    def transpose(self, x: torch.Tensor, axes: tuple[int, ...]) -> torch.Tensor:
        return x.permute(axes)

    def sum(self, x: torch.Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> torch.Tensor:
        return torch.sum(x, dim=axis, keepdim=keepdims)

    def mean(self, x: torch.Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> torch.Tensor:
        return torch.mean(x, dim=axis, keepdim=keepdims)

    def max(self, x: torch.Tensor, axis: int | tuple[int, ...], keepdims: bool = False) -> torch.Tensor:
        return torch.amax(x, dim=axis, keepdim=keepdims)

    def argmax(self, x: torch.Tensor, axis: int) -> torch.Tensor:
        return x.argmax(axis)

    def abs(self, x: torch.Tensor) -> torch.Tensor:
        return x.abs()

    def exp(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(x)

    def sqrt(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(x)

    # torch's own C function (no Python frame per product); full float32 precision unless the user turned on
    # TF32 (torch.backends.cuda.matmul.allow_tf32)
    matmul = staticmethod(torch.matmul)
    # rows by a [out, in] matrix plus a bias as one addmm (a product, a transpose and an addition were three calls)
    linear = staticmethod(torch.nn.functional.linear)

    def layer_norm(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor | None,
                   eps: float) -> torch.Tensor:
        return torch.nn.functional.layer_norm(x, x.shape[-1:], scale, shift, eps)  # one fused kernel

    def where(self, condition: np.ndarray | torch.Tensor, x: torch.Tensor, y: float) -> torch.Tensor:
        return torch.where(torch.as_tensor(condition, device=x.device), x, y)  # (a tensor there: itself)

    def take_along_axis(self, x: torch.Tensor, indices: torch.Tensor, axis: int) -> torch.Tensor:
        return x.gather(axis, indices)

    def concatenate(self, xs: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(list(xs), axis)

    def astype(self, x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        return x.to(dtype)

    def topk(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return x.topk(k, dim=-1).values

    def stop_gradient(self, x: torch.Tensor) -> torch.Tensor:
        return x.detach()


PRIMITIVES: Final = TorchPrimitives()


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "clamp": _clamp,
    "min": _pair(torch.minimum),
    "max": _pair(torch.maximum),
    "abs": lambda x: torch.abs(_tensor(x)),
    "relu": lambda x: torch.relu(_tensor(x)),
    "detach": lambda x: x.detach() if isinstance(x, torch.Tensor) else x,
    "floor": lambda x: torch.floor(_tensor(x)),
    "exp": lambda x: torch.exp(_tensor(x)),
    "log": lambda x: torch.log(_tensor(x)),
    "tanh": lambda x: torch.tanh(_tensor(x)),
    "erf": lambda x: torch.erf(_tensor(x)),
    "sigmoid": lambda x: torch.sigmoid(_tensor(x)),
    "sin": lambda x: torch.sin(_tensor(x)),
    "cos": lambda x: torch.cos(_tensor(x)),
    "step": lambda x: (_tensor(x) > 0).to(_tensor(x).dtype),
    "sqrt": lambda x: torch.sqrt(_tensor(x)),
    "where": lambda c, a, b: torch.where(_tensor(c) > 0, _tensor(a), _tensor(b)),
    **bind(PRIMITIVES),  # reduce_*, kwta, matvec, push
}


class TorchOps:
    """The array operations the shared step semantics needs, in torch."""

    functions: Mapping[str, Callable[..., Any]] = _FUNCTIONS
    primitives = PRIMITIVES
    fuses = False  # eager: each operation is a kernel call of its own

    def __init__(self, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> None:
        self.device = device
        self.dtype = dtype
        self.accelerator = device is not None and device.type != "cpu"
        self.meta = device is not None and device.type == "meta"  # shapes without values (torch's shape inference)
        # a comparison's boolean tensor (on the operands' device) as 0/1 in the ops' dtype: x.to(dtype), with no
        # Python frame per call (closures.py; to_float also takes numbers and arrays, and moves devices)
        self.truth = partial(torch.Tensor.to, dtype=dtype)

    def asarray(self, values: np.ndarray) -> torch.Tensor:
        """Index arrays as they are (int64), float constants in the ops' dtype."""
        return torch.as_tensor(values, device=self.device, dtype=self.dtype if values.dtype.kind == "f" else None)

    def zeros(self, batch: int, n: int) -> torch.Tensor:
        return torch.zeros(batch, n, device=self.device, dtype=self.dtype)

    def full(self, batch: int, n: int, value: float) -> torch.Tensor:
        return torch.full((batch, n), value, device=self.device, dtype=self.dtype)

    def take(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, index)

    def scatter_add(self, n: int, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(values.shape[0], n, dtype=values.dtype, device=values.device)
        return out.index_add(1, index, values)

    def add_at(self, x: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return x.index_add(1, index, values.expand(x.shape[0], index.shape[0]))

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            x = torch.as_tensor(np.asarray(x))
        if x.dtype == self.dtype and (self.device is None or x.device == self.device):
            return x
        return x.to(device=self.device, dtype=self.dtype)

    def clamp_between(self, lo: float, hi: float) -> Callable[[torch.Tensor], torch.Tensor]:
        """clamp(x, lo, hi) for constant bounds.  One bound: bound once as a 0-d tensor (a Python number is
        wrapped into a tensor on every call).  Two: as Python numbers, which clamp takes without wrapping (with
        two 0-d tensor bounds it runs a three-operand kernel that costs 2-3 times as much at batch 256)."""
        if math.isinf(lo) and math.isinf(hi):
            return partial(torch.clamp, min=None, max=None)  # no bounds: still a copy, as torch.clamp makes
        if math.isinf(hi):
            return partial(torch.clamp_min, min=self.constant(lo))
        if math.isinf(lo):
            return partial(torch.clamp_max, max=self.constant(hi))
        return lambda x: x.clamp(lo, hi)

    def fits(self, x: Any) -> bool:
        """Whether x is a tensor in the ops' dtype and on their device."""
        return isinstance(x, torch.Tensor) and x.dtype == self.dtype and x.device == self.device

    def constant(self, value: float) -> torch.Tensor:
        """A constant operand as a 0-d tensor in the ops' dtype and on their device: the same result as the
        Python number (a 0-d operand takes the other's dtype), without wrapping the number on every call."""
        return torch.tensor(value, dtype=self.dtype, device=self.device)

    def all_finite(self, x: torch.Tensor) -> bool | None:
        """Whether x holds no NaN or infinity; None while torch.compile traces (no values to look at).  A finite
        sum proves it in one reduction; only a sum that is not (NaN, infinity, or an overflow) looks closer."""
        if torch.compiler.is_compiling() or self.meta:
            return None
        x = x.detach() if x.requires_grad else x
        return math.isfinite(x.sum()) or bool(torch.isfinite(x).all())

    def spike(self, x: torch.Tensor, surrogate: str, slope: float) -> torch.Tensor:
        return _Spike.apply(x, surrogate, slope)

    def softplus(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(x)

    def stack_time(self, history: torch.Tensor, latest: torch.Tensor) -> torch.Tensor:
        return torch.cat([history[:, latest.shape[1]:], latest], dim=1)

    def einsum(self, spec: str, *operands: torch.Tensor) -> torch.Tensor:
        return torch.einsum(spec, *operands)

    def correlate(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """Valid cross-correlation over the grid axes: x [batch, in, *grid], w [out, in, *taps]."""
        return (torch.nn.functional.conv1d if w.dim() == 3 else torch.nn.functional.conv2d)(x, w)

    # (x, axis) -> x's slices along axis, and (xs, axis) -> xs stacked: torch's own C functions, which run in no
    # Python frame, so that the rollout's time loop, not traced under torch.compile (`time_loop`), does not get
    # them compiled as graphs of their own (a graph returning every step's input as a view of the sequence, each
    # regenerated by torch on every call: the compiled NCAP rollout took 348 ms for 1000 steps, 8.5x eager)
    unstack = staticmethod(torch.Tensor.unbind)
    stack = staticmethod(torch.stack)

    def concat(self, xs: list[torch.Tensor], axis: int) -> torch.Tensor:
        return torch.cat(xs, dim=axis)

    def pad(self, x: torch.Tensor, widths: list[tuple[int, int]]) -> torch.Tensor:
        return torch.nn.functional.pad(x, [w for pair in reversed(widths) for w in pair])

    def rfftn(self, x: torch.Tensor, axes: int) -> torch.Tensor:
        return torch.fft.rfftn(x, dim=tuple(range(-axes, 0)), norm="forward")

    def irfftn(self, x: torch.Tensor, sizes: list[int]) -> torch.Tensor:
        return torch.fft.irfftn(x, s=sizes, dim=tuple(range(-len(sizes), 0)), norm="forward")

    def complex(self, real: torch.Tensor, imag: torch.Tensor) -> torch.Tensor:
        return torch.complex(real, imag)

    def broadcast(self, x: torch.Tensor | float, shape: tuple[int, ...]) -> torch.Tensor:
        if type(x) is torch.Tensor and x.shape == shape and x.dtype == self.dtype:
            return x  # the common case first: already in shape
        if not isinstance(x, torch.Tensor):
            return torch.full(shape, float(x), dtype=self.dtype, device=self.device)
        x = x if x.dtype == self.dtype else x.to(self.dtype)
        return x if x.shape == shape else x.expand(torch.broadcast_shapes(x.shape, shape))

    def csr(self, crow: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
            shape: tuple[int, int]) -> torch.Tensor:
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product and its gradient are tested
            warnings.simplefilter("ignore", UserWarning)
            return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)

    def csr_matmul(self, matrix: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (matrix @ x.T).T


class TracedOps(TorchOps):
    """The ops of the program torch.compile traces: a constant operand is bound as a Python number, which inductor
    writes into its kernel.  Bound as a 0-d tensor (cheaper in eager calls, TorchOps.constant), each constant is
    one more input of the compiled graph, which dynamo guards, fetches from its closure and checks on every call
    (NCAP: 7 of the graph's 17 inputs).  Inductor fuses the step's element-wise work into one kernel (`fuses`)."""

    fuses = True
    padded_pieces: Final = 8
    """The most pieces `concat` joins as a sum of padded pieces (inductor's own limit for a fused `cat` on a GPU,
    `max_pointwise_cat_inputs`).  Read from the ops, not a module global: dynamo guards a global on every call
    (`guard_filter` leaves out guards on what the program holds)."""
    padded_elements: Final = 640
    """On a CPU, the most elements (batch x joined width) `concat` joins as a sum of padded pieces.  Inductor's CPU
    kernel runs that sum row by row, a vector per row with the lanes past a narrow row masked (NCAP's 5 units: 16
    lanes), which grows with the batch faster than the buffer and views of a `cat` cost.  NCAP's compiled step, one
    thread, guards not checked: padded 20.0 / 22.1 / 24.0 / 27.5 / 30.0 us at batch 1 / 64 / 128 / 192 / 256, by
    `cat` 25.5 / 24.9 / 24.3 / 27.1 / 27.9 us."""

    def constant(self, value: float) -> Any:
        return float(value)

    def concat(self, xs: list[torch.Tensor], axis: int) -> torch.Tensor:
        """Pieces joined along their last axis as a sum of zero-padded pieces: element-wise work that inductor
        fuses into the step's kernel, where on a CPU it runs `cat` as a buffer of its own and a view per piece,
        created in Python on every call (NCAP: 3 buffers and 9 views, the compiled graph 21 us against 14 us).
        Equal values (a -0 becomes +0).  Each element sums every piece's padding, so many pieces join by `cat`, and
        so do many rows on a CPU (`padded_elements`)."""
        if not 2 <= len(xs) <= self.padded_pieces or axis % xs[0].dim() != xs[0].dim() - 1:
            return torch.cat(xs, dim=axis)
        total = 0
        for x in xs:
            total += x.shape[-1]
        if not self.accelerator and math.prod(xs[0].shape[:-1]) * total > self.padded_elements:
            return torch.cat(xs, dim=axis)
        start, out = 0, None
        for x in xs:  # (constant_pad_nd: F.pad's Python, traced by dynamo, cost NCAP 21 more guards)
            padded = torch.constant_pad_nd(x, (start, total - start - x.shape[-1]))
            out = padded if out is None else out + padded
            start += x.shape[-1]
        assert out is not None
        return out

    def csr(self, crow: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, values: torch.Tensor,
            shape: tuple[int, int]) -> Any:
        """A sparse product's rows, columns and values as they are: dynamo traces no sparse tensor (it stopped
        the whole worm's graph at the CSR matrix), and inductor compiles a gather and a scatter-add into loops."""
        return rows, cols, values, shape[0]

    def csr_matmul(self, matrix: Any, x: torch.Tensor) -> torch.Tensor:
        """x [batch, n] by the matrix `csr` made: [batch, m]."""
        rows, cols, values, m = matrix
        return x.new_zeros(x.shape[0], m).index_add(1, rows, x[:, cols] * values)


_FIXED: Final = ("self._keys", "self._names", "self._ports", "self._sizes", "self._flat_outputs")
"""What a module's call reads that its constructor fixed and nothing changes after (keys, ports, state sizes)."""

_CODE: Final = frozenset({"CLOSURE_MATCH", "FUNCTION_MATCH", "BUILTIN_MATCH", "MODULE_MATCH", "CLASS_MATCH",
                          "ID_MATCH"})
"""Dynamo's guards on an object's identity: read through the globals (`G[...]`), the functions, builtins, modules
and classes a step's code calls."""


def _code_read(entry: Any) -> bool:
    """Whether a guard is on the code a step runs: a function, builtin, module or class read through the globals,
    or a constant of circuitdsl's own modules (`math.inf` as the parameters' module reads it)."""
    name = entry.name
    if entry.guard_type == "DUPLICATE_INPUT":  # two modules' `math` globals being one module: a Python guard
        return name.startswith("G[") and entry.has_value and isinstance(entry.value, types.ModuleType)
    return name.startswith("G[") and (entry.guard_type in _CODE or name.startswith("G['__import_circuitdsl"))


def guard_filter(entries: Sequence[Any]) -> list[bool]:
    """torch.compile's `guard_filter_fn` for a CircuitModule (`module.compile()` passes it; for a rollout,
    `torch.compile(module.rollout, options=module.compile_options())`): which of dynamo's guards on
    one compiled frame to keep.  It leaves out those on what the module fixes when it is built: the lowered program
    that torch.compile traces (`_traced`, one per dtype and device, built once and never changed; which one a call
    takes is decided by the module's dtype and device, whose guard stays), reached from the module or, in the
    frame of the program's own step that a compiled rollout calls each time step, as that frame's `self`; and the
    tuples of keys and sizes a call reads; and the code a step runs (`_code_read`: the identity of each function,
    builtin, module and class read through the globals, and circuitdsl's module constants), which a program does
    not swap at run time (replacing one of them after compiling, e.g. by monkeypatching, needs
    `torch._dynamo.reset()`).  Every other guard stays: the inputs and state (dtype, shape, device), the
    parameters, the module's dtype and device, grad mode, `nonfinite`.  Dynamo guards each Python object a traced
    function reads, so the program's closures, their cells and the constants in them were 322 of the NCAP step's
    424 leaf guards, checked before every call: 1.6-1.7x the hand-written compiled step at batch 1 with them, 1.2x
    without (docs/engine.md, "Under torch.compile"); the code's were 40 of the 81 left, about 1.5 us a call."""
    program = any(entry.name == "self" and entry.has_value and isinstance(entry.value, Program) for entry in entries)
    # (the NCAP rollout's step frame: 240 leaf guards, 69 without those on its program and code)
    return [not (entry.name.startswith(_FIXED) or "self._traced[" in entry.name or _code_read(entry)
                 or (program and (entry.name == "self" or entry.name.startswith("self."))))
            for entry in entries]


class ParameterTable(nn.Module):
    """The circuit's parameters by key, read like a dict (`params["osc"]`, `.items()`); in `state_dict` as
    `params.<key>`.  Unlike `nn.ParameterDict`, any key works, also one that names a method of a module or a
    dict (`pop`, `train`, `to`, `update`, `forward`): keys live only in the module's parameter table, never as
    attributes."""

    def __init__(self, parameters: Mapping[str, nn.Parameter]) -> None:
        super().__init__()
        self._parameters.update(parameters)  # past register_parameter, whose check refuses attribute names

    def __getitem__(self, key: str) -> nn.Parameter:
        return self._parameters[key]  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def __iter__(self) -> Iterator[str]:
        return iter(self._parameters)

    def __len__(self) -> int:
        return len(self._parameters)

    def keys(self) -> KeysView[str]:
        return self._parameters.keys()

    def values(self) -> ValuesView[nn.Parameter]:
        return self._parameters.values()  # type: ignore[return-value]

    def items(self) -> ItemsView[str, nn.Parameter]:
        return self._parameters.items()  # type: ignore[return-value]


def program_for(plan: Plan, ops: TorchOps, lowering: str) -> Program:
    """The plan lowered with `ops`: off the CPU, sparse groups up to ACCELERATOR_DENSE_CELLS run dense."""
    return Program(plan, ops, lowering, accelerator_choice if ops.accelerator else None)


LIVE_MODULES: weakref.WeakValueDictionary[int, CircuitModule] = weakref.WeakValueDictionary()
"""Every module alive, by `id`: how torch.compile's `traced_key` (torch_traced.py), which takes only plain
constants, reaches the module it builds a program for."""


class CircuitModule(nn.Module):
    """A compiled circuit: `forward(inputs, state)` advances one time step, batch-first.

    `inputs` is a dict keyed by input port (a bare tensor when the circuit has one input); each is
    `[batch, *port shape]`.  Outputs come back the same way; the state is a dict of tensors.
    """

    _where: torch.Tensor  # an empty buffer: the module's device and dtype

    nonfinite = NonfinitePolicy()  # NaN / infinite inputs: "warn" (until set), "raise" or "ignore" (docs/engine.md)

    def __init__(self, ir: CircuitIR, seed: int = 0, lowering: str = "auto", dtype: str = "float32") -> None:
        super().__init__()
        self.ir = ir
        self.lowering = lowering
        self.plan: Plan = make_plan(ir, lowering)
        self._layout = state_layout(self.plan)
        rng = np.random.default_rng(seed)
        self.params = ParameterTable({
            param_key(p.name): nn.Parameter(torch.from_numpy(initial_values(p, rng, dtype_name(dtype))),
                                            requires_grad=p.trainable)
            for p in ir.parameters})
        self._masks = {param_key(p.name): torch.tensor(p.mask.data.reshape(p.shape), dtype=torch.float32)
                       for p in ir.parameters if p.mask is not None}  # not buffers: state_dict keeps only params
        # an empty tensor that `.to(dtype / device)`, `.double()` move with the parameters (also when there are
        # none): the module runs in its dtype, on its device; not in state_dict
        self.register_buffer("_where", torch.zeros(0, dtype=getattr(torch, dtype_name(dtype))), persistent=False)
        # built here, not on first use, so that torch.compile traces only the step itself
        self._programs: dict[str, tuple[Program, TorchOps]] = {}  # by device and dtype, as a plain string
        self._last: tuple[Program, TorchOps] | None = None  # (torch.compile's guards); and the last call's
        self._program()
        # what each call reads, worked out once: parameter keys and names, ports, state sizes, output shapes
        # (tuples of plain values: under torch.compile, dynamo guards each such attribute of a module as one
        # constant, a list item by item)
        self._keys = tuple(param_key(p.name) for p in ir.parameters)
        self._names = tuple(p.name for p in ir.parameters)
        self._ports = tuple((p.name, torch.Size([a.size for a in p.shape]), math.prod(a.size for a in p.shape))
                            for p in ir.inputs)
        self._sizes = tuple((key, size) for key, (size, _) in self._layout.items())
        self._traced: dict[str, tuple[Program, TorchOps]] = {}  # torch.compile's programs (torch_traced.traced_key)
        self._flat_outputs = all(len(o.shape) == 1 for o in ir.outputs)
        # the last call's program, parameters, inference mode, copies of their values and prepared work: _prepare
        self._prepared: tuple[Program, list[Any], bool, list[torch.Tensor], dict[str, Any]] | None = None
        LIVE_MODULES[id(self)] = self

    def __getstate__(self) -> dict[str, Any]:
        """What a copy (`copy.deepcopy`, pickle, `torch.save(module)`) holds: the IR, plan, parameters and
        settings; its programs (closures, not picklable) are lowered again for it.  (nn.Module's own leaves out
        what `module.compile()` compiled.)"""
        return {**super().__getstate__(), "_programs": {}, "_last": None, "_traced": {}, "_prepared": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy is a live module too (LIVE_MODULES), with its program built as the constructor builds it."""
        super().__setstate__(state)
        LIVE_MODULES[id(self)] = self
        self._program()

    def _program(self) -> Program:
        """The program for the module's current device and dtype, built once per pair."""
        return self._lowered()[0]

    def _lowered(self) -> tuple[Program, TorchOps]:
        """The program for the module's current device and dtype and its ops (which name them); while
        torch.compile traces, the program of its own (TracedOps, built on first use)."""
        if torch.compiler.is_compiling():
            return self._traced[self._traced_key()]
        where = self._buffers["_where"]
        assert where is not None
        last = self._last  # the last call's, when the module has not moved since
        if last is not None and last[1].dtype == where.dtype and last[1].device == where.device:
            return last
        key = f"{where.device}/{dtype_name(where.dtype)}"  # a dtype the module cannot run in (`.half()`) is named here
        if key not in self._programs:
            ops = TorchOps(where.device, where.dtype)
            self._programs[key] = (program_for(self.plan, ops, self.lowering), ops)
        self._last = self._programs[key]
        return self._last

    def _traced_key(self) -> str:
        """While torch.compile traces: the key of the module's program in `_traced` (built on first use), a
        constant of the trace (torch_traced.traced_key)."""
        from circuitdsl.backends.torch_traced import traced_key  # dynamo is loaded: it is tracing this

        moved = self._where  # guarded by dtype and device: a module moved later is traced again
        return traced_key(id(self), moved.dtype, moved.device)

    def _device(self) -> torch.device:
        return self._where.device

    def initial_state(self, batch_size: int = 1) -> State:
        return initial_state(self._layout, checked_count("batch_size", batch_size), self._program().ops)

    def rezero_weights(self) -> None:
        """Set every masked weight (a projection's `sparsity`) back to zero: call after each optimiser step."""
        with torch.no_grad():
            for key, mask in self._masks.items():
                self.params[key].mul_(mask.to(self.params[key].device))

    def keep_masks(self, optimizer: torch.optim.Optimizer) -> Any:
        """Re-zero the masked weights after every step of `optimizer`; returns the hook's removable handle."""
        return optimizer.register_step_post_hook(lambda *_: self.rezero_weights())

    def at_resolution(self, **sizes: int) -> CircuitModule:
        """This circuit with grid axes at other sizes (`x = 512`), sharing these very parameters (an operator
        layer's do not depend on its grid): train at one resolution, run or go on training at another."""
        other = CircuitModule(self.ir.at_resolution(**sizes), lowering=self.lowering,
                              dtype=dtype_name(self._where.dtype))
        other.params = self.params
        other._masks = self._masks
        return other.to(self._device())

    guard_filter = staticmethod(guard_filter)

    @staticmethod
    def compile_options(backend: Any = "inductor") -> dict[str, Any]:
        """The options `module.compile()` gives torch.compile for `backend`, a new dict on each call (torch.compile
        takes keys out of it): `guard_filter` as dynamo's `guard_filter_fn`, and for inductor `size_asserts` off.
        For a rollout: `torch.compile(module.rollout, options=module.compile_options())`.

        Inductor's compiled code asserts each input tensor's sizes and strides before it runs, one call of about
        0.35 us each on this machine class (NCAP: 7 inputs, 2.5 us of a 22 us step); dynamo's guards, which
        `guard_filter` keeps on every tensor a step reads (inputs, state, parameters; the program's own index
        arrays are built once and never change), check the same sizes and strides first and compile again where
        one differs (tests/test_torch_compile.py).  Other backends take no inductor options."""
        options: dict[str, Any] = {"guard_filter_fn": guard_filter}
        if backend == "inductor":
            options["size_asserts"] = False
        return options

    def compile(self, *args: Any, **kwargs: Any) -> None:
        """PyTorch's in-place compile (`module.compile()`, the arguments of `torch.compile`) with
        `compile_options()` for its backend (guards on what the module fixes when it is built left out; for
        inductor, no size asserts), each unless `options` name their own, or a `mode` is given (torch takes
        options or a mode, not both)."""
        if kwargs.get("mode") is None:
            kwargs["options"] = {**self.compile_options(kwargs.get("backend", "inductor")),
                                 **(kwargs.get("options") or {})}
        super().compile(*args, **kwargs)

    def _repr_svg_(self) -> str | None:
        """The circuit's folded diagram, for notebooks (see `CircuitIR._repr_svg_`)."""
        return self.ir._repr_svg_()

    def forward(self, inputs: Mapping[str, torch.Tensor] | torch.Tensor | None = None,
                state: State | None = None, record: Sequence[str] | None = None) -> tuple[dict[str, torch.Tensor],
                                                                                            State]:
        """One step: inputs [batch, *shape]; outputs (and the `record`ed names, see `rollout`) [batch, *shape]."""
        if torch.compiler.is_compiling():
            from circuitdsl.backends.torch_traced import traced_forward

            return traced_forward(self, inputs, state, record)
        program, ops = self._lowered()
        flat = self._inputs(inputs, 1, ops)
        check_finite(flat, self.nonfinite, ops)
        records = resolve(self.plan, record) if record is not None else []
        batch = int(next(iter(flat.values())).shape[0]) if flat else batch_of(flat, state)
        state = self._state(state, batch, ops)
        outputs, new_state = program.step(self._prepare(program, ops), flat, state, batch, records)
        return self._shaped(outputs), new_state

    def rollout(self, inputs: Mapping[str, torch.Tensor] | torch.Tensor | None = None, steps: int | None = None,
                state: State | None = None, record: Sequence[str] | None = None) -> tuple[dict[str, torch.Tensor],
                                                                                             State]:
        """Run over time: each input is [batch, time, *shape]; outputs come back [batch, time, *shape], and so
        does each name in `record` (`pop`, `pop.state`, `pop.let`; docs/engine.md), keyed by that name."""
        program, ops = self._lowered()
        sequence = self._inputs(inputs, 2, ops)
        check_finite(sequence, self.nonfinite, ops)
        length = rollout_length(sequence, steps)
        records = resolve(self.plan, record)
        batch = batch_of(sequence, state)
        state = self._state(state, batch, ops)
        if length == 0:
            return empty_outputs(self.ir, records, batch, ops), state
        prepared = self._prepare(program, ops)  # once for the whole rollout
        loop = time_loop
        if torch.compiler.is_compiling():
            from circuitdsl.backends.torch_traced import untraced_time_loop

            loop = untraced_time_loop
        step = program.rollout_step(batch, length)
        stacked, state = loop(step, prepared, sequence, length, state, batch, records, ops)
        outputs = program.rollout_outputs(prepared, sequence, stacked, batch, length)
        return shaped_outputs(self.ir, {**outputs, **{r.name: stacked[r.name] for r in records}}), state

    def _inputs(self, inputs: Any, leading: int, ops: TorchOps) -> dict[str, torch.Tensor]:
        """The inputs flat per port: tensors already in the module's dtype, on its device and of the ports' shapes
        as they are, anything else checked (converted, or the mistake named)."""
        flat = ready_inputs(inputs, self._ports, leading, ops.fits)
        return flat_inputs(self.ir, inputs, ("batch", "time")[:leading], ops) if flat is None else flat

    def _shaped(self, outputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """A step's flat outputs as [batch, *shape] (no reshape for an output with one axis)."""
        return outputs if self._flat_outputs else shaped_outputs(self.ir, outputs)

    def _state(self, state: State | None, batch: int, ops: TorchOps) -> State:
        """The given state checked and in the module's dtype, on its device; or the initial state.  A dict of the
        module's own tensors of the right shapes (what a step returned) passes without conversions."""
        if state is None:
            return self.initial_state(batch)
        return state if ready_state(state, self._sizes, batch, ops.fits) else checked_state(self._layout, state,
                                                                                              batch, ops)

    def _prepare(self, program: Program, ops: TorchOps) -> dict[str, Any]:
        """The program's parameter-only work for this call (effective values, operators).  Reused from the last
        call while autograd is not recording through the parameters and their values equal those of then (a
        fly-scale CSR matrix is not rebuilt per inference step): compared by value against a copy, since
        `p.data` edits change no version counter (a NaN never compares equal, so it is prepared afresh; a weight
        going from 0 to -0 counts as unchanged).  Only on the CPU: on a GPU each comparison would wait for the
        device and copy a boolean back (one stall per parameter per step), where preparing afresh only queues a
        few more kernels."""
        table = self.params._parameters
        raw: list[Any] = [table[key] for key in self._keys]
        if (torch.compiler.is_compiling() or torch.jit.is_tracing()  # first: a trace reads nothing of the cache
                or (torch.is_grad_enabled() and any(p.requires_grad for p in raw))  # this call's graph
                or ops.accelerator):
            return program.prepare(self._named(raw, ops))
        cached = self._prepared
        if (cached is not None and cached[0] is program and all(map(operator.is_, raw, cached[1]))
                and cached[2] == torch.is_inference_mode_enabled()
                and all(map(torch.equal, raw, cached[3]))):  # (also false for a new shape)
            return cached[4]  # the very parameters of the last call, their values unchanged
        if not all(type(p) is nn.Parameter for p in raw):  # functional_call, vmap: tensors of their own
            return program.prepare(self._named(raw, ops))
        prepared = program.prepare(self._named(raw, ops))
        self._prepared = (program, raw, torch.is_inference_mode_enabled(), [p.detach().clone() for p in raw],
                          prepared)
        return prepared

    def _named(self, raw: Sequence[torch.Tensor], ops: TorchOps) -> dict[str, torch.Tensor]:
        """Parameters by IR name, in the module's dtype (a parameter set to another dtype is converted)."""
        return {name: p if p.dtype == ops.dtype else p.to(ops.dtype) for name, p in zip(self._names, raw, strict=True)}
