"""The ELM neuron on row-sequential digits: 8 steps of 8 pixels (one image row a step), classified from the
readout at the last step.  One neuron, `models/elm_neuron.circuit` sized inputs = 8, 8 branches, 16 memory units
(time constants log-spaced on 1..20 steps), 32 hidden units, 10 outputs; Adam 5e-3, batch 64, 30 epochs on the
1347 training images, test accuracy on the other 450.

Run: python -m benchmarks.elm_digits [seeds]
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

import circuitdsl
from benchmarks.digits import digits_split

MODEL = "models/elm_neuron.circuit"
SIZE = {"inputs": 8, "branches": 8, "memory": 16, "hidden": 32, "outputs": 10, "tau_max": 20}


def run(seed: int, epochs: int = 30, batch: int = 64, lr: float = 5e-3) -> tuple[int, float]:
    """(trainable parameters, test accuracy) of one trained ELM neuron."""
    torch.manual_seed(seed)
    x_train, x_test, y_train, y_test = digits_split()
    rows = lambda x: torch.from_numpy(x.reshape(-1, 8, 8))  # [image, step = row, pixel]
    inputs, labels = rows(x_train), torch.from_numpy(y_train)
    net = circuitdsl.compile(MODEL, seed=seed, **SIZE)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(labels)))
        for start in range(0, len(order), batch):
            pick = order[start:start + batch]
            logits = net.rollout({"x": inputs[pick]})[0]["y"][:, -1]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(logits, labels[pick]).backward()
            optimiser.step()
    with torch.no_grad():
        predicted = net.rollout({"x": rows(x_test)})[0]["y"][:, -1].argmax(1).numpy()
    return sum(p.numel() for p in net.parameters() if p.requires_grad), float((predicted == y_test).mean())


def main(seeds: int = 3) -> None:
    """Print test accuracy per seed and the time taken."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = [run(s) for s in range(seeds)]
    print(f"ELM neuron, digits as 8 steps of 8 pixels, {results[0][0]} parameters, seeds 0..{seeds - 1}")
    print("  test accuracy  " + "  ".join(f"{a:.3f}" for _, a in results)
          + f"   mean {np.mean([a for _, a in results]):.3f}")
    print(f"  took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
