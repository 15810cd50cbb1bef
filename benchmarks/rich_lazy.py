"""Rich and lazy learning: how far, and in how many directions, recurrent weights move from a low-rank or a
full-rank start of equal norm.

models/rich_lazy_rnn.circuit (64 leaky tanh rate units) learns a perceptual decision task: a noisy evidence stream
u(t) = c + 0.5 xi(t) for `--time` steps, c drawn from +-{0.05, 0.1, 0.2, 0.4}; the readout at the last step must
give sign(c) (mean squared error, Adam lr 1e-3, batches of 64, backpropagation through time on the torch
backend).  The two conditions differ only in the circuit argument `w0`: `normal(0, 1/8)` (full rank) or
`low_rank(rank = 1, like = normal(0, 1/8))` (rank 1, the same expected Frobenius norm, 8).  Per seed and
condition it reports the relative weight change |dW|_F / |W0|_F, the effective rank of dW (Roy & Vetterli 2007:
exp of the entropy of its normalised singular values) and the final accuracy on 1000 held-out trials.

Run: `python -m benchmarks.rich_lazy [--seeds 5 --steps 300 --time 20]`.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

import circuitdsl

MODEL = Path(__file__).resolve().parents[1] / "models" / "rich_lazy_rnn.circuit"
UNITS = 64
FULL = f"normal(0, {1 / np.sqrt(UNITS):g})"
CONDITIONS = {"full rank": FULL, "rank 1": f"low_rank(rank = 1, like = {FULL})"}
COHERENCES = np.array([0.05, 0.1, 0.2, 0.4])


def trials(rng: np.random.Generator, batch: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Evidence streams [batch, time, 1] and their targets sign(c) [batch]."""
    c = rng.choice(COHERENCES, batch) * rng.choice([-1.0, 1.0], batch)
    u = c[:, None, None] + 0.5 * rng.standard_normal((batch, steps, 1))
    return torch.tensor(u, dtype=torch.float32), torch.tensor(np.sign(c), dtype=torch.float32)


def effective_rank(matrix: np.ndarray) -> float:
    """exp(entropy) of the singular values normalised to sum 1 (Roy & Vetterli 2007)."""
    s = np.linalg.svd(matrix, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return float(np.exp(-(p * np.log(p)).sum()))


def train(w0: str, seed: int, steps: int, time_steps: int) -> dict[str, float]:
    """Train one network; its weight change and accuracy."""
    torch.manual_seed(seed)
    net = circuitdsl.compile(circuitdsl.load(MODEL, units=UNITS, w0=w0), backend="torch", seed=seed)
    start = net.params["W"].detach().numpy().copy()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        u, target = trials(rng, 64, time_steps)
        z = net.rollout({"u": u})[0]["z"][:, -1, 0]
        loss = (z - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        u, target = trials(np.random.default_rng(10_000 + seed), 1000, time_steps)
        accuracy = float((torch.sign(net.rollout({"u": u})[0]["z"][:, -1, 0]) == target).float().mean())
    change = net.params["W"].detach().numpy() - start
    return {"relative change": float(np.linalg.norm(change) / np.linalg.norm(start)),
            "effective rank": effective_rank(change), "accuracy": accuracy,
            "|W0|": float(np.linalg.norm(start))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300, help="training batches")
    parser.add_argument("--time", type=int, default=20, help="time steps per trial")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'condition':>10}  {'seed':>4}  {'|W0|':>6}  {'|dW|/|W0|':>9}  {'eff. rank dW':>12}  {'accuracy':>8}")
    for name, w0 in CONDITIONS.items():
        results, started = [], time.perf_counter()
        for seed in range(args.seeds):
            r = train(w0, seed, args.steps, args.time)
            results.append(r)
            print(f"{name:>10}  {seed:>4}  {r['|W0|']:6.2f}  {r['relative change']:9.4f}  "
                  f"{r['effective rank']:12.2f}  {r['accuracy']:8.3f}")
        for key in ("relative change", "effective rank", "accuracy"):
            values = np.array([r[key] for r in results])
            spread = values.std(ddof=1)
            print(f"{name:>10}  {key}: {values.mean():.4f} ± {spread:.4f} (mean ± sd, {args.seeds} seeds)")
        print(f"{name:>10}  {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
