"""What a torch.compile'd step costs per call, bounded by counts (docs/engine.md, "Under torch.compile").

Each call of a compiled step first checks every guard dynamo installed while tracing, then fetches and checks each
input of the compiled graph; so a step that reads fewer Python objects and passes fewer tensors is cheaper.  The
counts are deterministic; no test here measures time."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import pytest
import torch
from torch._dynamo.eval_frame import _debug_get_cache_entry_list
from torch._dynamo.utils import counters

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError
from circuitdsl.backends.torch_backend import CircuitModule
from tests.model_files import MODELS, small_args

MAX_GUARDS = 70
"""The NCAP step's leaf guards: 604 before the compile path had a program of its own, 540 with it, 389 after the
eager step's closures were flattened, 424 in a later count, nearly all of them on the lowered program's closures
and what they hold (dynamo guards every Python object a traced function reads); 104 since the program runs inside
`traced_step`, whose body dynamo does not trace; 56 since that takes flat tensors (`allow_in_graph`, no pytree
flattening) and the module's fixed layout comes from `traced_layout`, a constant of the trace (the hand-written
HandNCAP of benchmarks/ncap_step.py: 23, and its equations behind our interface, InterfaceNCAP: 31; each of
these counts also has 5 guards per tensor on dynamic-shape marks); 53 since the swimmer has one oscillator clock
(3 guards per state entry)."""


def _leaf_guards(manager: Any) -> int:
    """Every leaf guard under a guard manager, also those on a dict's entries, which a dict's manager keeps apart
    from its child managers once dynamo has iterated the dict (`.items()`): counted without them, a frame that
    iterates its inputs' dict would seem to guard nothing of them."""
    entries = manager.get_key_value_managers().values() if hasattr(manager, "get_key_value_managers") else ()
    return (len(manager.get_leaf_guards()) + sum(_leaf_guards(child) for child in manager.get_child_managers())
            + sum(_leaf_guards(part) for pair in entries for part in pair if part is not None))


# torch 2.13's dynamo warns about its own doings while tracing (see test_torch_backend.py)
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_a_compiled_ncap_step_is_one_graph_with_its_constants_inlined_and_a_bounded_number_of_guards() -> None:
    """One trace serves calls with new inputs and states (no recompile, no graph break); the graph's inputs are the
    parameters, the inputs and state the step reads and index arrays, never a constant (each would be one more
    tensor fetched, guarded and checked per call); the number of guards stays bounded."""
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    graphs: list[list[torch.Tensor]] = []

    def backend(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Any:
        graphs.append(inputs)
        return graph.forward

    torch._dynamo.reset()
    counters.clear()
    compiled = torch.compile(module, backend=backend)
    torch.manual_seed(0)
    state = module.initial_state(2)
    with torch.no_grad():
        for _ in range(3):  # a new state each call (and new inputs)
            q = torch.rand(2, 5) * 2 - 1
            expected, _ = module({"q": q}, state)
            outputs, state = compiled({"q": q}, state)
            torch.testing.assert_close(outputs["torque"], expected["torque"])
    (entry,) = _debug_get_cache_entry_list(CircuitModule.forward.__code__)  # one compiled version: no recompile
    assert len(graphs) == 1 and not counters["graph_break"]
    (inputs,) = graphs
    assert sum(x.dim() == 0 for x in inputs) == len(module.params)  # NCAP's 4 shared weights; no constant
    # q, the clock, the 4 weights (17 with the constants and the second clock of then as inputs; 12 with the
    # weights gathered by index; 7 with the ventral oscillator's clock of its own)
    assert len(inputs) == 6
    assert _leaf_guards(entry.guard_manager.root) <= MAX_GUARDS


MAX_FILTERED_GUARDS = 40
"""The NCAP step's leaf guards compiled by `module.compile()`, which leaves out those on the module's lowered
program and on the code a step runs (`guard_filter`): 33 of 53 (39 of 424 when dynamo traced the program), the
rest on the inputs, the state, the parameters and the module's dtype and device."""


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_module_compile_leaves_out_the_programs_guards_and_still_follows_a_move_to_float64() -> None:
    """`module.compile()` checks a tenth of the guards of `torch.compile(module)`, and what it leaves out cannot
    change: the module moved to float64 is traced again (its dtype is guarded) and gives float64 outputs equal to
    the eager module's."""
    torch._dynamo.reset()
    module, eager = (circuitdsl.compile("models/ncap_swimmer.circuit") for _ in range(2))
    module.compile(backend="eager")
    torch.manual_seed(0)
    q = torch.rand(2, 5, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(module({"q": q.float()})[0]["torque"], eager({"q": q.float()})[0]["torque"])
        entries = _debug_get_cache_entry_list(CircuitModule.forward.__code__)
        assert len(entries) == 1 and _leaf_guards(entries[0].guard_manager.root) <= MAX_FILTERED_GUARDS
        module.double()
        eager.double()
        found = module({"q": q})[0]["torque"]
        assert found.dtype == torch.float64 and torch.equal(found, eager({"q": q})[0]["torque"])
        with pytest.raises(CircuitRuntimeError, match="nonfinite must be one of"):
            module.nonfinite = "refuse"  # refused where it is set: a compiled step does not read it




@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize(("path", "args", "batch"), [
    *[(path, small_args(path), 2) for path in MODELS],
    (MODELS[0].parent / "transformer_block.circuit", {"causal": True}, 2),
    (MODELS[0].parent / "celegans_whole.circuit", {}, 8),  # the sparse product (2: its dense twin)
], ids=lambda v: getattr(v, "name", None) or (",".join(f"{k}={w}" for k, w in v.items()) if isinstance(v, dict)
                                               else f"batch{v}"))
def test_every_model_compiles_into_one_graph_equal_to_eager(path: Path, args: dict[str, Any], batch: int) -> None:
    """No graph break (fullgraph), with no state given: nothing of a step reads a value back or runs numpy on
    numbers (np.prod of the axis sizes was traced as an array and read back by int(), a break before each layer
    norm; the initial state's values were evaluated from the IR each call; an operator's bias basis and
    resampling matrices were converted each step; a CSR matrix is no tensor dynamo traces).  aot_eager, not eager:
    a step without gradients runs in `traced_step`, whose body AOTAutograd traces (eager would run it as it is)."""
    torch._dynamo.reset()
    module = circuitdsl.compile(circuitdsl.load(path, **args))
    inputs = {p.name: torch.rand(batch, *[a.size for a in p.shape]) for p in module.ir.inputs} or None
    with torch.no_grad():
        expected = module(inputs)
        module.compile(backend="aot_eager", fullgraph=True)
        found = module(inputs)
    for got, want in zip(found, expected):
        torch.testing.assert_close(got, want)


def test_an_eager_module_never_imports_dynamo() -> None:
    """Compiling a circuit to a module, a step and a rollout import no `torch._dynamo` (0.8 s of CPU, a third of a
    fresh process's whole-worm compile): what torch.compile needs marked is imported only while dynamo traces."""
    import subprocess
    import sys

    script = ("import sys, torch, circuitdsl\n"
              "m = circuitdsl.compile('models/ncap_swimmer.circuit')\n"
              "m({'q': torch.zeros(1, 5)})\n"
              "m.rollout({'q': torch.zeros(1, 3, 5)})\n"
              "print(sorted(k for k in sys.modules if k.startswith('torch._dynamo')))\n")
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert found.stdout.strip() == "[]", found.stdout


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_a_rollout_compiled_with_the_guard_filter_checks_no_guard_on_its_program_each_time_step() -> None:
    """`torch.compile(module.rollout, options=module.compile_options(backend))`: the frame compiled for
    the program's step, called every time step, keeps no guard on the program (its `self`); the outputs are the
    eager rollout's."""
    from circuitdsl.backends.program import Program

    torch._dynamo.reset()
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    compiled = torch.compile(module.rollout, backend="eager", options=module.compile_options("eager"))
    x = torch.rand(2, 6, 5) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(compiled({"q": x})[0]["torque"], module.rollout({"q": x})[0]["torque"])
    (entry,) = _debug_get_cache_entry_list(Program.step_sources.__code__)
    assert _leaf_guards(entry.guard_manager.root) <= 75  # 240 with every guard kept, 69 now


def test_module_compile_gives_inductor_no_size_asserts_and_its_kept_guards_check_the_same() -> None:
    """`module.compile()` asks inductor for no size asserts (each input's sizes and strides checked again by the
    compiled code, ~0.35 us an input), other backends for nothing but the guard filter, and options of the user's
    own win; the guards it keeps check the parameters' sizes and strides: a parameter given other strides after
    compiling is traced again, with the eager module's results."""
    from circuitdsl.backends.torch_backend import guard_filter

    given: list[dict[str, Any]] = []
    module = circuitdsl.compile("models/rich_lazy_rnn.circuit")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(torch, "compile", lambda fn, **kwargs: given.append(kwargs) or fn)
        module.compile()
        module.compile(backend="aot_eager")
        module.compile(options={"size_asserts": True})
    assert [g["options"] for g in given] == [{"guard_filter_fn": guard_filter, "size_asserts": False},
                                             {"guard_filter_fn": guard_filter},
                                             {"guard_filter_fn": guard_filter, "size_asserts": True}]
    assert module.compile_options() is not module.compile_options()  # torch.compile takes keys out of it

    torch._dynamo.reset()
    module = circuitdsl.compile("models/rich_lazy_rnn.circuit")
    eager = circuitdsl.compile("models/rich_lazy_rnn.circuit")
    module.compile(backend="aot_eager")
    x = torch.rand(2, *[a.size for a in module.ir.inputs[0].shape])
    weight, twin = module.params["W"], eager.params["W"]  # [8, 8]
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0], eager(x)[0])
        for change in (lambda w: w.t().contiguous().t(), lambda w: w * 2):  # other strides; other values
            weight.data, twin.data = change(weight.data), change(twin.data)
            torch.testing.assert_close(module(x)[0], eager(x)[0])
    assert len(_debug_get_cache_entry_list(CircuitModule.forward.__code__)) == 2  # the strides traced again


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_one_compiled_module_runs_steps_without_and_with_gradients_each_by_its_own_trace() -> None:
    """Steps without and with gradients both run the program inside `traced_step` (few guards), each traced once
    (grad mode is guarded), both equal to the eager module's, gradients included, on a circuit whose steps gather
    (`ncap_segments`: AOTAutograd's backward pass refused the index arrays of a program built outside its trace)."""
    torch._dynamo.reset()
    module = circuitdsl.compile("models/ncap_segments.circuit", seed=3)
    eager = circuitdsl.compile("models/ncap_segments.circuit", seed=3)
    compiled = torch.compile(module, backend="aot_eager", fullgraph=True)
    x = torch.rand(2, *[a.size for a in module.ir.inputs[0].shape]) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(compiled(x)[0], eager(x)[0])
    (entry,) = _debug_get_cache_entry_list(CircuitModule.forward.__code__)
    assert _leaf_guards(entry.guard_manager.root) <= MAX_GUARDS
    found, expected = (sum(o.square().sum() for o in step(x)[0].values()) for step in (compiled, eager))
    torch.testing.assert_close(found, expected)
    for a, b in zip(torch.autograd.grad(found, list(module.parameters())),
                    torch.autograd.grad(expected, list(eager.parameters())), strict=True):
        torch.testing.assert_close(a, b)
    entries = _debug_get_cache_entry_list(CircuitModule.forward.__code__)
    assert len(entries) == 2 and all(_leaf_guards(e.guard_manager.root) <= MAX_GUARDS for e in entries)


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
def test_a_compiled_step_converts_what_the_eager_step_converts_and_records_alike() -> None:
    """The compiled frame takes the module's own inputs and state as they are (`ready_inputs`, `ready_state`) and
    sends anything else through the module's checks, which convert it: float64 inputs and state, a bare tensor,
    numpy arrays (as tensors first: dynamo does not trace numpy's `dtype`), all without a graph break; `record=`
    comes back beside the outputs.  Each equal to the eager step."""
    torch._dynamo.reset()
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    x = torch.rand(3, 5, dtype=torch.float64) * 2 - 1
    state = {key: value.double() + 17 for key, value in module.initial_state(3).items()}
    calls = [(True, ({"q": x}, state)), (True, (x.float(), None)), (True, ({"q": x.float()}, module.initial_state(3))),
             (True, ({"q": x.numpy()}, {key: value.numpy() for key, value in state.items()})),
             (True, (x.float().numpy(), None))]
    with torch.no_grad():
        for fullgraph, args in calls:
            compiled = torch.compile(module, backend="aot_eager", fullgraph=fullgraph)
            found, expected = compiled(*args, record=["Bv", "osc_d.t"]), module(*args, record=["Bv", "osc_d.t"])
            for got, want in zip(found, expected, strict=True):
                assert list(got) == list(want) and all(got[k].dtype == torch.float32 for k in got)
                for key in want:
                    torch.testing.assert_close(got[key], want[key], rtol=0, atol=0)


MISTAKES: Final = {
    "input": (lambda step, x, state: step({"qq": x}, state), "has no input 'qq'; its inputs are ['q']; did you mean 'q'?"),
    "state": (lambda step, x, state: step({"q": x}, {**state, "osc_d.tt": state["osc_d.t"]}),
              "state has no entry 'osc_d.tt'; did you mean 'osc_d.t'?"),
    "record": (lambda step, x, state: step({"q": x}, state, record=["Mdd"]),
               "nothing to record named 'Mdd'; did you mean 'Md'?"),
}
"""A user's mistakes that a traced step meets, each with the start of the error it gets eagerly."""


@pytest.mark.parametrize("mistake", sorted(MISTAKES))
def test_a_mistake_under_torch_compile_keeps_its_message_and_hint(mistake: str) -> None:
    """Without fullgraph dynamo stops at the check that raises and runs the frame eagerly: our CircuitRuntimeError.
    With fullgraph torch refuses the frame with its own `Unsupported` ("Observed exception"), which carries ours:
    dynamo runs `did_you_mean` as plain Python (it cannot trace difflib, and lost the whole message there)."""
    call, message = MISTAKES[mistake]
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    x, state = torch.rand(2, 5), module.initial_state(2)
    with pytest.raises(CircuitRuntimeError, match=re.escape(message)):
        call(module, x, state)
    for fullgraph, error in ((False, CircuitRuntimeError), (True, torch._dynamo.exc.Unsupported)):
        torch._dynamo.reset()
        with pytest.raises(error, match=re.escape(message)):
            call(torch.compile(module, backend="eager", fullgraph=fullgraph), x, state)
