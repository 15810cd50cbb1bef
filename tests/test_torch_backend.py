"""What only the torch backend has: an nn.Module with a state_dict, and the LIF neuron against snnTorch's Leaky.

The behaviour tests that every backend passes are in test_backends.py."""

from __future__ import annotations

import pytest
import torch

import circuitdsl
from tests.ncap_reference import ncap_reference

SWIMMER = "models/ncap_swimmer.circuit"


def test_state_dict_round_trips_and_only_trainable_parameters_require_grad() -> None:
    torch.manual_seed(0)
    a, b = circuitdsl.compile(SWIMMER, seed=1, shared=False), circuitdsl.compile(SWIMMER, seed=2, shared=False)
    b.load_state_dict(a.state_dict())
    q = torch.rand(1, 10, 5)
    torch.testing.assert_close(a.rollout(q)[0]["torque"], b.rollout(q)[0]["torque"])
    assert sum(p.numel() for p in a.parameters() if p.requires_grad) == 30
    fixed = circuitdsl.compile(circuitdsl.loads("""
circuit Fixed {
  input x[n = 2]
  population a[n = 2] : Identity
  x -> a : one_to_one, weight = fixed(0.5)
}"""))
    assert [(k, p.requires_grad) for k, p in fixed.named_parameters()] == [("params.x -> a/weight", False)]


def test_gelu_equals_torch_gelu_in_values_and_gradients() -> None:
    module = circuitdsl.compile(circuitdsl.loads("""
circuit G {
  input x[n = 7]
  output y[n = 7]
  population g[n = 7] : Gelu
  x -> g : one_to_one, weight = fixed(1)
  y = g
}"""))
    x = torch.linspace(-4, 4, 7).repeat(2, 1).requires_grad_(True)
    reference = x.detach().clone().requires_grad_(True)
    out = module(x)[0]["y"]
    torch.testing.assert_close(out, torch.nn.functional.gelu(reference))
    out.sum().backward()
    torch.nn.functional.gelu(reference).sum().backward()
    torch.testing.assert_close(x.grad, reference.grad)


@pytest.mark.parametrize(("reset", "surrogate_name"), [("subtract", "atan"), ("zero", "fast_sigmoid")])
def test_lif_equals_snntorch_leaky(reset: str, surrogate_name: str) -> None:
    """Spikes, membrane trace and input gradients of the std LIF equal snnTorch's Leaky on the same inputs."""
    snn = pytest.importorskip("snntorch")
    from snntorch import surrogate

    slope = 2.0 if surrogate_name == "atan" else 25.0
    text = f"""
circuit Layer {{
  input x[n = 6]
  output s[n = 6]
  population lif[n = 6] : LIF(beta = 0.8, threshold = 1, reset = {reset}, surrogate = {surrogate_name}, slope = {slope})
  x -> lif : one_to_one, weight = fixed(1)
  s = lif
}}"""
    module = circuitdsl.compile(circuitdsl.loads(text))
    grad_fn = surrogate.atan(alpha=slope) if surrogate_name == "atan" else surrogate.fast_sigmoid(slope=slope)
    reference = snn.Leaky(beta=0.8, threshold=1.0, spike_grad=grad_fn, reset_mechanism=reset)
    torch.manual_seed(0)
    x = (torch.rand(3, 50, 6) * 0.9).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)

    state = module.initial_state(3)
    ours_spikes, ours_mem = [], []
    for t in range(50):
        out, state = module({"x": x[:, t]}, state)
        ours_spikes.append(out["s"])
        ours_mem.append(state["lif.mem"])
    mem = reference.init_leaky()
    ref_spikes, ref_mem = [], []
    for t in range(50):
        spk, mem = reference(x_ref[:, t], mem)
        ref_spikes.append(spk)
        ref_mem.append(mem)
    ours, theirs = torch.stack(ours_spikes, 1), torch.stack(ref_spikes, 1)
    assert theirs.sum() > 10, "the test drives the neurons to spike"
    torch.testing.assert_close(ours, theirs)
    torch.testing.assert_close(torch.stack(ours_mem, 1), torch.stack(ref_mem, 1))
    (ours * torch.linspace(0, 1, 50)[None, :, None]).sum().backward()
    (theirs * torch.linspace(0, 1, 50)[None, :, None]).sum().backward()
    torch.testing.assert_close(x.grad, x_ref.grad)


SPIKING = """
circuit Spiking {
  input x[i = 3]
  output s[j = 4]
  param w : free = normal(0, 1), shared = false
  population h[j = 4] : LIF(beta = 0.9)
  population g[j = 4] : Leaky(tau = 5 ms, dt = 1 ms)
  x -> h : all_to_all, weight = w
  h -> g : one_to_one, weight = 1.0
  g -> h : one_to_one, weight = 0.5, delay = 2
  s = h
}"""


# torch 2.13's dynamo warns about its own doings while tracing: it instantiates autograd.Function subclasses
# (our spike) and reads .grad of non-leaf inputs (a state carried from the previous step)
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize("source", ["models/ncap_swimmer.circuit", "models/ncap_segments.circuit", "spiking"])
def test_torch_compile_captures_the_whole_step_in_one_graph(source: str) -> None:
    """fullgraph=True fails on any graph break; the compiled step gives the eager outputs and gradients.

    (aot_eager traces through dynamo and autograd like the default inductor backend, without its C++ build.)"""
    module = circuitdsl.compile(circuitdsl.loads(SPIKING) if source == "spiking" else source, seed=3)
    compiled = torch.compile(module, fullgraph=True, backend="aot_eager")
    port = module.ir.inputs[0]
    torch.manual_seed(0)
    inputs = [torch.rand(2, *[a.size for a in port.shape]) * 4 - 2 for _ in range(6)]
    losses = []
    for step in (module, compiled):
        state, loss = module.initial_state(2), torch.zeros(())
        for x in inputs:
            outputs, state = step({port.name: x}, state)
            loss = loss + sum(o.square().sum() for o in outputs.values())
        grads = torch.autograd.grad(loss, [p for p in module.parameters() if p.requires_grad])
        losses.append((loss.detach(), grads))
    (eager, eager_grads), (traced, traced_grads) = losses
    torch.testing.assert_close(traced, eager)
    for a, b in zip(traced_grads, eager_grads, strict=True):
        torch.testing.assert_close(a, b)
    assert eager.item() > 0 and any(g.abs().sum() > 0 for g in eager_grads)


@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_a_compiled_rollout_compiles_the_step_once_instead_of_unrolling_the_time_loop() -> None:
    from torch._dynamo.utils import counters

    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    captured = []
    for steps in (4, 12):
        torch._dynamo.reset()
        counters.clear()
        x = torch.rand(2, steps, 5) * 2 - 1
        with torch.no_grad():
            outputs, _ = torch.compile(module.rollout, backend="aot_eager")({"q": x})
            torch.testing.assert_close(outputs["torque"], module.rollout({"q": x})[0]["torque"])
        captured.append((counters["stats"]["unique_graphs"], counters["stats"]["calls_captured"]))
    (graphs_short, ops_short), (graphs_long, ops_long) = captured
    assert graphs_short == graphs_long  # the step's graph is reused, not one graph per length
    # nothing per step is traced: unrolled, each NCAP step would add about 30 operations; and a traced split of the
    # inputs into their steps or stacking of the outputs, one operation per step (a graph returning every step's
    # input as a view, each regenerated by torch on every call, made the compiled rollout 8.5x slower than eager)
    assert ops_long == ops_short


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("constrained", [True, False])
def test_ncap_equals_a_hand_written_torch_ncap_in_outputs_and_gradients(shared: bool, constrained: bool) -> None:
    """The paper's loop over segments in torch, on random joint angles and weights of both signs."""
    module = circuitdsl.compile(SWIMMER, shared=shared, signs="clamp" if constrained else "none")
    torch.manual_seed(0)
    with torch.no_grad():
        for p in module.params.values():
            p.copy_(torch.randn(p.shape) * 1.5)
    hand = {k: p.detach().clone().requires_grad_() for k, p in module.params.items()}
    q = torch.rand(3, 130, 5) * 2 - 1
    ours = module.rollout(q)[0]["torque"]
    theirs = ncap_reference(q, hand, shared, constrained, xp=torch)
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-6)
    target = torch.rand(3, 130, 5) * 2 - 1
    ours_grad = torch.autograd.grad((ours - target).square().mean(), list(module.params.values()))
    theirs_grad = torch.autograd.grad((theirs - target).square().mean(), list(hand.values()))
    for a, b in zip(ours_grad, theirs_grad, strict=True):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
