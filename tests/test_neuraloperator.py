"""The spectral operator against neuraloperator's SpectralConv holding the same complex weights, on both backends.

`operator(spectral, modes = m)` keeps the rfft coefficients k = 0 .. m - 1 of the last axis; SpectralConv keeps
n_modes // 2 + 1 there, so `n_modes = (2m - 1,)` keeps the same m.  On another axis `modes = m` keeps |k| < m,
as `n_modes = 2m - 1` does: ours in FFT order (k = 0 .. m - 1, then -(m - 1) .. -1), its centred (fftshift).
Both use the 'forward' FFT norm.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import circuitdsl
from tests import backend_harness as harness

# neuraloperator is in the dev extra, so CI runs this file; the guard only spares an environment without it.
spectral_convolution = pytest.importorskip("neuralop.layers.spectral_convolution")

SPECTRAL = """
circuit Spectral(n: int = 32, modes: int = 5) {
  let X = grid(n, domain = [0, 1], periodic)
  input  u[channel = 3, x = X]
  output v[channel = 4, x = X]
  population h[channel = 4, x = X] : Identity
  u -> h : operator(spectral, modes = modes) over x
  v = h
}"""
SPECTRAL_2D = """
circuit Spectral2D(nx: int = 16, ny: int = 12, mx: int = 3, my: int = 4) {
  let X = grid(nx, domain = [0, 1], periodic)
  let Y = grid(ny, domain = [0, 2], periodic)
  input  u[channel = 2, x = X, y = Y]
  output v[channel = 3, x = X, y = Y]
  population h[channel = 3, x = X, y = Y] : Identity
  u -> h : operator(spectral, modes = [mx, my]) over x, y
  v = h
}"""


def spectral_conv(weights: np.ndarray) -> torch.nn.Module:
    """A bias-free SpectralConv whose dense (unfactorised) weight is exactly ours, `weights` [real/imag, in, out,
    *window], reordered from FFT order to its centred order on every grid axis but the last."""
    channels_in, channels_out, *window = weights.shape[1:]
    modes = (*window[:-1], 2 * window[-1] - 1)  # 2m - 1 on each axis; our window holds m on the last one
    layer = spectral_convolution.SpectralConv(channels_in, channels_out, n_modes=modes, bias=False)
    assert tuple(layer.weight.shape) == weights.shape[1:] and layer.fft_norm == "forward"
    centred = np.fft.fftshift(weights, axes=tuple(range(3, weights.ndim - 1)))
    with torch.no_grad():
        layer.weight.tensor.copy_(torch.complex(*torch.from_numpy(centred)))
    return layer


def assert_equal_outputs(handle: harness.Handle, weights: np.ndarray, u: np.ndarray) -> None:
    """Our operator and SpectralConv on the same weights and inputs u [batch, 1, channel, *grid] agree to float
    precision relative to the outputs' scale."""
    harness.set_params(handle, {"u -> h/weight": weights.reshape(-1)})
    ours = harness.run(handle, {"u": u})["v"][:, 0]
    with torch.no_grad():
        theirs = spectral_conv(weights)(torch.from_numpy(u[:, 0])).numpy()
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


@pytest.mark.parametrize("backend", harness.BACKENDS)
@pytest.mark.parametrize("modes", [1, 5, 17])  # 17 = 32 // 2 + 1: every coefficient, the Nyquist one included
def test_spectral_operator_equals_neuraloperators_spectral_conv(backend: str, modes: int) -> None:
    """The same weights give the same outputs, so `modes` means what FNO users expect."""
    rng = np.random.default_rng(modes)
    weights = rng.standard_normal((2, 3, 4, modes)).astype(np.float32)
    u = rng.standard_normal((6, 1, 3, 32)).astype(np.float32)
    assert_equal_outputs(harness.build(circuitdsl.loads(SPECTRAL, modes=modes), backend), weights, u)


# Even sizes on x: neuraloperator 2.0.0 undoes its fftshift with fftshift, not ifftshift, which on an odd size
# moves every output coefficient k to k - 1 (fixed upstream after 2.0.0, neuraloperator PR #688).
@pytest.mark.parametrize("backend", harness.BACKENDS)
@pytest.mark.parametrize(("nx", "ny", "mx", "my"), [(16, 12, 3, 4), (16, 13, 8, 7)])  # the second: all it admits
def test_2d_spectral_operator_equals_neuraloperators_spectral_conv(backend: str, nx: int, ny: int, mx: int,
                                                                   my: int) -> None:
    """On a 2D grid `modes = [mx, my]` is SpectralConv's `n_modes = (2 mx - 1, 2 my - 1)`, weight for weight."""
    rng = np.random.default_rng(nx + ny)
    weights = rng.standard_normal((2, 2, 3, 2 * mx - 1, my)).astype(np.float32)
    u = rng.standard_normal((4, 1, 2, nx, ny)).astype(np.float32)
    handle = harness.build(circuitdsl.loads(SPECTRAL_2D, nx=nx, ny=ny, mx=mx, my=my), backend)
    assert_equal_outputs(handle, weights, u)
