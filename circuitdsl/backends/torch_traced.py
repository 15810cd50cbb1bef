"""What torch.compile needs marked for dynamo, imported only while dynamo traces a module (from
`CircuitModule.forward`, `_traced_key` and `rollout`), so that building and running a module eagerly never imports
`torch._dynamo` (0.8 s of CPU on this machine class, more than a fresh process needs to compile the whole worm).

Dynamo executes an import it meets while tracing, so these marks are in place before it reads them.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.fx.experimental.proxy_tensor import get_proxy_mode

from circuitdsl.backends.interface import dtype_name, time_loop
from circuitdsl.backends.record import Record, resolve
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


def traced_forward(module: CircuitModule, inputs: dict[str, torch.Tensor], state: State, batch: int,
                   records: list[Record]) -> tuple[dict[str, torch.Tensor], State]:
    """The step of `CircuitModule.forward` as dynamo traces it, after the checks of the inputs and state: one call
    of `traced_step`, its outputs and state under keys made in the trace."""
    table = module.params._parameters
    raw: list[Any] = [table[key] for key in module._keys]  # (the table's values are typed as optional)
    # the key made in the trace: dynamo cannot guard a string from assume_constant_result as an argument
    outputs, new_state = traced_step(id(module), module._traced_key() + "", raw, inputs, state, batch,
                                     tuple(r.name for r in records))
    return constant_keys(outputs), constant_keys(new_state)


@torch._dynamo.nonstrict_trace
def traced_step(module_id: int, key: str, raw: list[torch.Tensor], inputs: dict[str, torch.Tensor], state: State,
                batch: int, record: tuple[str, ...]) -> tuple[dict[str, torch.Tensor], State]:
    """One step of the module `id(module)` by its traced program `key` (`traced_key`): the parameters prepared,
    the step, the outputs shaped.  Dynamo does not trace this function (`nonstrict_trace`): it guards the arguments
    alone (the tensors, the constants and the containers' structure) and puts one call into its graph, and
    AOTAutograd traces the body into that graph, which inductor compiles as if dynamo had traced it.  Traced by
    dynamo, each closure of the program, each constant in their cells and each list it reads was one guard more
    checked before every call (NCAP under `torch.compile(module)`: 424 leaf guards, 104 with the program in here).

    Where autograd records the step and AOTAutograd's tracer runs the body (a proxy mode is active), it lowers the
    plan again, so that the arrays the program holds (index arrays, constant matrices) are made in that trace, as
    its constants: the program built by `traced_key` holds real tensors, which AOTAutograd's trace of the backward
    pass refuses wherever a gather saved one for it (torch 2.13: "Please convert all Tensors to FakeTensors
    first"); a forward trace takes them as constants.  At the fly scale (1.5 M synapses) a lowering is 1.5 s of a
    first call with gradients (aot_eager: 3.8 s, 2.3 s with the program traced by dynamo; 5.8 s lowering in
    every trace, dynamo's fake run included).  Run as it is (torch.compile's "eager" backend), the body steps the
    built program."""
    module = LIVE_MODULES[module_id]
    program, ops = module._traced[key]
    if (get_proxy_mode() is not None and torch.is_grad_enabled()
            and any(x.requires_grad for x in (*raw, *inputs.values(), *state.values()))):
        program = program_for(module.plan, ops, module.lowering)
    outputs, new_state = program.step(program.prepare(module._named(raw, ops)), inputs, state, batch,
                                      resolve(module.plan, record))
    return module._shaped(outputs), new_state


def constant_keys(values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The dict with its keys made while dynamo traces, which it writes into the compiled frame as constants.
    A key read from the program (an output's name, a state entry's key in a closure) is rebuilt on every call by
    the loads dynamo read it through: for NCAP's three keys, some 25 attribute and item loads after the graph.
    Measured at batch 256 (best of 15 x 1000 calls, three processes each): the compiled step 0.6-1.4 us over the
    hand-written equations behind the same interface before, 0.3-0.8 us after (of about 26 us)."""
    return {key + "": value for key, value in values.items()}
