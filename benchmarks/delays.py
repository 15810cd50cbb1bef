"""Learnable delays: recover a teacher network's whole-step delays by gradient descent.

A teacher `x -> y` (4 inputs, 3 outputs, Identity units) has random weights and integer delays in 1..K; a
student with `delay = learnable(max = K)` learns weights and delays from the teacher's outputs on random spike
trains (p = 0.1), while the kernel width anneals from K/2 to 0.5 over the first half of training.  Prints, per
seed, the fraction of synapses whose learned delay lies within half a step of the teacher's, and the time.

Run: `python -m benchmarks.delays [--seeds 5 --steps 800]` (about 17 s a seed on one core).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import circuitdsl
from circuitdsl.backends.delays import sigma_schedule
from circuitdsl.backends.interface import param_key

K = 25
CIRCUIT = f"""
circuit Student(max_delay: int = {K}) {{
  input  x[channel = 4]
  output y[unit = 3]
  population out[unit = 3] : Identity
  x -> out : all_to_all, delay = learnable(max = max_delay)
  y = out
}}
"""
PROJECTION = "x -> out"


def teacher(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Weights (magnitudes 0.5..1.5, random signs) and whole-step delays in 1..K, each [3, 4]."""
    weights = rng.uniform(0.5, 1.5, (3, 4)) * rng.choice([-1.0, 1.0], (3, 4))
    return weights.astype(np.float32), rng.integers(1, K + 1, (3, 4)).astype(np.float32)


def teach(x: torch.Tensor, weights: np.ndarray, delays: np.ndarray) -> torch.Tensor:
    """The teacher's outputs y[t] = sum_i w_oi x_i[t - d_oi], [batch, time, 3]."""
    y = torch.zeros(x.shape[0], x.shape[1], 3)
    for o in range(3):
        for i in range(4):
            d = int(delays[o, i])
            y[:, d:, o] += float(weights[o, i]) * x[:, : x.shape[1] - d, i]
    return y


def recover(seed: int, steps: int, length: int, batch: int) -> tuple[float, float]:
    """(fraction of delays within half a step, seconds) for one seed."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    weights, delays = teacher(rng)
    student = circuitdsl.compile(circuitdsl.loads(CIRCUIT), seed=seed)
    params = student.params
    learned, sigma = params[param_key(f"{PROJECTION}.delay")], params[param_key(f"{PROJECTION}.delay_sigma")]
    optimiser = torch.optim.Adam([{"params": [params[param_key(f"{PROJECTION}.weight")]], "lr": 1e-2},
                                  {"params": [learned], "lr": 0.3}])
    start = time.perf_counter()
    for step in range(steps):
        sigma.data.fill_(sigma_schedule(step / steps, K))
        x = torch.from_numpy((rng.random((batch, length, 4)) < 0.1).astype(np.float32))
        y, _ = student.rollout(x)
        loss = torch.mean((y["y"] - teach(x, weights, delays)) ** 2)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        with torch.no_grad():
            learned.clamp_(1, K)
    seconds = time.perf_counter() - start
    error = np.abs(learned.detach().numpy() - delays)
    return float(np.mean(error < 0.5)), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--length", type=int, default=80)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    fractions = []
    for seed in range(args.seeds):
        fraction, seconds = recover(seed, args.steps, args.length, args.batch)
        fractions.append(fraction)
        print(f"seed {seed}: {fraction:.2f} of 12 delays within half a step ({seconds:.1f} s)", flush=True)
    print(f"mean fraction within half a step: {np.mean(fractions):.2f} (K = {K}, {args.steps} steps)")


if __name__ == "__main__":
    main()
