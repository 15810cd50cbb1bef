"""Operator projections on grid axes: the spectral layer against a direct FFT, both backends, resolution, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.ir.model import CircuitIR
from tests import backend_harness as harness

SPECTRAL = """
circuit Spectral(n: int = 16) {
  let X = grid(n, domain = [0, 1], periodic)
  input  u[channel = 2, x = X]
  output v[channel = 3, x = X]
  population h[channel = 3, x = X] : Identity
  u -> h : operator(spectral, modes = 4) over x
  v = h
}"""
LAYERS = """
circuit Layers(n: int = 16) {
  let X = grid(n, domain = [0, 1], periodic)
  input  u[x = X]
  output v[x = X]
  population lift[channel = 3, x = X] : Identity
  population h[channel = 3, x = X] : Tanh
  population g[channel = 3, x = X] : Relu
  population out[x = X] : Identity
  u -> lift : dense over channel, bias = function
  lift -> h : operator(spectral, modes = 5)
  lift -> h : dense over channel, bias = function
  h -> g : operator(multigrid, levels = 2, smoothing = [1, 0])
  g -> out : dense over channel
  v = out
}"""


@pytest.fixture(params=harness.BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_spectral_projection_equals_a_direct_fft(backend: str) -> None:
    handle = harness.build(SPECTRAL, backend)
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((2, 2, 3, 4)).astype(np.float32)  # real, imag; in, out, mode
    harness.set_params(handle, {"u -> h/weight": weights.reshape(-1)})
    u = rng.standard_normal((5, 1, 2, 16)).astype(np.float32)
    v = harness.run(handle, {"u": u})["v"][:, 0]
    coefficients = np.fft.rfft(u[:, 0], axis=-1)[..., :4] / 16
    mixed = np.einsum("bik,iok->bok", coefficients, weights[0] + 1j * weights[1])
    np.testing.assert_allclose(v, np.fft.irfft(mixed, 16, axis=-1) * 16, atol=1e-5)


def test_backends_agree_on_every_operator_and_its_gradients() -> None:
    torch_handle, jax_handle = (harness.build(LAYERS, b, seed=2) for b in harness.BACKENDS)
    u = np.random.default_rng(1).standard_normal((3, 2, 16)).astype(np.float32)
    weights = {"v": np.random.default_rng(2).standard_normal((3, 2, 16)).astype(np.float32)}
    (out_t, grad_t), (out_j, grad_j) = (harness.grad(h, {"u": u}, weights) for h in (torch_handle, jax_handle))
    np.testing.assert_allclose(out_j["v"], out_t["v"], atol=1e-5, rtol=1e-5)
    assert set(grad_t) == set(grad_j) and all(np.abs(g).sum() > 0 for g in grad_t.values())
    for key in grad_t:
        np.testing.assert_allclose(grad_j[key], grad_t[key], atol=1e-4, rtol=1e-4, err_msg=key)


def test_outputs_converge_as_the_grid_is_refined() -> None:
    """The same params on finer grids: a smooth input's output at the shared points equals the finest's.
    (Spectral and pointwise layers only: the V-cycle's 3-tap convolutions span grid points, not domain units.)"""
    ir = circuitdsl.loads(LAYERS.replace("operator(multigrid, levels = 2, smoothing = [1, 0])", "dense over channel"))
    trained = circuitdsl.compile(ir, seed=4)
    outputs = {}
    for n in (16, 32, 64, 256):
        module = circuitdsl.compile(ir.at_resolution(x=n))
        module.load_state_dict(trained.state_dict())
        x = np.arange(n) / n
        u = np.sin(2 * np.pi * x) + 0.5 * np.cos(4 * np.pi * x)
        outputs[n] = module(torch.tensor(u[None], dtype=torch.float32))[0]["v"].detach().numpy()[0]
    finest = outputs[256]
    for n in (16, 32, 64):
        np.testing.assert_allclose(outputs[n], finest[:: 256 // n], atol=1e-5)


def test_spectral_output_is_the_same_at_every_resolution_for_a_band_limited_input() -> None:
    ir = circuitdsl.loads(SPECTRAL)
    module = circuitdsl.compile(ir)
    outputs = {}
    for n in (16, 64):
        runner = circuitdsl.compile(ir.at_resolution(x=n))
        runner.load_state_dict(module.state_dict())
        x = np.arange(n) / n
        u = np.stack([np.sin(2 * np.pi * x), np.cos(6 * np.pi * x)])[None].astype(np.float32)
        outputs[n] = runner(torch.from_numpy(u))[0]["v"].detach().numpy()[0]
    np.testing.assert_allclose(outputs[64][:, ::4], outputs[16], atol=1e-5)


def test_ir_carries_the_grid_and_the_operator_and_round_trips() -> None:
    ir = circuitdsl.loads(LAYERS)
    axis = ir.population("h").shape[1]
    assert axis.domain is not None and axis.domain.periodic and axis.domain.measure(axis.size) == 1 / 16
    kinds = [p.operator.kind for p in ir.projections if p.operator is not None]
    assert kinds == ["dense", "spectral", "dense", "multigrid", "dense"]
    assert CircuitIR.from_json(ir.to_json()) == ir
    finer = ir.at_resolution(x=64)
    assert finer.population("h").shape[1].size == 64 and finer.parameters == ir.parameters
    with pytest.raises(ValueError, match="halve"):
        ir.at_resolution(x=17)
    with pytest.raises(ValueError, match="no grid axis"):
        ir.at_resolution(y=32)


def test_the_diagram_names_the_operator_and_its_axis() -> None:
    source = circuitdsl.draw(circuitdsl.loads(LAYERS)).source
    assert "operator(spectral, modes=5) over x" in source
    assert "operator(multigrid, levels=2, smoothing=1/0) over x" in source
    assert "dense over channel + bias(x)" in source and "x=16 on [0,1)" in source


@pytest.mark.parametrize(("old", "new", "code", "caret"), [
    ("operator(spectral, modes = 4)", "operator(spectra, modes = 4)", "E201", "spectra"),
    ("operator(spectral, modes = 4)", "operator(spectral, mode = 4)", "E203", "mode"),
    ("operator(spectral, modes = 4)", "operator(spectral, modes = 10)", "E304", "10"),
    ("operator(spectral, modes = 4)", "operator(spectral)", "E204", "operator(spectral)"),
    ("over x", "over y", "E304", "y"),
    ("periodic)", ")", "E304", "u -> h"),
    ("periodic)", "periodc)", "E203", "periodc"),
    ("grid(n,", "grid(1,", "E304", "1"),
    ("domain = [0, 1]", "domain = [1, 0]", "E301", "[1, 0]"),
    ("over x", "over x, one_to_one", "E203", "one_to_one"),
    ("u -> h", "u -| h", "E301", "u -| h"),
    ("output v[channel = 3, x = X]\n", "output v[channel = 3, x = X]\n  population k[channel = 3] : Identity\n"
     "  u -> k : dense over channel\n", "E302", "u -> k"),
])
def test_mistakes_are_reported_where_they_are(old: str, new: str, code: str, caret: str) -> None:
    text = SPECTRAL.replace(old, new)
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(text)
    span = error.value.span
    line = text.splitlines()[span.line - 1]
    assert (error.value.code, line[span.column - 1:span.end_column - 1][:len(caret)]) == (code, caret)


def test_did_you_mean_for_a_misspelt_operator_and_axis() -> None:
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(LAYERS.replace("u -> lift : dense over channel", "u -> lift : dense over chanel"))
    assert "did you mean 'channel'" in str(error.value)
    with pytest.raises(circuitdsl.CircuitError) as error:
        circuitdsl.loads(LAYERS.replace("operator(multigrid", "operator(multgrid"))
    assert "did you mean 'multigrid'" in str(error.value)


def test_over_and_grid_are_only_where_they_belong() -> None:
    for text, code in [("circuit A {\n  let g = operator(spectral, modes = 2)\n}", "E206"),
                       ("circuit A {\n  input u\n  population h : Identity\n  u -> h : u over x\n}", "E305")]:
        with pytest.raises(circuitdsl.CircuitError) as error:
            circuitdsl.loads(text)
        assert error.value.code == code
