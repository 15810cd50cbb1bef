"""Operator projections on grid axes: the spectral layer against a direct FFT, both backends, resolution, errors."""

from __future__ import annotations

import ast
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.backends.jax_backend import JaxOps
from circuitdsl.backends.operators import resample
from circuitdsl.backends.torch_backend import TorchOps
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


@pytest.mark.parametrize("n", [16, 24])
def test_backends_agree_on_every_operator_and_its_gradients(n: int) -> None:
    """At the elaborated 16 points and at 24, where the V-cycle runs on its own 16 between two resamplings."""
    ir = circuitdsl.loads(LAYERS).at_resolution(x=n)
    torch_handle, jax_handle = (harness.build(ir, b, seed=2) for b in harness.BACKENDS)
    u = np.random.default_rng(1).standard_normal((3, 2, n)).astype(np.float32)
    weights = {"v": np.random.default_rng(2).standard_normal((3, 2, n)).astype(np.float32)}
    (out_t, grad_t), (out_j, grad_j) = (harness.grad(h, {"u": u}, weights) for h in (torch_handle, jax_handle))
    np.testing.assert_allclose(out_j["v"], out_t["v"], atol=1e-5, rtol=1e-5)
    assert set(grad_t) == set(grad_j) and all(np.abs(g).sum() > 0 for g in grad_t.values())
    for key in grad_t:
        np.testing.assert_allclose(grad_j[key], grad_t[key], atol=1e-4, rtol=1e-4, err_msg=key)


def test_outputs_converge_as_the_grid_is_refined() -> None:
    """Every layer, the V-cycle included (elaborated at 16 points): a smooth input's output at the points a grid
    shares with the finest equals the finest's; an input with a kink converges at second order."""
    smooth = outputs_on_fields(LAYERS, (16, 32, 64, 256), lambda x: np.sin(2 * np.pi * x) + np.cos(4 * np.pi * x) / 2)
    for n in (16, 32, 64):
        np.testing.assert_allclose(smooth[n], smooth[256][:: 256 // n], atol=1e-5)
    kink = outputs_on_fields(LAYERS, (16, 32, 64, 128, 1024), lambda x: np.abs(np.sin(np.pi * x)))
    errors = [np.abs(kink[n] - kink[1024][:: 1024 // n]).max() for n in (16, 32, 64, 128)]
    assert all(coarse > 3 * fine for coarse, fine in pairwise(errors)) and errors[-1] < 1e-4, errors


@pytest.mark.parametrize(("n", "m"), [(16, 64), (64, 16), (16, 24), (24, 16), (15, 32), (32, 15), (8, 9)])
def test_resampling_is_exact_for_band_limited_fields(backend: str, n: int, m: int) -> None:
    """Frequencies up to the smaller grid's highest (at its Nyquist a cosine) come back exactly, on each trailing
    periodic axis of a 3D field; a linear function does on a non-periodic axis."""
    ops = TorchOps() if backend == "torch" else JaxOps()
    top = min(n, m) // 2

    def field(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """[x, x, t]: a band-limited product over the periodic axes, linear in t."""
        wave = 1 + np.sin(2 * np.pi * x) - 0.3 * np.cos(2 * np.pi * top * x + (min(n, m) % 2))
        return wave[:, None, None] * wave[None, :, None] * (1 + 2 * t)

    u = field(np.arange(n) / n, np.linspace(0, 1, 4))[None].astype(np.float32)
    out = resample(ops.asarray(u), [m, m, 7], [True, True, False], ops)
    wanted = field(np.arange(m) / m, np.linspace(0, 1, 7))
    np.testing.assert_allclose(np.asarray(out)[0], wanted, atol=1e-5, rtol=1e-5)


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
    multigrid = [p.operator for p in finer.projections if p.operator is not None and p.operator.kind == "multigrid"]
    assert [o.points for o in multigrid] == [[16]] and ir.at_resolution(x=17).population("h").shape[1].size == 17
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
    ("operator(spectral, modes = 4)", "operator(spectral, modes = [4, 4])", "E301", "[4, 4]"),
    ("over x", "over channel", "E304", "channel"),
    ("over x", "over x, x", "E304", "x"),
    ("periodic)", "periodc)", "E203", "periodc"),
    ("grid(n,", "grid(1,", "E304", "1"),
    ("domain = [0, 1]", "domain = [1, 0]", "E301", "[1, 0]"),
    ("over x", "over x, one_to_one", "E304", "one_to_one"),
    ("over x", "over x, weight = 2", "E203", "weight"),
    ("u -> h", "u -| h", "E301", "u -| h"),
    ("output v[channel = 3, x = X]\n",
     ("output v[channel = 3, x = X]\n  population k[channel = 3] : Identity\n  u -> k : dense over channel\n"),
     "E302", "u -> k"),
])
def test_mistakes_are_reported_where_they_are(old: str, new: str, code: str, caret: str) -> None:
    assert_reported(SPECTRAL.replace(old, new), code, caret)


def assert_reported(text: str, code: str, caret: str) -> None:
    """Loading `text` fails with `code`, its caret under the text starting `caret`."""
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


SPECTRAL_2D = """
circuit Spectral2d {
  let X = grid(16, domain = [0, 1], periodic)
  let Y = grid(12, domain = [0, 2], periodic)
  input  u[channel = 2, x = X, y = Y]
  output v[channel = 3, x = X, y = Y]
  population h[channel = 3, x = X, y = Y] : Identity
  u -> h : operator(spectral, modes = [4, 3]) over x, y
  v = h
}"""
LAYERS_2D = """
circuit Layers2d(n: int = 16) {
  let X = grid(n, domain = [0, 1], periodic)
  let Y = grid(n, domain = [0, 1], periodic)
  input  u[x = X, y = Y]
  output v[x = X, y = Y]
  population lift[channel = 2, x = X, y = Y] : Identity
  population h[channel = 2, x = X, y = Y] : Tanh
  population g[channel = 2, x = X, y = Y] : Relu
  population out[x = X, y = Y] : Identity
  u -> lift : dense over channel, bias = function
  lift -> h : operator(spectral, modes = [4, 4]) over x, y
  lift -> h : dense over channel, bias = function
  h -> g : operator(multigrid, levels = 2, smoothing = [1, 1])
  g -> out : dense over channel
  v = out
}"""


def fourier_window(m1: int, m2: int) -> tuple[list[int], slice]:
    """The kept 2D frequencies in FFT order: |k1| < m1 on the first axis, k2 < m2 on the last (rfft) axis."""
    return [*range(m1), *range(-(m1 - 1), 0)], slice(0, m2)


def test_2d_spectral_projection_equals_a_direct_fft(backend: str) -> None:
    """np.fft.rfft2 over (x, y), the window |k1| < 4, k2 < 3 mixed by complex weights [in, out, 7, 3]."""
    handle = harness.build(SPECTRAL_2D, backend)
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((2, 2, 3, 7, 3)).astype(np.float32)  # real, imag; in, out, k1, k2
    harness.set_params(handle, {"u -> h/weight": weights.reshape(-1)})
    u = rng.standard_normal((5, 1, 2, 16, 12)).astype(np.float32)
    v = harness.run(handle, {"u": u})["v"][:, 0]
    rows, columns = fourier_window(4, 3)
    coefficients = np.fft.rfft2(u[:, 0])[:, :, rows, columns] / (16 * 12)
    full = np.zeros((5, 3, 16, 7), complex)
    full[:, :, rows, columns] = np.einsum("bixy,ioxy->boxy", coefficients, weights[0] + 1j * weights[1])
    np.testing.assert_allclose(v, np.fft.irfft2(full, (16, 12)) * 16 * 12, atol=1e-5)


def _non_periodic(text: str, *axes: str) -> str:
    """The circuit with the named grid axes (X, Y) not periodic, on n + 1 points: both ends on the grid."""
    for axis in axes:
        text = text.replace(f"let {axis} = grid(n, domain = [0, 1], periodic)", f"let {axis} = grid(n + 1, domain = [0, 1])")
    return text


@pytest.mark.parametrize("text", [LAYERS_2D, _non_periodic(LAYERS_2D, "X", "Y"), _non_periodic(LAYERS_2D, "Y"),
                                  _non_periodic(LAYERS, "X")], ids=["2d", "2d-non-periodic", "2d-mixed", "1d-non-periodic"])
def test_backends_agree_on_2d_and_non_periodic_operators_and_gradients(text: str) -> None:
    """Spectral, multigrid, dense and function-valued biases: outputs within 1e-5, every gradient within 1e-4."""
    ir = circuitdsl.loads(text)
    torch_handle, jax_handle = (harness.build(ir, b, seed=3) for b in harness.BACKENDS)
    shape = [a.size for a in ir.inputs[0].shape]
    u = np.random.default_rng(1).standard_normal((2, 2, *shape)).astype(np.float32)
    weights = {"v": np.random.default_rng(2).standard_normal((2, 2, *shape)).astype(np.float32)}
    (out_t, grad_t), (out_j, grad_j) = (harness.grad(h, {"u": u}, weights) for h in (torch_handle, jax_handle))
    np.testing.assert_allclose(out_j["v"], out_t["v"], atol=1e-5, rtol=1e-5)
    assert set(grad_t) == set(grad_j) and all(np.abs(g).sum() > 0 for g in grad_t.values())
    for key in grad_t:
        np.testing.assert_allclose(grad_j[key], grad_t[key], atol=1e-4, rtol=1e-4, err_msg=key)


def outputs_on_fields(text: str, sizes: tuple[int, ...], field: Callable[..., np.ndarray]) -> dict[int, np.ndarray]:
    """The output `v` with n points on every grid axis of input `u`, for each n in `sizes`, the same params
    throughout; `field` gets each axis' coordinates in [0, 1] (both ends on a non-periodic axis)."""
    ir = circuitdsl.loads(text)
    trained = circuitdsl.compile(ir, seed=4)
    outputs = {}
    for n in sizes:
        resized = ir.at_resolution(**{a.name: n for a in ir.inputs[0].shape})
        module = circuitdsl.compile(resized)
        module.load_state_dict(trained.state_dict())
        coordinates = [np.arange(n) / n if a.domain and a.domain.periodic else np.linspace(0, 1, n)
                       for a in ir.inputs[0].shape]
        u = field(*np.meshgrid(*coordinates, indexing="ij"))
        outputs[n] = module(torch.tensor(u[None], dtype=torch.float32))[0]["v"].detach().numpy()[0]
    return outputs


def test_2d_outputs_converge_as_the_grid_is_refined() -> None:
    """Every layer, the V-cycle (elaborated at 16 points a side) included, on a band-limited input: the outputs
    on 16, 32 and 64 points a side agree at the points they share."""
    def field(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.sin(2 * np.pi * x) * np.cos(2 * np.pi * y) + 0.5 * np.cos(4 * np.pi * (x + y))

    outputs = outputs_on_fields(LAYERS_2D, (16, 32, 64), field)
    for n in (16, 32):
        np.testing.assert_allclose(outputs[n], outputs[64][:: 64 // n, :: 64 // n], atol=1e-5)


def test_non_periodic_spectral_output_is_resolution_consistent() -> None:
    """A smooth field that is not periodic, on 17 to 257 points (both ends on the grid, zero-padded to 1.25 times
    the domain): the outputs at the shared points converge to the finest's."""
    text = _non_periodic(LAYERS.replace("operator(multigrid, levels = 2, smoothing = [1, 0])", "dense over channel"), "X")
    outputs = outputs_on_fields(text, (17, 33, 65, 129, 257), lambda x: x ** 2 + np.sin(3 * x))
    errors = [np.abs(outputs[n] - outputs[257][:: 256 // (n - 1)]).max() for n in (17, 33, 65, 129)]
    assert all(coarse > 1.5 * fine for coarse, fine in pairwise(errors)) and errors[-1] < 1e-2, errors


def test_2d_and_non_periodic_fields_run_at_other_resolutions() -> None:
    ir = circuitdsl.loads(_non_periodic(LAYERS_2D, "X"))
    spectral = next(p.operator for p in ir.projections if p.operator is not None and p.operator.kind == "spectral")
    assert (spectral.axes, spectral.periodic, spectral.modes) == (["x", "y"], [False, True], [4, 4])
    assert ir.parameter("lift -> h.weight").shape == [2 * 2 * 2 * 7 * 4]  # real, imag; in, out, |k1| < 4, k2 < 4
    assert ir.parameter("u -> lift.bias").shape == [2, 15, 15]  # out channels, 15 functions of x, 15 of y
    finer = ir.at_resolution(x=33, y=32)  # from 17 x 16
    assert [a.size for a in finer.population("h").shape] == [2, 33, 32] and finer.parameters == ir.parameters
    assert CircuitIR.from_json(finer.to_json()) == finer
    out = circuitdsl.compile(finer)(torch.zeros(1, 33, 32))[0]["v"]
    assert out.shape == (1, 33, 32)
    with pytest.raises(ValueError, match="at most 3 modes"):
        ir.at_resolution(y=4)


def test_the_diagram_names_a_2d_operator_and_its_axes() -> None:
    source = circuitdsl.draw(circuitdsl.loads(_non_periodic(LAYERS_2D, "X"))).source
    assert "operator(spectral, modes=[4, 4]) over x, y" in source
    assert "operator(multigrid, levels=2, smoothing=1/1) over x, y" in source
    assert "dense over channel + bias(x, y)" in source and "x=17 on [0,1] × y=16 on [0,1)" in source


@pytest.mark.parametrize(("old", "new", "code", "caret"), [
    ("modes = [4, 4]", "modes = 4", "E301", "4"),
    ("modes = [4, 4]", "modes = [4, 4, 4]", "E301", "[4, 4, 4]"),
    ("modes = [4, 4]", "modes = [9, 4]", "E304", "[9, 4]"),  # |k1| < 9 is 17 frequencies on 16 points
    ("modes = [4, 4]) over x, y", "modes = [4, 4]) over y, x", "E304", "y, x"),
    ("modes = [4, 4]) over x, y", "modes = [4, 4]) over x", "E304", "x"),
    ("modes = [4, 4]) over x, y", "modes = [4, 4]) over x, z", "E304", "z"),
    ("u -> lift : dense over channel", "u -> lift : dense over channel, y", "E304", "y"),
    ("let X = grid(n, domain = [0, 1], periodic)", "let X = grid(n, domain = [0, 1])", "E304", "2"),
])
def test_2d_mistakes_are_reported_where_they_are(old: str, new: str, code: str, caret: str) -> None:
    """On 16 x 16 points; a non-periodic x of 16 points does not halve onto its end points (it needs 2k + 1)."""
    assert_reported(LAYERS_2D.replace(old, new), code, caret)


def test_elaboration_and_the_ir_do_not_import_backends() -> None:
    """An operator's weight layout is IR data (circuitdsl/ir/operators.py): elaboration never reads a backend."""
    package = Path(circuitdsl.__file__).parent
    for path in [*package.joinpath("elaborate").glob("*.py"), *package.joinpath("ir").glob("*.py")]:
        nodes = list(ast.walk(ast.parse(path.read_text(encoding="utf-8"))))
        imported = [n.module or "" for n in nodes if isinstance(n, ast.ImportFrom)]
        imported += [alias.name for n in nodes if isinstance(n, ast.Import) for alias in n.names]
        assert not [m for m in imported if m.startswith("circuitdsl.backends")], path


def test_a_compiled_circuit_runs_at_another_resolution_on_the_same_parameters() -> None:
    """`module.at_resolution(x = 64)` shares the very parameters (gradients reach them); JAX takes the same params."""
    module = circuitdsl.compile("models/operator_burgers.circuit", seed=1, n=16)
    fine = module.at_resolution(x=64)
    assert fine.ir.inputs[0].shape[0].size == 64
    assert [id(p) for p in fine.parameters()] == [id(p) for p in module.parameters()]
    x = torch.sin(2 * torch.pi * torch.arange(64) / 64).reshape(1, 64)
    out = fine(x)[0]["u1"]
    out.square().sum().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters() if p.requires_grad)
    jax_circuit = circuitdsl.compile("models/operator_burgers.circuit", backend="jax", seed=1, n=16)
    jax_out = jax_circuit.at_resolution(x=64).step(jax_circuit.init(), inputs=x.numpy())[0]["u1"]
    np.testing.assert_allclose(np.asarray(jax_out), out.detach().numpy(), atol=1e-5)
