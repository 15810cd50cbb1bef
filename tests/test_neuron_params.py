"""Private weights inside neuron models (params over a unit's internal axes, matvec, vector states, push), and
the neuron models built on them: the ELM neuron and the CTM's neuron-level models, on both backends."""

from __future__ import annotations

import math

import numpy as np
import pytest

import circuitdsl
from circuitdsl.errors import CircuitError
from circuitdsl.ir.model import CircuitIR

TINY = """
neuron Tiny {
  input in[feature = 3]
  state history[time = 4] = 0
  param w[hidden = 2, feature = 3] : free = uniform(-1, 1)
  param tau[hidden = 2] : fixed = logspace(1, 100)
  param gain : free = 0.5, shared = true
  history = push(history, reduce_sum(in))
  out = gain * reduce_sum(matvec(w, in) / tau) + reduce_max(history)
}
circuit C() {
  input x[feature = 3]
  output y[unit = 5]
  population n[unit = 5] : Tiny
  x -> n.in : dense, weight = fixed(1)
  y = n
}
"""


def _tiny() -> CircuitIR:
    return circuitdsl.loads(TINY)


def test_a_neuron_param_is_a_parameter_of_each_population() -> None:
    ir = _tiny()
    w, tau, gain = ir.parameter("n.w"), ir.parameter("n.tau"), ir.parameter("n.gain")
    assert (w.shape, w.share, w.trainable, w.init.rule) == ([5, 2, 3], "unit", True, "uniform")
    assert (tau.shape, tau.trainable) == ([5, 2], False)
    assert np.allclose(tau.init.values.data.reshape(5, 2), [[1, 100]] * 5)  # type: ignore[union-attr]
    assert (gain.shape, gain.share) == ([], "population")
    model = ir.neurons["Tiny"]
    assert [(s.name, [a.size for a in s.shape]) for s in model.states] == [("history", [4])]
    assert CircuitIR.from_json(ir.to_json()) == ir


def test_both_backends_carry_the_private_weights() -> None:
    import jax

    ir = _tiny()
    torch_names = {k for k in circuitdsl.compile(ir, seed=0).state_dict()}
    assert {"params.n/w", "params.n/tau", "params.n/gain"} <= torch_names
    params = circuitdsl.compile(ir, backend="jax").init(jax.random.PRNGKey(0))
    assert params["n/w"].shape == (5, 2, 3) and params["n/gain"].shape == ()


@pytest.mark.parametrize("backend", ["torch", "jax"])
def test_matvec_push_and_a_history_follow_the_formulas(backend: str) -> None:
    """out = gain * sum_h (W in)_h / tau_h + max(history), history the last 4 sums of the port, oldest first."""
    ir = _tiny()
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((6, 2, 3)).astype(np.float32)
    if backend == "torch":
        import torch

        module = circuitdsl.compile(ir, seed=2)
        w = module.state_dict()["params.n/w"].numpy()
        state, outs = None, []
        for x in xs:
            out, state = module({"x": torch.from_numpy(x)}, state)
            outs.append(out["y"].detach().numpy())
    else:
        import jax

        circuit = circuitdsl.compile(ir, backend="jax")
        params = circuit.init(jax.random.PRNGKey(2))
        w = np.asarray(params["n/w"])
        state, outs = circuit.initial_state(2), []
        for x in xs:
            out, state = circuit.step(params, state, {"x": x})
            outs.append(np.asarray(out["y"]))
    tau = np.array([1.0, 100.0])
    history = np.zeros((2, 4))
    for x, got in zip(xs, outs, strict=True):
        port = np.repeat(x.sum(1, keepdims=True), 3, 1)  # dense, weights 1: every feature of a unit sums x
        history = np.concatenate([history[:, 1:], port.sum(1, keepdims=True)], 1)
        drive = np.einsum("uhf,bf->buh", w, port) / tau
        want = 0.5 * drive.sum(2) + history.max(1, keepdims=True)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_gradients_reach_private_weights_but_not_fixed_ones() -> None:
    import torch

    module = circuitdsl.compile(_tiny(), seed=0)
    out, _ = module({"x": torch.ones(2, 3)})
    out["y"].sum().backward()
    grads = {k: p.grad for k, p in module.named_parameters()}
    assert grads["params.n/w"] is not None and float(grads["params.n/w"].abs().sum()) > 0
    assert grads["params.n/tau"] is None


@pytest.mark.parametrize(("body", "code"), [
    ("param w[a = 2] : excitatory = 1\n  out = in", "E301"),  # a neuron's param is free or fixed
    ("param w[a = 2, b = 2, c = 2] : free = 0\n  out = in", "E302"),  # at most two axes
    ("param w[a = 2] : free\n  out = in", "E204"),  # needs an init
    ("param w[a = 2] : free = 0, enforce = clamp\n  out = in", "E203"),
    ("param w[a = 2] : free = 0\n  out = matvec(w, in)", "E302"),  # matvec wants a matrix
    ("param w[a = 2, b = 3] : free = 0\n  state h[c = 3] = 0\n  out = reduce_sum(matvec(w, h))", "E302"),
    ("state h[t = 3] = 0\n  h = push(h, h)\n  out = in", "E302"),  # push appends one value
    ("param w : free = logspace(1, 10)\n  out = in", "E302"),  # logspace spreads over an axis
    ("state h[t = 3] = 0\n  state g[u = 3] = 0\n  h = g\n  out = in", "E302"),
])
def test_mistakes_with_private_weights(body: str, code: str) -> None:
    text = f"neuron N {{\n  {body}\n}}\ncircuit C() {{\n  input x\n  output y\n  population n : N\n  x -> n\n  y = n\n}}"
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(text)
    assert error.value.diagnostics[0].code == code


def test_a_failed_param_gives_one_error_not_a_cascade_at_its_uses() -> None:
    text = ("neuron N {\n  param g : free = 1, shared = clas\n  out = g * in\n}\n"
            "circuit C() {\n  input x\n  population n : N\n  x -> n\n}")
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(text, file="m.circuit")
    assert [(d.code, d.span.line, d.span.column) for d in error.value.diagnostics] == [("E201", 2, 32)]
    assert "did you mean 'class'?" in str(error.value)


USES_N = "circuit C() {\n  input x\n  population n : N\n  x -> n\n}"


@pytest.mark.parametrize(("text", "meant", "expected"), [
    ("neuron N {\n  param g : free = 1, shared = clas\n  out = g * in\n}\n" + USES_N, "class", "true, false, class"),
    ("neuron N {\n  param g : free = 1, shared = ture\n  out = g * in\n}\n" + USES_N, "true", "true, false, class"),
    ("neuron N(s: unit_share = fals) {\n  param g : free = 1, shared = s\n  out = g * in\n}\n" + USES_N, "false",
     "true, false, class"),
    (("circuit C() {\n  input x\n  param w : excitatory = 1, shared = popluation\n  population n : Graded\n"
      "  x -> n : weight = w\n}"), "population", "true, false, all, population, projection, edge"),
])
def test_a_misspelt_shared_lists_every_value_it_takes(text: str, meant: str, expected: str) -> None:
    """`shared` also takes true and false, so the hint lists them beside the enumeration's members."""
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads(text)
    assert error.value.diagnostics[0].code == "E201"
    assert f"did you mean '{meant}'?" in str(error.value) and f"expected one of: {expected}" in str(error.value)


def test_a_unit_share_argument_takes_true_and_false_as_the_option_does() -> None:
    """A neuron argument typed unit_share passes on to `shared` whatever `shared` itself accepts."""
    text = ("neuron N(s: unit_share = class) {\n  param g : free = 1, shared = s\n  out = g * in\n}\n"
            "circuit C(s: bool = true) {\n  input x\n  population n : N(s = s)\n  x -> n\n}")
    assert circuitdsl.loads(text).parameter("n.g").share == "population"
    assert circuitdsl.loads(text, s=False).parameter("n.g").share == "unit"


def test_a_shaped_param_in_a_circuit_is_an_error() -> None:
    with pytest.raises(CircuitError) as error:
        circuitdsl.loads("circuit C() {\n  param w[a = 2] : free = 0\n}")
    assert error.value.diagnostics[0].code == "E005"


# ---- the ELM neuron ---------------------------------------------------------------------------------------

ELM = "models/elm_neuron.circuit"


def elm_count(synapses: int, branches: int, memory: int, hidden: int, outputs: int) -> int:
    """The paper's count: n_syn + (n_b + d_m) h + h + h d_m + d_m + d_m n_out + n_out."""
    return synapses + (branches + memory) * hidden + hidden + hidden * memory + memory + memory * outputs + outputs


def _neuronio() -> CircuitIR:
    """The NeuronIO size: 1278 inputs, 45 branches of 100 synapses (overlapping windows), d_m = 20, h = 40, 2 outputs."""
    pairs = ", ".join(f"[{26 * k + j}, {k}]" for k in range(45) for j in range(100))
    text = f"""
import dendrites
circuit NeuronIO() {{
  input x[feature = 1278]
  output y[output = 2]
  population n : dendrites.ELM(branches = 45, memory = 20, hidden = 40, outputs = 2, tau_max = 150)
  x -> n.in : pairs([{pairs}]), weight = 0.5
  y = n
}}
"""
    return circuitdsl.loads(text)


def test_the_elm_parameter_count_follows_the_paper_on_both_backends() -> None:
    import jax

    ir = _neuronio()
    assert elm_count(4500, 45, 20, 40, 2) == 8002
    assert ir.trainable_scalars == 8002
    module = circuitdsl.compile(ir, seed=0)
    assert sum(p.numel() for p in module.parameters() if p.requires_grad) == 8002
    params = circuitdsl.compile(ir, backend="jax").init(jax.random.PRNGKey(0))
    trainable = {p.name.replace(".", "/") for p in ir.parameters if p.trainable}
    assert sum(int(np.size(v)) for k, v in params.items() if k in trainable) == 8002
    small = circuitdsl.load(ELM)
    assert small.trainable_scalars == elm_count(6 * 3, 3, 4, 8, 2)


def _numpy_elm(ir: CircuitIR, params: dict[str, np.ndarray], xs: np.ndarray) -> np.ndarray:
    """The ELM v1 equations written out in numpy (dense routing, dt = 1, tau_s = 5, lambda = 5)."""
    w_s = np.maximum(params["x -> n.weight"], 0)  # [branch, input]
    tau = params["n.tau_m"][0]
    kappa, kappa_s = np.exp(-1 / tau), math.exp(-1 / 5)
    b = np.zeros((xs.shape[1], w_s.shape[0]))
    m = np.zeros((xs.shape[1], tau.size))
    ys = []
    for x in xs:
        b = kappa_s * b + x @ w_s.T
        h = np.maximum(b @ params["n.w_b"][0].T + (kappa * m) @ params["n.w_m"][0].T + params["n.b_h"][0], 0)
        delta = 1.7159 * np.tanh(2 / 3 * (h @ params["n.w_d"][0].T + params["n.b_d"][0]))
        m = kappa * m + 5 * (1 - kappa) * delta
        ys.append(m @ params["n.w_y"][0].T + params["n.b_y"][0])
    return np.stack(ys)


def test_the_elm_neuron_follows_its_equations() -> None:
    import torch

    ir = circuitdsl.load(ELM)
    module = circuitdsl.compile(ir, seed=4)
    params = {p.name: module.state_dict()["params." + p.name.replace(".", "/")].numpy() for p in ir.parameters}
    assert np.allclose(params["n.tau_m"][0], np.geomspace(1, 100, 4))
    xs = np.random.default_rng(0).standard_normal((12, 2, 6)).astype(np.float32)
    state, outs = None, []
    for x in xs:
        out, state = module({"x": torch.from_numpy(x)}, state)
        outs.append(out["y"].detach().numpy())
    np.testing.assert_allclose(np.stack(outs), _numpy_elm(ir, params, xs), rtol=1e-4, atol=1e-5)


# ---- CTM neuron-level models ------------------------------------------------------------------------------


def nlm_count(units: int, memory: int, hidden: int) -> int:
    """Per unit W1 (M x 2H) + b1 (2H) + W2 (H x 2) + b2 (2); two temperatures for the whole layer."""
    return units * (memory * 2 * hidden + 2 * hidden + 2 * hidden + 2) + 2


def test_the_nlm_parameter_count_at_the_reference_size() -> None:
    """D = 512, M = 25, H = 32: 885,762, as the reference module counts (from the IR and the torch module)."""
    ir = circuitdsl.loads("""
import ctm
circuit C() {
  input x
  output y[unit = 512]
  population z[unit = 512] : ctm.NLM(memory = 25, hidden = 32)
  x -> z : dense
  y = z
}
""")
    assert nlm_count(512, 25, 32) == 885_762
    assert sum(p.size for p in ir.parameters if p.name.startswith("z.")) == 885_762
    module = circuitdsl.compile(ir, seed=0)
    assert sum(p.numel() for k, p in module.named_parameters() if k.startswith("params.z/")) == 885_762


def test_a_neuron_level_model_applies_its_private_glu_mlp() -> None:
    """z = GLU((GLU((W1 A + b1) / T1) W2 + b2) / T2) over the unit's history A of pre-activations."""
    import torch

    ir = circuitdsl.loads("""
import ctm
circuit C() {
  input x[unit = 3]
  output y[unit = 3]
  population z[unit = 3] : ctm.NLM(memory = 4, hidden = 2)
  x -> z : one_to_one, weight = fixed(1)
  y = z
}
""")
    module = circuitdsl.compile(ir, seed=5)
    p = {k.removeprefix("params.z/"): v.numpy() for k, v in module.state_dict().items()}
    xs = np.random.default_rng(3).standard_normal((6, 1, 3)).astype(np.float32)
    history, state = np.zeros((1, 3, 4)), None

    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    for x in xs:
        out, state = module({"x": torch.from_numpy(x)}, state)
        history = np.concatenate([history[..., 1:], x[..., None]], -1)
        a = np.einsum("uht,but->buh", p["w1p"], history) + p["b1p"]
        b = np.einsum("uht,but->buh", p["w1q"], history) + p["b1q"]
        g = a / p["t1"] * sigmoid(b / p["t1"])
        want = ((g * p["w2p"]).sum(-1) + p["b2p"]) / p["t2"] * sigmoid(((g * p["w2q"]).sum(-1) + p["b2q"]) / p["t2"])
        np.testing.assert_allclose(out["y"].detach().numpy(), want, rtol=1e-5, atol=1e-6)


# ---- dendrite nodes ---------------------------------------------------------------------------------------

NODES = "models/dendrite_nodes_mlp.circuit"


def test_train_grow_train_keeps_the_outputs_at_the_moment_of_growth() -> None:
    """Train, add one dendrite copy per hidden unit (weights kept, new output weights 0), train further."""
    import torch

    from circuitdsl.dendrites import grow_dendrites

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((32, 64)).astype(np.float32))
    labels = torch.from_numpy(rng.integers(0, 10, 32))

    def train(module: torch.nn.Module, steps: int) -> float:
        optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
        for _ in range(steps):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(module({"x": x})[0]["logits"], labels)
            loss.backward()
            optimizer.step()
        return float(loss.detach())

    module = circuitdsl.compile(NODES, seed=0)
    train(module, 30)
    grown = grow_dendrites(module, circuitdsl.load(NODES, copies=2), seed=1)
    trained, weights = module.state_dict(), grown.state_dict()
    assert weights["params.x -> h #2/weight"].shape == (4, 2, 64)
    assert torch.equal(weights["params.x -> h #2/weight"][:, :1], trained["params.x -> h #2/weight"])
    assert torch.equal(weights["params.h/v"][:, 1], torch.zeros(4))
    assert sum(p.numel() for p in grown.parameters()) == sum(p.numel() for p in module.parameters()) + 4 * 64 + 4 + 4
    with torch.no_grad():
        before, after = module({"x": x})[0]["logits"], grown({"x": x})[0]["logits"]
        at_growth = float(torch.nn.functional.cross_entropy(after, labels))
    np.testing.assert_allclose(after.numpy(), before.numpy(), atol=1e-6)
    assert train(grown, 30) < at_growth
    assert float(grown.state_dict()["params.h/v"][:, 1].abs().sum()) > 0  # the new copies learn
