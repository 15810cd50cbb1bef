"""The JAX backend's state is one packed array read as a Mapping (circuitdsl/backends/packed_state.py): a jitted step
takes and returns one array for it, it reads like the torch module's dict, a dict is still accepted and checked,
and grad, vmap, scan and float64 work through it."""

from __future__ import annotations

import numpy as np
import pytest

import circuitdsl
from circuitdsl.backends.interface import CircuitRuntimeError

jax = pytest.importorskip("jax")
jnp = pytest.importorskip("jax.numpy")
torch = pytest.importorskip("torch")

SWIMMER = "models/ncap_swimmer.circuit"
RECURRENT = """
circuit Recurrent {
  input x[n = 3]
  output y[n = 3]
  param u : free = uniform(-0.5, 0.5), shared = false
  param m : inhibitory = -0.4
  population a[n = 3] : Tanh
  population b[n = 3] : LIF(threshold = 0.3)
  x -> a : one_to_one, weight = u
  a -> b : dense, weight = normal(0, 0.5)
  b -| a : pairs([[0, 1], [2, 0]]), weight = m
  y = a + b
}"""
SMOOTH = """
circuit Smooth {
  input x[n = 3]
  output y[n = 3]
  param u : free = uniform(-0.5, 0.5), shared = false
  population a[n = 3] : Leaky(tau = 5 ms)
  population b[n = 3] : Tanh
  x -> a : one_to_one, weight = u
  a -> b : dense, weight = normal(0, 0.5)
  b -> a : pairs([[0, 1], [2, 0]]), weight = normal(0, 0.5)
  y = a + b
}"""


@pytest.fixture(scope="module")
def swimmer() -> object:
    return circuitdsl.compile(SWIMMER, backend="jax")


@pytest.fixture(scope="module")
def recurrent() -> object:
    return circuitdsl.compile(circuitdsl.loads(RECURRENT), backend="jax")


def _inputs(batch: int, steps: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (batch, steps, 3)).astype(np.float32)


def test_a_jitted_step_takes_and_returns_one_array_for_the_state(swimmer: object) -> None:
    params, state, q = swimmer.init(), swimmer.initial_state(1), jnp.zeros((1, 5))
    assert len(jax.tree_util.tree_leaves(state)) == 1 and list(state) == ["osc_d.t"]
    closed = jax.make_jaxpr(lambda p, s, x: swimmer.step(p, s, {"q": x}))(params, state, q)
    # the hand-written step's arity: 4 weights, its clock and the joints in; the torque and the clock out
    assert len(closed.jaxpr.invars) == len(jax.tree_util.tree_leaves(params)) + 2 == 6
    assert len(closed.jaxpr.outvars) == 2
    outputs, after = jax.jit(lambda p, s, x: swimmer.step(p, s, {"q": x}))(params, state, q)
    assert len(jax.tree_util.tree_leaves(after)) == 1 and list(after) == list(state)
    np.testing.assert_array_equal(outputs["torque"], swimmer.step(params, state, q)[0]["torque"])
    _, final = jax.jit(lambda p, x: swimmer.rollout(p, {"q": x}))(params, jnp.zeros((1, 7, 5)))
    assert len(jax.tree_util.tree_leaves(final)) == 1


def test_the_state_reads_as_a_mapping_equal_to_the_torch_modules_dict(recurrent: object) -> None:
    module = circuitdsl.compile(circuitdsl.loads(RECURRENT))
    x = _inputs(2, 1, seed=3)[:, 0]
    _, state = recurrent.step(recurrent.init(), recurrent.initial_state(2), x)
    with torch.no_grad():
        _, expected = module(torch.from_numpy(x), module.initial_state(2))
    assert list(state.keys()) == list(expected) == ["b.mem", "b.spk", "b:out"] and len(state) == len(expected)
    assert "b:out" in state and "a:out" not in state and state.get("a:out") is None  # read by no next step
    assert state["b.mem"].shape == (2, 3)
    for key, value in state.items():
        np.testing.assert_allclose(np.asarray(value), expected[key].numpy(), atol=1e-6, err_msg=key)
    assert dict(state).keys() == {**state}.keys() == expected.keys()
    host = jax.device_get(state)  # a numpy buffer: its entries are numpy views, as a dict's would be
    assert isinstance(host["b:out"], np.ndarray) and np.array_equal(host["b:out"], state["b:out"])
    with pytest.raises(KeyError):
        state["a:out"]


def test_a_dict_state_is_checked_and_packed_and_steps_as_the_packed_one(swimmer: object) -> None:
    params, q = swimmer.init(), np.full((2, 5), 0.3, np.float32)
    packed = swimmer.step(params, swimmer.initial_state(2), q)[1]
    as_dict = {key: np.asarray(value) for key, value in packed.items()}
    from_dict, from_packed = swimmer.step(params, as_dict, q), swimmer.step(params, packed, q)
    np.testing.assert_array_equal(from_dict[0]["torque"], from_packed[0]["torque"])
    assert len(jax.tree_util.tree_leaves(from_dict[1])) == 1
    np.testing.assert_array_equal(jax.tree_util.tree_leaves(from_dict[1])[0],
                                  jax.tree_util.tree_leaves(from_packed[1])[0])
    edited = {**packed, "osc_d.t": np.full((2, 1), 30.0, np.float32)}  # half a period on: the phases swap
    np.testing.assert_array_equal(swimmer.step(params, edited, np.zeros((2, 5), np.float32), record=["osc_d"])[0][
        "osc_d"], 0.0)
    written = swimmer.initial_state(2)
    sharing = jax.tree_util.tree_map(lambda buffer: buffer, written)  # another state holding the same array
    written["osc_d.t"] = np.full((2, 1), 30.0)  # as a dict entry is set; converted to the state's dtype
    assert written["osc_d.t"].dtype == jnp.float32 and float(written["osc_d.t"][1, 0]) == 30.0
    np.testing.assert_array_equal(swimmer.step(params, written, q)[0]["torque"], swimmer.step(params, edited, q)[0][
        "torque"])
    np.testing.assert_array_equal(sharing["osc_d.t"], 0.0)  # the array itself is not written to
    with pytest.raises(CircuitRuntimeError, match="state has no entry 'osc_d.tt'; did you mean 'osc_d.t'"):
        written["osc_d.tt"] = np.zeros((2, 1))
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[2, 3\]; expected \[2, 1\]"):
        written["osc_d.t"] = np.zeros((2, 3))
    with pytest.raises(CircuitRuntimeError, match=r"state has no entry 'Bd:out'; .*record=\['Bd'\]"):
        written["Bd:out"] = np.zeros((2, 5))
    with pytest.raises(CircuitRuntimeError, match=r"state 'osc_d.t' has shape \[4, 1\]; expected \[batch=2, 1\]"):
        swimmer.step(params, swimmer.initial_state(4), q)  # a packed state of another batch: named by entry
    with pytest.raises(CircuitRuntimeError, match="state is a ndarray"):
        swimmer.step(params, np.zeros((2, 2), np.float32), q)


def test_a_users_own_scan_over_the_step_carries_one_array_and_equals_the_rollout(recurrent: object) -> None:
    params, x = recurrent.init(), _inputs(2, 20)

    def one(state: object, x_t: jax.Array) -> tuple[object, jax.Array]:
        outputs, state = recurrent.step(params, state, x_t)
        return state, outputs["y"]

    closed = jax.make_jaxpr(lambda s, xs: jax.lax.scan(one, s, xs))(recurrent.initial_state(2), jnp.swapaxes(x, 0, 1))
    (scan,) = [e for e in closed.jaxpr.eqns if e.primitive.name == "scan"]
    assert scan.params["num_carry"] == 1
    final, ys = jax.jit(lambda s, xs: jax.lax.scan(one, s, xs))(recurrent.initial_state(2), jnp.swapaxes(x, 0, 1))
    outputs, state = recurrent.rollout(params, x)
    np.testing.assert_allclose(jnp.swapaxes(ys, 0, 1), outputs["y"], atol=1e-6)
    for key in state:
        np.testing.assert_allclose(final[key], state[key], atol=1e-6, err_msg=key)


def test_grad_flows_through_the_packed_state_of_a_step_and_a_rollout() -> None:
    circuit = circuitdsl.compile(circuitdsl.loads(SMOOTH), backend="jax")
    params, x = circuit.init(), _inputs(2, 12, seed=1)
    start = circuit.rollout(params, x[:, :5])[1]

    def loss(p: object, s: object) -> jax.Array:
        outputs, state = circuit.rollout(p, x[:, 5:], state=s)
        return (outputs["y"] ** 2).sum() + (circuit.step(p, state, x[:, -1])[1]["a.v"] ** 2).sum()

    by_params, by_state = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, start)
    assert list(by_state) == list(start) and by_state["a.v"].shape == (2, 3)
    assert float(jnp.abs(by_params["u"]).sum()) > 0
    eps, bump = 1e-2, np.zeros((2, 3), np.float32)  # central differences along two entries of the state
    for key, (i, j) in (("a.v", (1, 2)), ("b:out", (0, 0))):  # b's output is read a step later by b -> a
        bump[:] = 0
        bump[i, j] = eps
        plus, minus = ({**start, key: start[key] + sign * bump} for sign in (1, -1))
        numeric = (loss(params, plus) - loss(params, minus)) / (2 * eps)
        np.testing.assert_allclose(by_state[key][i, j], numeric, rtol=1e-2, atol=1e-3, err_msg=key)


def test_vmap_maps_over_stacked_packed_states(recurrent: object) -> None:
    params, x = recurrent.init(), _inputs(4, 8)
    states = jax.tree_util.tree_map(lambda v: v[:, None], recurrent.initial_state(4))  # 4 members of batch 1
    step = jax.jit(jax.vmap(recurrent.step, in_axes=(None, 0, 0)))
    for t in range(8):
        outputs, states = step(params, states, x[:, None, t])
    assert [leaf.shape for leaf in jax.tree_util.tree_leaves(states)] == [(4, 1, 9)]  # b.v, b:out (read by b -| a)
    expected, final = recurrent.rollout(params, x)
    np.testing.assert_allclose(outputs["y"][:, 0], expected["y"][:, -1], atol=1e-6)
    for key in final:
        np.testing.assert_allclose(states[key][:, 0], final[key], atol=1e-6, err_msg=key)


def test_float64_packs_the_state_in_float64_and_converts_a_float32_one(recurrent: object) -> None:
    with jax.enable_x64(True):
        circuit = circuitdsl.compile(circuitdsl.loads(RECURRENT), backend="jax", dtype="float64")
        params, x = circuit.init(), _inputs(2, 6).astype(np.float64)
        assert jax.tree_util.tree_leaves(circuit.initial_state(2))[0].dtype == jnp.float64
        outputs, state = jax.jit(circuit.rollout)(params, x)
        assert jax.tree_util.tree_leaves(state)[0].dtype == jnp.float64
        single = circuit.initial_state(2, dtype="float32")
        assert jax.tree_util.tree_leaves(single)[0].dtype == jnp.float32
        _, after = circuit.step(params, single, x[:, 0])
        assert jax.tree_util.tree_leaves(after)[0].dtype == jnp.float64
        module = circuitdsl.compile(circuitdsl.loads(RECURRENT), dtype="float64")
        torch_outputs, torch_state = module.rollout(torch.from_numpy(x))
        np.testing.assert_allclose(outputs["y"], torch_outputs["y"].detach().numpy(), rtol=1e-12, atol=1e-12)
        for key, value in torch_state.items():
            np.testing.assert_allclose(state[key], value.detach().numpy(), rtol=1e-12, atol=1e-12, err_msg=key)
