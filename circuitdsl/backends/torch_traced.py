"""What torch.compile needs marked for dynamo, imported only while dynamo traces a module (from
`CircuitModule.forward`, `_traced_key` and `rollout`), so that building and running a module eagerly never imports
`torch._dynamo` (0.8 s of CPU on this machine class, more than a fresh process needs to compile the whole worm).

Dynamo executes an import it meets while tracing, so these marks are in place before it reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch._subclasses.fake_tensor import fake_tensor_tls
from torch.fx.experimental.proxy_tensor import get_proxy_mode

from circuitdsl.backends.interface import batch_of, dtype_name, ready_inputs, ready_state, time_loop
from circuitdsl.backends.record import resolve
from circuitdsl.backends.step import State
from circuitdsl.backends.torch_backend import LIVE_MODULES, CircuitModule, TracedOps, program_for
from circuitdsl.errors import did_you_mean

# A misspelled input, state or record name in a traced step: dynamo traces the check that raises, but not difflib,
# which `did_you_mean` uses (it stopped at heapq's `object()`, and under fullgraph the error's text was lost).
# Marked, dynamo runs it as plain Python, a pure function of strings, and takes its answer as a constant.
torch.compiler.assume_constant_result(did_you_mean)

untraced_time_loop = torch.compiler.disable(time_loop, recursive=False)
"""The rollout's time loop, not traced: the loop stays Python and the step it calls is compiled once."""


@torch.compiler.assume_constant_result
def traced_key(module_id: int, dtype: torch.dtype, device: torch.device) -> str:
    """The key of the program for torch.compile of the module `id(module)` in this dtype and on this device, built
    on first use.  Dynamo runs this function itself while it traces (not into the graph), so the lowering's numpy
    work is not traced, and takes its result, a string, as a constant.  Its arguments are plain constants (dynamo
    guards the module's identity where it takes `id`): torch before 2.13 passes no other object to such a
    function."""
    module = LIVE_MODULES[module_id]
    key = f"{device}/{dtype_name(dtype)}"
    if key not in module._traced:
        ops = TracedOps(device, dtype)
        module._traced[key] = (program_for(module.plan, ops, module.lowering), ops)
    return key


def traced_forward(module: CircuitModule, inputs: Any, state: Any,
                   record: Sequence[str] | None) -> tuple[dict[str, torch.Tensor], State]:
    """`CircuitModule.forward` as dynamo traces it: the inputs and state checked as the eager step checks them
    (what the module fixed when it was built read from `traced_layout`, not from its attributes, so that dynamo
    guards none of it), then one call of `traced_step`, whose results come back under the names `traced_names`
    gives.  Inputs and a state that need a conversion, or hold a mistake, go through the module's own checks."""
    where = module._where  # guarded: a module moved to another dtype or device is traced again
    # the key made in the trace: dynamo cannot guard a string from assume_constant_result as an argument
    key = traced_key(id(module), where.dtype, where.device) + ""
    ports, sizes, keys = traced_layout(id(module))

    def fits(x: Any) -> bool:
        return isinstance(x, torch.Tensor) and x.dtype == where.dtype and x.device == where.device

    flat = ready_inputs(inputs, ports, 1, fits)
    if flat is None:
        flat = module._inputs(_numpy_as_tensors(inputs), 1, module._traced[key][1])
    batch = int(next(iter(flat.values())).shape[0]) if flat else batch_of(flat, state)
    if state is None or not ready_state(state, sizes, batch, fits):
        given = None if state is None else _numpy_as_tensors(state)  # none given: no call (nor its guard)
        state = module._state(given, batch, module._traced[key][1])
    named = tuple(r.name for r in resolve(module.plan, record)) if record is not None else ()
    table = module.params._parameters
    values = traced_step(id(module), key, batch, named, *(table[k] for k in keys), *flat.values(),
                         *(state[k] for k, _ in sizes))
    outputs, kept = traced_names(id(module), key, named)
    return ({name: values[i] for i, name in enumerate(outputs)},
            {k: values[len(outputs) + i] for i, k in enumerate(kept)})


def _numpy_as_tensors(value: Any) -> Any:
    """numpy arrays (one, or the values of a dict) as tensors, the rest as it is, before the module's conversion:
    dynamo traces a numpy array through torch but cannot read its dtype, which the conversion does
    (`torch.as_tensor` keeps it).  Only there: the module's own tensors take the fast path, guarded as before."""
    if isinstance(value, np.ndarray):
        return torch.as_tensor(value)
    if isinstance(value, dict):
        return {k: torch.as_tensor(v) if isinstance(v, np.ndarray) else v for k, v in value.items()}
    return value


@torch.compiler.assume_constant_result
def traced_layout(module_id: int) -> tuple[tuple[tuple[str, tuple[int, ...], int], ...], tuple[tuple[str, int], ...],
                                          tuple[str, ...]]:
    """What the module `id(module)` fixed when it was built and a traced step reads: its input ports (name, shape,
    flat size), its state's entries (key, size) and its parameters' keys.  Constants of the trace: dynamo guards
    none of them (as the module's attributes: 9 leaf guards for NCAP, each checked on every call)."""
    module = LIVE_MODULES[module_id]
    return tuple((name, tuple(shape), size) for name, shape, size in module._ports), module._sizes, module._keys


@torch.compiler.assume_constant_result
def traced_names(module_id: int, key: str, record: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The names of what `traced_step` returns, in its order: the outputs and the records, then the state's
    keys.  Constants of the trace: the compiled frame builds its dicts with them, reading nothing."""
    program, _ = LIVE_MODULES[module_id]._traced[key]
    return (*(name for name, _ in program._outputs), *record), tuple(k for k, _ in LIVE_MODULES[module_id]._sizes)


@torch._dynamo.allow_in_graph
def traced_step(module_id: int, key: str, batch: int, record: tuple[str, ...],
                *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """One step of the module `id(module)` by its traced program `key` (`traced_key`): the parameters prepared,
    the step, the outputs shaped.  It takes the parameters, the inputs (by port) and the state (by entry) as one
    flat run of tensors, in the module's order (`traced_layout`), and returns the outputs, the records and the new
    state likewise (`traced_names`).  Dynamo does not trace this function (`allow_in_graph`): it puts one call
    into its graph, with the integers and strings as constants, and AOTAutograd traces the body into that graph,
    which inductor compiles as if dynamo had traced it.  Traced by dynamo, each closure of the program, each
    constant in their cells and each list it reads was one guard more checked before every call (NCAP under
    `torch.compile(module)`: 424 leaf guards); run as a `nonstrict_trace` function taking and returning dicts,
    the guards on torch's pytree registry, which dynamo reads to flatten the dicts, and the work of flattening
    them cost more than a microsecond a call.

    Dynamo runs the body once on fake tensors to see its results, AOTAutograd again to trace it: the program's own
    arrays (index arrays, constant matrices) are real tensors, which fake tensor mode takes as constants only when
    allowed (`fake_tensor_tls`, as `nonstrict_trace` allows them).  Where autograd records the step and
    AOTAutograd's tracer runs the body (a proxy mode is active), it lowers the plan again, so that those arrays are
    made in that trace: AOTAutograd's trace of the backward pass refuses real ones wherever a gather saved one
    for it (torch 2.13: "Please convert all Tensors to FakeTensors first").  At the fly scale (1.5 M synapses) a
    lowering is 1.5 s of a first call with gradients.  Run as it is (torch.compile's "eager" backend), the body
    steps the built program."""
    module = LIVE_MODULES[module_id]
    program, ops = module._traced[key]
    parameters, ports = len(module._keys), len(module._ports)
    raw, rest = tensors[:parameters], tensors[parameters:]
    inputs = {name: x for (name, _, _), x in zip(module._ports, rest[:ports], strict=True)}
    state = {k: x for (k, _), x in zip(module._sizes, rest[ports:], strict=True)}
    if get_proxy_mode() is not None and torch.is_grad_enabled() and any(x.requires_grad for x in tensors):
        program = program_for(module.plan, ops, module.lowering)
    allowed = fake_tensor_tls.allow_non_fake_inputs_override
    fake_tensor_tls.allow_non_fake_inputs_override = True
    try:
        outputs, new_state = program.step(program.prepare(module._named(raw, ops)), inputs, state, batch,
                                          resolve(module.plan, record))
    finally:
        fake_tensor_tls.allow_non_fake_inputs_override = allowed
    shaped = module._shaped(outputs)
    names, kept = traced_names(module_id, key, record)
    return (*(shaped[name] for name in names), *(new_state[k] for k in kept))
