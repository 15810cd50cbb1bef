"""What only the JAX backend has: pure functions under jit, vmap (over a batch and over parameter sets) and grad,
PRNG-key init, and exact parameter transfer to and from torch."""

from __future__ import annotations

import numpy as np
import pytest

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

INITS = """
circuit Inits {
  input x[n = 3]
  output y[n = 3]
  param u : free = uniform(-0.5, 0.5), shared = false
  param s : excitatory = 0.7, enforce = softplus
  param m : inhibitory = normal(-1, 0.2), enforce = abs
  population a[n = 3] : Tanh
  population b[n = 3] : LIF(threshold = 0.3)
  x -> a : one_to_one, weight = u
  a -> b : dense, weight = normal(0, 0.5)
  b -| a : pairs([[0, 1], [2, 0]]), weight = m
  a -> a : pairs([[1, 2]]), weight = s
  y = a + b
}"""


@pytest.fixture(scope="module")
def ir() -> circuitdsl.CircuitIR:
    return circuitdsl.loads(INITS)


def _inputs(batch: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, steps, 3)).astype(np.float32)


def test_default_init_is_the_torch_modules_and_a_key_draws_from_the_same_rules(ir: circuitdsl.CircuitIR) -> None:
    circuit = circuitdsl.compile(ir, backend="jax", seed=11)
    module = circuitdsl.compile(ir, seed=11)
    default = circuit.init()
    assert {f"params.{k}": (v.shape, np.asarray(v).tobytes()) for k, v in default.items()} == {
        k: (tuple(v.shape), v.numpy().tobytes()) for k, v in module.state_dict().items()}
    drawn = circuit.init(jax.random.key(0))
    assert jax.tree.map(jnp.shape, drawn) == jax.tree.map(jnp.shape, default)
    assert float(drawn["s"]) == float(default["s"])  # a constant init is the same whichever the draw
    assert np.all(np.abs(np.asarray(drawn["u"])) <= 0.5) and not np.array_equal(drawn["u"], default["u"])
    assert np.all(np.asarray(drawn["m"]) >= 0)  # stored through `abs`, used as -|m|
    again, other = circuit.init(jax.random.key(0)), circuit.init(jax.random.key(1))
    assert all(np.array_equal(again[k], drawn[k]) for k in drawn)
    assert not np.array_equal(other["a -> b/weight"], drawn["a -> b/weight"])
    stacked = jax.vmap(circuit.init)(jax.random.split(jax.random.key(2), 5))
    assert stacked["a -> b/weight"].shape == (5, 3, 3) and stacked["s"].shape == (5,)


def test_parameters_transfer_exactly_both_ways(ir: circuitdsl.CircuitIR) -> None:
    circuit = circuitdsl.compile(ir, backend="jax")
    module = circuitdsl.compile(ir, seed=3)
    params = circuit.init(jax.random.key(4))
    module.load_state_dict(circuit.to_torch(params))
    back = circuit.from_torch(module.state_dict())
    assert all(np.asarray(back[k]).tobytes() == np.asarray(params[k]).tobytes() for k in params)
    x = _inputs(2, 40)
    np.testing.assert_allclose(np.asarray(circuit.rollout(params, x)[0]["y"]),
                               module.rollout(torch.from_numpy(x))[0]["y"].detach().numpy(), atol=1e-5)
    with pytest.raises(CircuitRuntimeError, match="not this circuit's"):
        circuit.from_torch({"params.u": torch.zeros(3)})


def test_step_and_rollout_under_jit_equal_the_eager_ones(ir: circuitdsl.CircuitIR) -> None:
    circuit = circuitdsl.compile(ir, backend="jax")
    params, x = circuit.init(), _inputs(2, 6)
    eager_outputs, eager_state = circuit.step(params, None, x[:, 0])
    jit_outputs, jit_state = jax.jit(circuit.step)(params, circuit.initial_state(2), x[:, 0])
    np.testing.assert_allclose(jit_outputs["y"], eager_outputs["y"], atol=1e-6)
    assert set(jit_state) == set(eager_state)
    state = circuit.initial_state(2)
    for t in range(6):
        outputs, state = circuit.step(params, state, {"x": x[:, t]})
        np.testing.assert_allclose(jax.jit(circuit.rollout)(params, x)[0]["y"][:, t], outputs["y"], atol=1e-6)


def test_eager_calls_trace_the_circuit_once_and_reuse_the_compiled_program(ir: circuitdsl.CircuitIR,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    circuit = circuitdsl.compile(ir, backend="jax")
    program, traced = circuit._program(), []
    step = program.step
    monkeypatch.setattr(program, "step", lambda *args: traced.append(1) or step(*args))
    params, x = circuit.init(), _inputs(2, 8)
    first = circuit.rollout(params, x)[0]["y"]
    once = len(traced)
    again = circuit.rollout(params, x + 0.5)[0]["y"]  # new values, same shapes: no new trace
    circuit.step(params, None, x[:, 0])
    circuit.step(params, None, x[:, 1])
    assert once >= 1 and len(traced) == once + 1  # the rollouts traced once, the steps once
    assert not np.allclose(first, again)


def test_vmap_over_a_batch_and_over_parameter_sets(ir: circuitdsl.CircuitIR) -> None:
    circuit = circuitdsl.compile(ir, backend="jax")
    params, x = circuit.init(), _inputs(4, 30)
    rollout = jax.jit(lambda p, inputs: circuit.rollout(p, inputs)[0]["y"])
    batched = rollout(params, x)
    mapped = jax.vmap(rollout, in_axes=(None, 0))(params, x[:, None])  # each of 4 calls sees a batch of 1
    np.testing.assert_allclose(mapped[:, 0], batched, atol=1e-6)
    sets = jax.vmap(circuit.init)(jax.random.split(jax.random.key(5), 3))
    per_set = jax.vmap(rollout, in_axes=(0, None))(sets, x)
    assert per_set.shape == (3, 4, 30, 3)
    for i in range(3):
        np.testing.assert_allclose(per_set[i], rollout(jax.tree.map(lambda v, i=i: v[i], sets), x), atol=1e-6)


def test_grad_through_a_long_rollout_equals_torch(ir: circuitdsl.CircuitIR) -> None:
    """1000 steps with spikes, recurrence and sign enforcement: jax.grad through lax.scan equals torch's backward."""
    circuit, module = circuitdsl.compile(ir, backend="jax"), circuitdsl.compile(ir)
    x = _inputs(2, 1000, seed=1)
    weights = np.random.default_rng(2).standard_normal((2, 1000, 3)).astype(np.float32)
    grads = jax.jit(jax.grad(lambda p: (circuit.rollout(p, x)[0]["y"] * weights).sum()))(circuit.init())
    (module.rollout(torch.from_numpy(x))[0]["y"] * torch.from_numpy(weights)).sum().backward()
    for key, parameter in module.params.items():
        assert np.isfinite(grads[key]).all()
        np.testing.assert_allclose(grads[key], parameter.grad.numpy(), rtol=1e-4, atol=1e-4, err_msg=key)


def test_a_circuit_without_inputs_rolls_out_for_a_number_of_steps() -> None:
    circuit = circuitdsl.compile(circuitdsl.loads("""
circuit Clock {
  output tick
  population osc : SquareWave(period = 4)
  tick = osc
}"""), backend="jax")
    outputs, state = jax.jit(circuit.rollout, static_argnames="steps")(circuit.init(), steps=8)
    assert outputs["tick"].tolist() == [[1, 1, 0, 0, 1, 1, 0, 0]]
    assert float(state["osc.t"][0, 0]) == 8


def test_every_product_of_a_step_asks_for_full_float32_precision() -> None:
    # XLA's default on a GPU is TF32 (11 significant bits): the whole worm's outputs were 4e-4 off from the second
    # step on an H200.  On a CPU precision changes nothing, so the jaxpr is what can be checked here.
    import jax

    for model, lowering in (("models/celegans_whole.circuit", "dense"), ("models/mlp_mixer.circuit", "auto"),
                            ("models/transformer_block.circuit", "auto")):
        circuit = circuitdsl.compile(model, backend="jax", lowering=lowering)
        params = circuit.init()
        state = circuit.initial_state(2)
        inputs = {p.name: np.zeros((2, *[a.size for a in p.shape]), np.float32) for p in circuit.ir.inputs}
        equations = [e for e in _equations(jax.make_jaxpr(circuit.step)(params, state, inputs).jaxpr)
                     if e.primitive.name in ("dot_general", "conv_general_dilated")]
        assert equations, model
        for e in equations:
            assert str(e.params["precision"]) in ("(Precision.HIGHEST, Precision.HIGHEST)", "Precision.HIGHEST"), \
                (model, e)


def _equations(jaxpr):  # type: ignore[no-untyped-def]
    """Every equation of a jaxpr, those of the jaxprs inside it (pjit, custom_jvp, scan) included."""
    for e in jaxpr.eqns:
        yield e
        for value in e.params.values():
            for inner in (value if isinstance(value, (list, tuple)) else [value]):
                inner = getattr(inner, "jaxpr", inner)
                if hasattr(inner, "eqns"):
                    yield from _equations(inner)
