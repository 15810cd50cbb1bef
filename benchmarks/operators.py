"""Operator layers on 1D viscous Burgers (nu = 0.01): train at 128 points, test at 128, 256 and 512.

Data: circuitdsl.data.burgers solved at 512 points (seed 0), 500 training and 100 test pairs, subsampled to
128 (and 256) points.  Each model in models/ (operator_burgers: spectral; mgno_burgers: multigrid) is compiled
for torch and trained with Adam (weight decay 1e-4) under a one-cycle schedule (peak rate 3e-3, stepped per
batch), batch 20, on the relative L2 loss, for EPOCHS epochs (a V-cycle step costs ~4x a spectral one on a
CPU); the trained params then run at 256 and 512 points (`module.at_resolution`; the multigrid operator
keeps its V-cycle on its 128 points and resamples).  Prints the relative L2 test error at each resolution and
the training time.  If `neuraloperator` is installed, also prints the largest difference between our spectral
layer and its `SpectralConv` on the same weights.

Run: `python -m benchmarks.operators [--epochs N] [--models operator_burgers mgno_burgers]` (minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import circuitdsl
from circuitdsl.data.burgers import dataset

TRAIN, TEST, POINTS, BATCH, MAX_LR = 500, 100, 128, 20, 3e-3
EPOCHS = {"operator_burgers": 300, "mgno_burgers": 150}
SIZES = {"operator_burgers": {"width": 32, "modes": 16, "hidden": 64},  # the models' defaults are small, for tests
         "mgno_burgers": {"width": 24, "levels": 4, "hidden": 64}}


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ||prediction - target|| / ||target||."""
    return (torch.linalg.norm(prediction - target, dim=-1) / torch.linalg.norm(target, dim=-1)).mean()


def train(model: str, u0: np.ndarray, u1: np.ndarray, epochs: int) -> tuple[torch.nn.Module, float]:
    """The model compiled at 128 points and trained with Adam under a one-cycle schedule; (module, seconds)."""
    torch.manual_seed(0)
    module = circuitdsl.compile(f"models/{model}.circuit", seed=0, n=POINTS, **SIZES[model])
    optimiser = torch.optim.Adam(module.parameters(), lr=MAX_LR, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=MAX_LR, total_steps=epochs * TRAIN // BATCH)
    stride = u0.shape[1] // POINTS
    x, y = torch.from_numpy(u0[:TRAIN, ::stride]), torch.from_numpy(u1[:TRAIN, ::stride])
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in torch.randperm(TRAIN).split(BATCH):
            loss = relative_l2(module(x[batch])[0]["u1"], y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
    return module, time.perf_counter() - start


def test_error(module: torch.nn.Module, u0: np.ndarray, u1: np.ndarray, points: int) -> float:
    """The trained params at `points` points: relative L2 error on the test pairs."""
    runner = module.at_resolution(x=points)
    stride = u0.shape[1] // points
    with torch.no_grad():
        prediction = runner(torch.from_numpy(u0[TRAIN:, ::stride]))[0]["u1"]
    return float(relative_l2(prediction, torch.from_numpy(u1[TRAIN:, ::stride])))


def compare_with_neuraloperator() -> None:
    """Our spectral operator against neuraloperator's SpectralConv holding the same weights, if it is installed:
    `modes = 16` against `n_modes = (31,)`, which keeps 31 // 2 + 1 = 16 rfft coefficients on the last axis."""
    try:
        from neuralop.layers.spectral_convolution import SpectralConv
    except ImportError:
        print("neuraloperator is not installed: no SpectralConv comparison")
        return
    ours = circuitdsl.compile(circuitdsl.loads("""
circuit Spectral() {
  let X = grid(64, domain = [0, 1], periodic)
  input  u[channel = 4, x = X]
  output v[channel = 5, x = X]
  population h[channel = 5, x = X] : Identity
  u -> h : operator(spectral, modes = 16) over x
  v = h
}"""))
    layer = SpectralConv(4, 5, n_modes=(31,), bias=False)
    generator = torch.Generator().manual_seed(0)
    weights = torch.randn(2, 4, 5, 16, generator=generator)  # real, imaginary; in, out, mode
    u = torch.randn(3, 4, 64, generator=generator)
    with torch.no_grad():
        ours.params["u -> h/weight"].copy_(weights.reshape(-1))
        layer.weight.tensor.copy_(torch.complex(weights[0], weights[1]))  # its dense weight, exactly
        theirs = layer(u)
        difference = float((ours(u)[0]["v"] - theirs).abs().max())
    print(f"neuraloperator SpectralConv: largest difference {difference:.2e} (outputs up to "
          f"{float(theirs.abs().max()):.1f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, help="for every model (default: EPOCHS, per model)")
    parser.add_argument("--models", nargs="+", default=["operator_burgers", "mgno_burgers"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    u0, u1 = dataset(TRAIN + TEST, 512)
    print(f"data: {TRAIN} + {TEST} pairs at 512 points in {time.perf_counter() - start:.1f} s", flush=True)
    for model in args.models:
        epochs = args.epochs or EPOCHS[model]
        module, seconds = train(model, u0, u1, epochs)
        errors = {points: test_error(module, u0, u1, points) for points in (128, 256, 512)}
        shown = ", ".join(f"{points}: {error:.4f}" for points, error in errors.items())
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        print(f"{model} ({params} params, {epochs} epochs, {seconds:.0f} s): relative L2 test error {shown}",
              flush=True)
    compare_with_neuraloperator()


if __name__ == "__main__":
    main()
