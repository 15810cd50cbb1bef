"""Init rules as values of the language: drawn the same on both backends, checked against the param's shape."""

from __future__ import annotations

import json
from pathlib import Path

import jax
import numpy as np
import pytest

import circuitdsl
from circuitdsl.errors import CircuitError
from circuitdsl.ir.validate import InvalidIR

ROOT = Path(__file__).resolve().parents[1]
SWIMMER = ROOT / "models" / "ncap_swimmer.circuit"

DENSE = """
circuit Net(init: init = orthogonal()) {
  input x[i = 6]
  output y[j = 4]
  population h[j = 4] : Graded
  x -> h : all_to_all, weight = init
  y = h
}
"""


def _weights(rule: str, seed: int = 0, backend: str = "torch") -> np.ndarray:
    """The [4, 6] initial weight of DENSE under `rule`, as the backend's default init draws it."""
    compiled = circuitdsl.compile(circuitdsl.loads(DENSE, init=rule), backend=backend, seed=seed)
    if backend == "torch":
        return next(iter(compiled.state_dict().values())).numpy()
    return np.asarray(next(iter(compiled.init().values())))


def _inits(**args: object) -> dict[str, tuple[str, list[float]]]:
    return {p.name: (p.init.rule, p.init.args) for p in circuitdsl.load(SWIMMER, **args).parameters}


def test_swimmer_default_is_plus_minus_one() -> None:
    assert _inits() == {"osc": ("constant", [1.0]), "prop": ("constant", [1.0]), "ipsi": ("constant", [1.0]),
                        "contra": ("constant", [-1.0])}
    assert circuitdsl.load(SWIMMER).parameters == circuitdsl.load(SWIMMER, init="constant(1)").parameters


def test_swimmer_init_switch_mirrors_the_inhibitory_weight() -> None:
    inits = _inits(init="uniform(0, 1)")
    assert inits["osc"] == ("uniform", [0.0, 1.0]) and inits["contra"] == ("uniform", [-1.0, 0.0])
    inits = _inits(init="random_sign(1)", signs="none", shared="false")
    assert inits["ipsi"] == ("random_sign", [1.0]) and inits["contra"] == ("random_sign", [-1.0])


def test_two_sided_rule_on_a_sign_enforced_param_is_refused() -> None:
    with pytest.raises(CircuitError) as info:
        circuitdsl.load(SWIMMER, init="random_sign(1)")
    assert info.value.code == "E502" and "excitatory = init" in str(info.value)


@pytest.mark.parametrize("rule", ["orthogonal(2)", "low_rank(rank = 2, norm = 3)", "random_sign(0.5)",
                                  "low_rank(1, like = normal(0, 0.5))"])
def test_both_backends_draw_the_same_values(rule: str) -> None:
    torch_values = _weights(rule, seed=3)
    assert np.array_equal(torch_values, _weights(rule, seed=3, backend="jax"))
    assert not np.array_equal(torch_values, _weights(rule, seed=4))


def test_orthogonal_rows_are_orthonormal_times_gain() -> None:
    for weights in (_weights("orthogonal(2)"), np.asarray(next(iter(circuitdsl.compile(
            circuitdsl.loads(DENSE, init="orthogonal(2)"), backend="jax").init(jax.random.key(1)).values())))):
        np.testing.assert_allclose(weights @ weights.T, 4 * np.eye(4), atol=1e-5)


def test_low_rank_has_its_rank_and_norm() -> None:
    weights = _weights("low_rank(rank = 2, norm = 3)")
    assert np.linalg.matrix_rank(weights) == 2
    assert np.linalg.norm(weights) == pytest.approx(3, rel=1e-6)
    matched = circuitdsl.loads(DENSE, init="low_rank(rank = 1, like = uniform(-1, 1))").parameters[0]
    assert matched.init.args == [1.0, pytest.approx(np.sqrt(24 / 3))]  # E[w^2] = 1/3 over 24 elements


def test_random_sign_draws_both_signs_of_the_value() -> None:
    weights = circuitdsl.compile(circuitdsl.loads(DENSE.replace("6", "200"), init="random_sign(0.5)"))
    values = next(iter(weights.state_dict().values())).numpy()
    assert set(np.unique(values)) == {-0.5, 0.5} and abs((values > 0).mean() - 0.5) < 0.05
    mirrored = circuitdsl.compile(circuitdsl.loads(DENSE.replace("6", "200"), init="-random_sign(0.5)"))
    assert np.array_equal(next(iter(mirrored.state_dict().values())).numpy(), -values)


def test_glorot_and_kaiming_are_normals_of_the_fans() -> None:
    assert circuitdsl.loads(DENSE, init="glorot()").parameters[0].init.args == [0.0, pytest.approx(np.sqrt(0.2))]
    assert circuitdsl.loads(DENSE, init="kaiming(2)").parameters[0].init.args == [0.0, pytest.approx(2 / np.sqrt(6))]


def test_from_file_reads_npy_npz_and_safetensors(tmp_path: Path) -> None:
    save_file = pytest.importorskip("safetensors.numpy").save_file
    w = np.arange(24, dtype=np.float32).reshape(4, 6) / 10
    np.save(tmp_path / "w.npy", w)
    np.savez(tmp_path / "w.npz", W=w, b=np.zeros(3))
    save_file({"W": w}, str(tmp_path / "w.safetensors"))
    for call in ('from_file("w.npy")', 'from_file("w.npz", key = "W")', 'from_file("w.safetensors", key = "W")'):
        file = tmp_path / "net.circuit"
        file.write_text(DENSE.replace("orthogonal()", call))
        assert np.array_equal(next(iter(circuitdsl.compile(circuitdsl.load(file)).state_dict().values())).numpy(), w)


@pytest.mark.parametrize(("call", "code", "words"), [
    ('from_file("w.npz", key = "b")', "E302", "holds shape [3], but param 'x -> h.weight' has shape [4, 6]"),
    ('from_file("w.npz", key = "WW")', "E907", "did you mean 'W'?"),
    ('from_file("w.npz")', "E907", "pick one with key"),
    ('from_file("missing.npy")', "E907", "no weights file 'missing.npy'"),
    ('from_file("w.txt")', "E907", "not .npy, .npz or .safetensors"),
    ("low_rank(rank = 5, norm = 1)", "E801", "is above the matrix size: param 'x -> h.weight' has shape [4, 6]"),
])
def test_bad_init_rules_point_at_the_rule(tmp_path: Path, call: str, code: str, words: str) -> None:
    np.savez(tmp_path / "w.npz", W=np.zeros((4, 6)), b=np.zeros(3))
    file = tmp_path / "net.circuit"
    file.write_text(DENSE.replace("orthogonal()", call))
    with pytest.raises(CircuitError) as info:
        circuitdsl.load(file)
    assert info.value.code == code and words in str(info.value)
    assert info.value.span is not None and info.value.span.line == 2 and "net.circuit" in info.value.span.file


def test_matrix_rule_on_a_shared_scalar_names_the_param_and_shape() -> None:
    with pytest.raises(CircuitError) as info:
        circuitdsl.load(SWIMMER, init="orthogonal()", signs="none")
    text = str(info.value)
    assert info.value.code == "E302" and "param 'osc' has shape []" in text and "param osc" in text


@pytest.mark.parametrize("rule", ["random_sign(0.5)", "orthogonal(gain = 2)", "low_rank(rank = 2, norm = 3)",
                                  "glorot()", "kaiming()", "uniform(-1, 1)"])
def test_every_init_rule_survives_the_json_round_trip(rule: str) -> None:
    ir = circuitdsl.loads(DENSE, init=rule)
    assert circuitdsl.CircuitIR.from_json(ir.to_json()) == ir


def test_from_json_refuses_a_low_rank_init_above_the_matrix_size() -> None:
    data = json.loads(circuitdsl.loads(DENSE, init="low_rank(rank = 2, norm = 3)").to_json())
    data["parameters"][0]["init"]["args"][0] = 5.0  # the weight is 4 x 6
    with pytest.raises(InvalidIR, match="low_rank of rank 5 for a 4 x 6 matrix"):
        circuitdsl.CircuitIR.from_json(json.dumps(data))


FIXED_FROM_FILE = """
circuit C {
  input x[i = 3]
  population h[i = 3] : Graded
  param w : fixed = from_file("w.npy"), shared = false
  x ARROW h : one_to_one, weight = w
}
"""


def test_a_fixed_weight_from_a_file_keeps_to_its_arrow_and_draws(tmp_path: Path) -> None:
    """A fixed param's file values are checked against the arrow's sign (an error, not a traceback), and the
    diagram reads the sign from them."""
    file = tmp_path / "c.circuit"
    np.save(tmp_path / "w.npy", -np.ones(3))
    file.write_text(FIXED_FROM_FILE.replace("ARROW", "->"))
    with pytest.raises(CircuitError) as caught:
        circuitdsl.load(file)
    assert caught.value.code == "E501" and "'w' is fixed" in str(caught.value)
    file.write_text(FIXED_FROM_FILE.replace("ARROW", "-|"))
    dot = circuitdsl.draw(circuitdsl.load(file)).source
    assert "arrowhead=tee" in dot.replace('"', "")
