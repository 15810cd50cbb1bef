"""Operator layers on 1D viscous Burgers (nu = 0.01): train at 128 points, test at 128, 256 and 512.

Data: circuitdsl.data.burgers solved at 512 points (seed 0), 500 training and 100 test pairs, subsampled to
128 (and 256) points.  Each model in models/ (operator_burgers: spectral; mgno_burgers: multigrid) is compiled
for torch and trained with Adam (1e-3, weight decay 1e-4, the rate halved every half of the epochs), batch 20,
on the relative L2 loss; the trained params then run at 256 and 512 points (`CircuitIR.at_resolution`).
Prints the relative L2 test error at each resolution and the training time.  If `neuraloperator` is installed,
also prints the largest difference between our spectral layer and its `SpectralConv` on the same weights.

Run: `python -m benchmarks.operators [--epochs 100] [--models operator_burgers mgno_burgers]` (minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import circuitdsl
from circuitdsl.data.burgers import dataset

TRAIN, TEST, POINTS = 500, 100, 128
SIZES = {"operator_burgers": {"width": 32, "modes": 16, "hidden": 64},  # the models' defaults are small, for tests
         "mgno_burgers": {"width": 24, "levels": 4, "hidden": 64}}


def relative_l2(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean over samples of ||prediction - target|| / ||target||."""
    return (torch.linalg.norm(prediction - target, dim=-1) / torch.linalg.norm(target, dim=-1)).mean()


def train(model: str, u0: np.ndarray, u1: np.ndarray, epochs: int) -> tuple[torch.nn.Module, float]:
    """The model compiled at 128 points and trained; (module, seconds)."""
    torch.manual_seed(0)
    module = circuitdsl.compile(f"models/{model}.circuit", seed=0, n=POINTS, **SIZES[model])
    optimiser = torch.optim.Adam(module.parameters(), lr=1e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=max(epochs // 2, 1), gamma=0.5)
    stride = u0.shape[1] // POINTS
    x, y = torch.from_numpy(u0[:TRAIN, ::stride]), torch.from_numpy(u1[:TRAIN, ::stride])
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(TRAIN)
        for batch in order.split(20):
            loss = relative_l2(module(x[batch])[0]["u1"], y[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        schedule.step()
    return module, time.perf_counter() - start


def test_error(module: torch.nn.Module, u0: np.ndarray, u1: np.ndarray, points: int) -> float:
    """The trained params at `points` points: relative L2 error on the test pairs."""
    ir = module.ir.at_resolution(x=points)
    runner = circuitdsl.compile(ir)
    runner.load_state_dict(module.state_dict())
    stride = u0.shape[1] // points
    with torch.no_grad():
        prediction = runner(torch.from_numpy(u0[TRAIN:, ::stride]))[0]["u1"]
    return float(relative_l2(prediction, torch.from_numpy(u1[TRAIN:, ::stride])))


def compare_with_neuraloperator() -> None:
    """Our spectral operator against neuraloperator's SpectralConv with the same weights, if it is installed."""
    try:
        from neuralop.layers.spectral_convolution import SpectralConv
    except ImportError:
        print("neuraloperator is not installed: no SpectralConv comparison")
        return
    from circuitdsl.backends.operators import spectral
    from circuitdsl.backends.torch_backend import TorchOps

    layer = SpectralConv(4, 5, n_modes=(30,), bias=False)  # keeps 30 // 2 + 1 = 16 rfft modes
    u = torch.randn(3, 4, 64)
    with torch.no_grad():
        weights = layer.weight.to_tensor()[..., :16] if hasattr(layer.weight, "to_tensor") else layer.weight[..., :16]
        ours = spectral(u, weights.to(torch.complex64), TorchOps())
        print(f"neuraloperator SpectralConv: largest difference {float((ours - layer(u)).abs().max()):.2e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--models", nargs="+", default=["operator_burgers", "mgno_burgers"])
    args = parser.parse_args()
    torch.set_num_threads(2)
    start = time.perf_counter()
    u0, u1 = dataset(TRAIN + TEST, 512)
    print(f"data: {TRAIN} + {TEST} pairs at 512 points in {time.perf_counter() - start:.1f} s", flush=True)
    for model in args.models:
        module, seconds = train(model, u0, u1, args.epochs)
        errors = {points: test_error(module, u0, u1, points) for points in (128, 256, 512)}
        shown = ", ".join(f"{points}: {error:.4f}" for points, error in errors.items())
        params = sum(p.numel() for p in module.parameters() if p.requires_grad)
        print(f"{model} ({params} params, {args.epochs} epochs, {seconds:.0f} s): relative L2 test error {shown}",
              flush=True)
    compare_with_neuraloperator()


if __name__ == "__main__":
    main()
