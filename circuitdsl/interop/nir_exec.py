"""Running a NIR graph: nirtorch builds and wires the torch modules, this module supplies the neuron dynamics.

NIR states continuous-time ODEs and leaves their discretisation to each backend (nirtorch maps no neuron by
default).  The map here is forward Euler at a step `dt` (every derivative, a CubaLIF's current and voltage alike,
from the state before the step, as circuitdsl integrates a neuron's ODEs), then threshold and reset in the
same step (snnTorch's `reset_delay=False`), spikes of height 1; a back-edge of a cycle reads the previous step's
output (nirtorch's rule).  The fidelity measurements and the tests run exported and imported graphs through it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import nir
import nirtorch
import numpy as np
import torch
from torch import nn

State = dict[str, torch.Tensor] | None


def _param(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(-1))


class Dynamics(nn.Module):
    """One NIR neuron node stepped with forward Euler: currents `i` (Cuba nodes), voltage `v`, spikes."""

    def __init__(self, node: nir.NIRNode, dt: float) -> None:
        super().__init__()
        self.dt = dt
        self.cuba = isinstance(node, nir.CubaLI | nir.CubaLIF)
        self.integrator = isinstance(node, nir.I | nir.IF)
        self.spiking = isinstance(node, nir.LIF | nir.IF | nir.CubaLIF)
        self.r = _param(node.r)
        self.tau = _param(node.tau_mem if self.cuba else getattr(node, "tau", np.ones_like(node.r)))
        self.v_leak = _param(getattr(node, "v_leak", np.zeros_like(node.r)))
        if self.cuba:
            self.tau_syn, self.w_in = _param(node.tau_syn), _param(node.w_in)
        if self.spiking:
            self.v_threshold = _param(node.v_threshold)
            self.v_reset = _param(node.v_reset if node.v_reset is not None else np.zeros_like(node.r))

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if state is None or "v" not in state:
            state = {"v": torch.zeros_like(x), "i": torch.zeros_like(x)}
        i, v = state["i"], state["v"]
        current = i if self.cuba else x  # forward Euler: every derivative from the state before the step
        if self.cuba:
            i = i + self.dt / self.tau_syn * (-i + self.w_in * x)
        if self.integrator:
            v = v + self.dt * self.r * current
        else:
            v = v + self.dt / self.tau * (self.v_leak - v + self.r * current)
        if not self.spiking:
            return v, {"v": v, "i": i}
        z = (v > self.v_threshold).to(v.dtype)
        v = torch.where(z > 0, self.v_reset, v)
        return z, {"v": v, "i": i}


class Delay(nn.Module):
    """NIR Delay: each element's input from round(delay / dt) steps before (0 before the first input)."""

    def __init__(self, node: nir.Delay, dt: float) -> None:
        super().__init__()
        self.steps = np.rint(np.asarray(node.delay, dtype=np.float64).reshape(-1) / dt).astype(np.int64)
        self.depth = int(self.steps.max()) if self.steps.size else 0

    def forward(self, x: torch.Tensor, state: State = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if state is None or "history" not in state:
            state = {"history": torch.zeros(self.depth + 1, *x.shape, dtype=x.dtype)}
        history = torch.cat([x[None], state["history"][:-1]])  # newest first: history[k] = input k steps ago
        picked = history[torch.as_tensor(self.steps), ..., torch.arange(x.shape[-1])]  # [units, batch]
        return picked.transpose(0, -1) if x.dim() > 1 else picked, {"history": history}


class Threshold(nn.Module):
    def __init__(self, node: nir.Threshold) -> None:
        super().__init__()
        self.threshold = _param(node.threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold).to(x.dtype)


class Affine(nn.Module):
    """Affine and Linear (y = W x + b), written here because nirtorch 2.6's default map loses Affine's bias."""

    def __init__(self, node: nir.Affine | nir.Linear) -> None:
        super().__init__()
        self.weight = torch.as_tensor(np.asarray(node.weight, dtype=np.float32))
        bias = getattr(node, "bias", None)
        self.bias = torch.zeros(self.weight.shape[0]) if bias is None else _param(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight.T + self.bias


class Scale(nn.Module):
    def __init__(self, node: nir.Scale) -> None:
        super().__init__()
        self.scale = _param(node.scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


def node_map(dt: float) -> dict[type, Callable[[Any], nn.Module]]:
    """nirtorch's node map for forward-Euler execution at step `dt` (seconds)."""
    neurons = {kind: (lambda node: Dynamics(node, dt)) for kind in (nir.LIF, nir.LI, nir.IF, nir.I, nir.CubaLIF,
                                                                    nir.CubaLI)}
    return {**neurons, nir.Delay: lambda node: Delay(node, dt), nir.Threshold: Threshold, nir.Affine: Affine,
            nir.Linear: Affine, nir.Scale: Scale}


def run(graph: nir.NIRGraph, inputs: np.ndarray, dt: float, record: list[str] = ()) -> tuple[np.ndarray,
                                                                                            dict[str, np.ndarray]]:
    """Run a graph over inputs [batch, time, units]: its output [batch, time, units], and the outputs of the
    nodes named in `record` that nirtorch kept as modules (same layout), each a step of its GraphModule."""
    module = nirtorch.nir_to_torch(graph, node_map(dt))
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in record}
    modules = dict(module.named_modules())
    hooks = []
    for name in record:
        def keep(_: nn.Module, __: Any, out: Any, name: str = name) -> None:
            recorded[name].append((out[0] if isinstance(out, tuple) else out).detach().clone())
        found = modules.get(name) or modules.get(nirtorch_name(name))  # a nested graph's node: 'outer.inner'
        if found is not None:
            hooks.append(found.register_forward_hook(keep))
    x = torch.as_tensor(np.asarray(inputs, dtype=np.float32))
    state = None
    outputs = []
    with torch.no_grad():
        for t in range(x.shape[1]):
            out, state = module(x[:, t], state)
            outputs.append(out)
    for hook in hooks:
        hook.remove()
    traces = {name: torch.stack(values, 1).numpy() for name, values in recorded.items() if values}
    return torch.stack(outputs, 1).numpy(), traces


def nirtorch_name(name: str) -> str:
    """The submodule name nirtorch gives a node ('.' becomes '_')."""
    return name.replace(".", "_")
