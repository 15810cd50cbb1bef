"""The PyTorch backend: the shared step semantics over torch ops, as a trainable `nn.Module`.

Parameters are registered under the IR's qualified names with '.' written as '/' (torch reserves '.'),
so `state_dict()` keys read `params.osc`, `params.seg[2]/w`, `params.x -> h/weight`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from circuitdsl.backends.plan import Plan, make_plan
from circuitdsl.backends.step import State, Stepper, initial_state, initial_values
from circuitdsl.ir.model import CircuitIR


def param_key(name: str) -> str:
    """A parameter's key in the module: its qualified name with '.' (reserved by torch) written as '/'."""
    return name.replace(".", "/")


class _Spike(torch.autograd.Function):
    """Heaviside forward (x > 0), surrogate derivative backward; snnTorch's formulas."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, surrogate: str, a: float) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(x)
        ctx.surrogate, ctx.a = surrogate, a
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:  # type: ignore[override]
        (x,) = ctx.saved_tensors
        a = ctx.a
        if ctx.surrogate == "atan":
            local = a / 2 / (1 + (math.pi / 2 * a * x) ** 2)
        elif ctx.surrogate == "fast_sigmoid":
            local = 1 / (a * x.abs() + 1) ** 2
        elif ctx.surrogate == "sigmoid":
            s = torch.sigmoid(a * x)
            local = a * s * (1 - s)
        else:
            local = torch.ones_like(x)
        return grad * local, None, None


def _tensor(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.tensor(float(x), dtype=torch.float32)


def _bound(value: Any) -> Any:
    """A clamp bound for torch: an infinite float means no bound."""
    return None if isinstance(value, float) and math.isinf(value) else value


def _clamp(x: Any, lo: Any, hi: Any) -> Any:
    if not any(isinstance(v, torch.Tensor) for v in (x, lo, hi)):
        return min(max(float(x), float(lo)), float(hi))
    return torch.clamp(_tensor(x), _bound(lo), _bound(hi))


def _pair(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> Callable[[Any, Any], Any]:
    return lambda a, b: fn(_tensor(a), _tensor(b))


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
    "sigmoid": lambda x: torch.sigmoid(_tensor(x)),
    "sin": lambda x: torch.sin(_tensor(x)),
    "cos": lambda x: torch.cos(_tensor(x)),
    "step": lambda x: (_tensor(x) > 0).to(torch.float32),
    "sqrt": lambda x: torch.sqrt(_tensor(x)),
    "where": lambda c, a, b: torch.where(_tensor(c) > 0, _tensor(a), _tensor(b)),
}


class TorchOps:
    """The array operations the shared step semantics needs, in torch."""

    functions = _FUNCTIONS

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device

    def asarray(self, values: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(values, device=self.device)

    def zeros(self, batch: int, n: int) -> torch.Tensor:
        return torch.zeros(batch, n, device=self.device)

    def full(self, batch: int, n: int, value: float) -> torch.Tensor:
        return torch.full((batch, n), value, device=self.device)

    def take(self, x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, index)

    def scatter_add(self, n: int, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(values.shape[0], n, dtype=values.dtype, device=values.device)
        return out.index_add(1, index, values)

    def add_at(self, x: torch.Tensor, index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        return x.index_add(1, index, values.expand(x.shape[0], index.shape[0]))

    def to_float(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(torch.float32)

    def spike(self, x: torch.Tensor, surrogate: str, args: Mapping[str, float]) -> torch.Tensor:
        return _Spike.apply(x, surrogate, next(iter(args.values()), 1.0))  # type: ignore[no-untyped-call]

    def softplus(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.softplus(x)

    def stack_time(self, history: torch.Tensor, latest: torch.Tensor) -> torch.Tensor:
        return torch.cat([history[:, latest.shape[1]:], latest], dim=1)


class CircuitRuntimeError(ValueError):
    """Inputs that do not fit the circuit: an unknown port, or a wrong shape."""


class CircuitModule(nn.Module):
    """A compiled circuit: `forward(inputs, state)` advances one time step, batch-first.

    `inputs` is a dict keyed by input port (a bare tensor when the circuit has one input); each is
    `[batch, *port shape]`.  Outputs come back the same way; the state is a dict of tensors.
    """

    def __init__(self, ir: CircuitIR, seed: int = 0) -> None:
        super().__init__()
        self.ir = ir
        self.plan: Plan = make_plan(ir)
        rng = np.random.default_rng(seed)
        self.params = nn.ParameterDict({
            param_key(p.name): nn.Parameter(torch.from_numpy(initial_values(p, rng)), requires_grad=p.trainable)
            for p in ir.parameters})
        self._steppers: dict[str, Stepper] = {}

    def _stepper(self, device: torch.device) -> Stepper:
        key = str(device)
        if key not in self._steppers:
            self._steppers[key] = Stepper(self.plan, TorchOps(device))
        return self._steppers[key]

    def _device(self) -> torch.device:
        return next((p.device for p in self.params.values()), torch.device("cpu"))

    def initial_state(self, batch_size: int = 1) -> State:
        return initial_state(self.plan, batch_size, TorchOps(self._device()))

    def _inputs(self, inputs: Mapping[str, torch.Tensor] | torch.Tensor) -> dict[str, torch.Tensor]:
        ports = {p.name: p for p in self.ir.inputs}
        if isinstance(inputs, torch.Tensor):
            if len(ports) != 1:
                raise CircuitRuntimeError(f"circuit '{self.ir.name}' has inputs {sorted(ports)}; pass a dict")
            inputs = {next(iter(ports)): inputs}
        flat = {}
        for name, value in inputs.items():
            if name not in ports:
                raise CircuitRuntimeError(f"circuit '{self.ir.name}' has no input '{name}'; its inputs are "
                                          f"{sorted(ports) or 'none'}")
            shape = [a.size for a in ports[name].shape]
            if list(value.shape[1:]) != shape:
                axes = ", ".join(f"{a.name}={a.size}" for a in ports[name].shape)
                expected = f"[batch, {axes}]" if axes else "[batch]"
                raise CircuitRuntimeError(f"input '{name}' has shape {list(value.shape)}; expected {expected}")
            flat[name] = value.reshape(value.shape[0], -1).to(torch.float32)
        missing = set(ports) - set(flat)
        if missing:
            raise CircuitRuntimeError(f"missing input{'s' * (len(missing) > 1)} {sorted(missing)}")
        return flat

    def forward(self, inputs: Mapping[str, torch.Tensor] | torch.Tensor | None = None,
                state: State | None = None) -> tuple[dict[str, torch.Tensor], State]:
        flat = self._inputs(inputs if inputs is not None else {})
        if state is None:
            batch = next((v.shape[0] for v in flat.values()), 1)
            state = self.initial_state(batch)
        params = {p.name: self.params[param_key(p.name)] for p in self.ir.parameters}
        outputs, new_state = self._stepper(self._device()).step(params, flat, state)
        shaped = {name: value.reshape(value.shape[0], *[a.size for a in o.shape])
                  for (name, value), o in zip(outputs.items(), self.ir.outputs, strict=True)}
        return shaped, new_state

    def rollout(self, inputs: Mapping[str, torch.Tensor] | torch.Tensor | None = None, steps: int | None = None,
                state: State | None = None) -> tuple[dict[str, torch.Tensor], State]:
        """Run over time: each input is [batch, time, *shape]; outputs come back [batch, time, *shape]."""
        sequence = inputs if isinstance(inputs, Mapping) or inputs is None else {
            self.ir.inputs[0].name if self.ir.inputs else "": inputs}
        length = steps if sequence is None or not sequence else next(iter(sequence.values())).shape[1]
        if length is None:
            raise CircuitRuntimeError("rollout needs inputs over time or a number of steps")
        collected: dict[str, list[torch.Tensor]] = {o.name: [] for o in self.ir.outputs}
        for t in range(length):
            step_inputs = {k: v[:, t] for k, v in (sequence or {}).items()}
            outputs, state = self.forward(step_inputs, state)
            for name, value in outputs.items():
                collected[name].append(value)
        return {name: torch.stack(values, dim=1) for name, values in collected.items()}, state  # type: ignore[return-value]
