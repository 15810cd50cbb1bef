"""The torch backend: NCAP against a hand-written torch NCAP, gradients, training, runtime errors."""

from __future__ import annotations

import pytest
import torch

import circuitdsl
from circuitdsl.backends.torch_backend import CircuitRuntimeError, param_key

SWIMMER = "models/ncap_swimmer.circuit"


def ncap_reference(q: torch.Tensor, w: dict[str, torch.Tensor], shared: bool, constrained: bool,
                   period: int = 60) -> torch.Tensor:
    """NCAP written by hand from Bhattasali et al. (see shared/reference/ncap.md): q is [batch, time, joints].

    Unshared weights are indexed per edge: osc [d, v]; prop [d for joints 1.., v for joints 1..];
    ipsi and contra [d side for every joint, v side for every joint].
    """
    exc = (lambda x: x.clamp(min=0)) if constrained else (lambda x: x)
    inh = (lambda x: x.clamp(max=0)) if constrained else (lambda x: x)
    batch, steps, joints = q.shape

    def pick(name: str, k: int) -> torch.Tensor:
        return w[name] if shared else w[name][k]

    torques = []
    for t in range(steps):
        o_d = float((t % period) < period / 2)
        o_v = 1.0 - o_d
        q_d, q_v = q[:, t].clamp(0, 1), (-q[:, t]).clamp(0, 1)
        row = []
        for i in range(joints):
            if i == 0:
                b_d = exc(pick("osc", 0)) * o_d
                b_v = exc(pick("osc", 1)) * o_v
            else:
                b_d = exc(pick("prop", i - 1)) * q_d[:, i - 1]
                b_v = exc(pick("prop", joints - 1 + i - 1)) * q_v[:, i - 1]
            b_d, b_v = b_d.clamp(0, 1), b_v.clamp(0, 1)
            m_d = (exc(pick("ipsi", i)) * b_d + inh(pick("contra", joints + i)) * b_v).clamp(0, 1)
            m_v = (exc(pick("ipsi", joints + i)) * b_v + inh(pick("contra", i)) * b_d).clamp(0, 1)
            row.append(m_d - m_v)
        torques.append(torch.stack([r.expand(batch) for r in row], dim=1))
    return torch.stack(torques, dim=1)


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("constrained", [True, False])
def test_ncap_equals_hand_written_torch(shared: bool, constrained: bool) -> None:
    torch.manual_seed(0)
    module = circuitdsl.compile(SWIMMER, shared=shared, signs="clamp" if constrained else "none")
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == (4 if shared else 30)
    weights = {}
    with torch.no_grad():
        for name in ("osc", "prop", "ipsi", "contra"):
            parameter = module.params[param_key(name)]
            parameter.copy_(torch.randn_like(parameter) * 1.5)  # both signs, to exercise the clamp
            weights[name] = parameter.detach().clone()
    q = torch.rand(3, 130, 5) * 2 - 1
    outputs, _ = module.rollout(q)
    expected = ncap_reference(q, weights, shared, constrained)
    torch.testing.assert_close(outputs["torque"], expected, atol=1e-6, rtol=1e-6)


def test_ncap_at_init_uses_plus_minus_one() -> None:
    module = circuitdsl.compile(SWIMMER)
    assert {k: float(v) for k, v in module.state_dict().items()} == {
        "params.osc": 1.0, "params.prop": 1.0, "params.ipsi": 1.0, "params.contra": -1.0}
    q = torch.rand(2, 70, 5) * 2 - 1
    ones = {"osc": torch.tensor(1.0), "prop": torch.tensor(1.0), "ipsi": torch.tensor(1.0), "contra": torch.tensor(-1.0)}
    torch.testing.assert_close(module.rollout(q)[0]["torque"], ncap_reference(q, ones, True, True))


def test_state_dict_round_trips_and_other_joint_counts_compile() -> None:
    a, b = circuitdsl.compile(SWIMMER, seed=1, shared=False), circuitdsl.compile(SWIMMER, seed=2, shared=False)
    b.load_state_dict(a.state_dict())
    q = torch.rand(1, 10, 5)
    torch.testing.assert_close(a.rollout(q)[0]["torque"], b.rollout(q)[0]["torque"])
    for joints in (3, 13):
        module = circuitdsl.compile(SWIMMER, joints=joints)
        assert module(torch.zeros(4, joints))[0]["torque"].shape == (4, joints)


def test_gradients_reach_ncap_parameters_except_the_structurally_silent_contra() -> None:
    """Dorsal and ventral drives never overlap (q_d, q_v and the two oscillator phases are exclusive), so the
    contralateral term is either multiplied by 0 or alone and clamped at 0: contra gets no gradient, as the
    NCAP paper notes (only 3 of its 4 weights change swim actions).  Every other weight does."""
    module = circuitdsl.compile(SWIMMER, shared=False, signs="none")
    with torch.no_grad():
        for name, parameter in module.params.items():
            parameter.copy_(torch.empty_like(parameter).uniform_(0.2, 0.4) * (-1 if name == "contra" else 1))
    module.rollout(torch.rand(2, 40, 5) * 2 - 1)[0]["torque"].pow(2).sum().backward()
    grads = {name: p.grad for name, p in module.named_parameters()}
    assert all(grads[f"params.{n}"].abs().min() > 0 for n in ("osc", "prop", "ipsi"))
    assert torch.count_nonzero(grads["params.contra"]) == 0


def test_gradients_reach_every_trainable_parameter() -> None:
    text = """
circuit Mix {
  input x[n = 3]
  output y[n = 3]
  param g : excitatory = 0.3
  param k : inhibitory = -0.2, shared = false
  population a[n = 3] : Tanh
  population b[n = 3] : Leaky(tau = 5 ms)
  population s[n = 3] : LIF(threshold = 0.2)
  x -> a : one_to_one, weight = g
  a -| b : all_to_all, weight = k
  b -> a : one_to_one
  a -> s : dense
  a <-> b : one_to_one, weight = 0.1
  y = b + s
}"""
    module = circuitdsl.compile(circuitdsl.loads(text), seed=3)
    outputs, _ = module.rollout(torch.randn(4, 30, 3))
    outputs["y"].pow(2).sum().backward()
    for name, parameter in module.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_small_circuit_learns_a_target() -> None:
    text = """
circuit Fit {
  input x[feature = 3]
  output y[out = 2]
  population h[unit = 8] : Tanh
  population o[out = 2] : Identity
  x -> h : dense
  h -> o : dense
  y = o
}"""
    module = circuitdsl.compile(circuitdsl.loads(text), seed=0)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=generator)
    target = torch.stack([x[:, 0] - x[:, 1], x[:, 2] * 0.5], dim=1)
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    losses = []
    for _ in range(150):
        optimiser.zero_grad()
        loss = (module(x)[0]["y"] - target).pow(2).mean()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]


def test_bad_runtime_inputs_name_the_port_and_shape() -> None:
    module = circuitdsl.compile(SWIMMER)
    with pytest.raises(CircuitRuntimeError, match=r"input 'q' has shape \[2, 4\]; expected \[batch, joint=5\]"):
        module(torch.zeros(2, 4))
    with pytest.raises(CircuitRuntimeError, match="has no input 'angles'"):
        module({"angles": torch.zeros(2, 5)})


def test_recurrence_delays_and_gap_junctions_step_by_step() -> None:
    text = """
circuit Loop {
  input x[n = 2]
  output a_out[n = 2]
  output c_out[n = 2]
  population a[n = 2], b[n = 2], c[n = 2] : Identity
  x -> a : one_to_one, weight = fixed(1)
  a -> b : one_to_one, weight = fixed(2)
  b -> a : one_to_one, weight = fixed(0.5)
  a -> c : one_to_one, weight = fixed(1), delay = 2
  a <-> c : one_to_one, weight = fixed(0.25)
  a_out = a
  c_out = c
}"""
    module = circuitdsl.compile(circuitdsl.loads(text))
    state = module.initial_state(1)
    a_prev = b_prev = c_prev = torch.zeros(1, 2)
    history = [torch.zeros(1, 2), torch.zeros(1, 2)]
    for t in range(6):
        x = torch.tensor([[1.0, -1.0]]) * (t + 1)
        out, state = module({"x": x}, state)
        a = x + 0.5 * b_prev + 0.25 * (c_prev - a_prev)  # b -> a is recurrent: last step's b
        c = history[0] + 0.25 * (a_prev - c_prev)  # delayed by 2 steps; gap junction on last step's values
        b = 2 * a
        torch.testing.assert_close(out["a_out"], a)
        torch.testing.assert_close(out["c_out"], c)
        history = [history[1], a]
        a_prev, b_prev, c_prev = a, b, c


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


@pytest.mark.parametrize("path", sorted(__import__("pathlib").Path("models").glob("*.circuit")), ids=str)
def test_every_model_compiles_and_runs(path: object) -> None:
    for result in circuitdsl.check(path):
        module = circuitdsl.compile(result.ir)
        inputs = {p.name: torch.rand(2, 20, *[a.size for a in p.shape]) for p in result.ir.inputs}
        outputs, _ = module.rollout(inputs, steps=20)
        for output in result.ir.outputs:
            assert outputs[output.name].shape == (2, 20, *[a.size for a in output.shape])
            assert torch.isfinite(outputs[output.name]).all()
