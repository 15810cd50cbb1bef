"""Continual learning on permuted sklearn digits: the active-dendrites circuit vs a dense ReLU MLP of the same size.

Tasks are learned one after another (task 0 the identity, the others fixed pixel permutations, labels shared);
the score is the mean test accuracy over all tasks after the last one.  Active dendrites get the task's prototype
(the mean training input) as context while training and the nearest prototype at test time.
Run: python -m benchmarks.active_dendrites_continual [tasks] [seeds]   (the reference note: 5 tasks, 3 seeds).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

import circuitdsl
from benchmarks.digits import digits_split
from circuitdsl.dendrites import nearest_prototype, prototypes

MODEL = "models/active_dendrites_continual.circuit"


Tasks = list[tuple[np.ndarray, np.ndarray]]


def permuted_tasks(tasks: int) -> tuple[Tasks, Tasks]:
    """(train, test) sets per task: task 0 the digits as they are, task t a fixed permutation of the pixels."""
    x_train, x_test, y_train, y_test = digits_split()
    rng = np.random.default_rng(42)
    orders = [np.arange(64)] + [rng.permutation(64) for _ in range(tasks - 1)]
    return ([(x_train[:, o], y_train) for o in orders], [(x_test[:, o], y_test) for o in orders])


class _Dendritic(torch.nn.Module):
    """The compiled circuit as a classifier of (inputs, contexts)."""

    def __init__(self, tasks: int, hidden: int, seed: int, winners: float) -> None:
        super().__init__()
        self.circuit = circuitdsl.compile(MODEL, seed=seed, tasks=tasks, hidden=hidden, winners=winners)

    def forward(self, x: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return self.circuit({"x": x, "context": context})[0]["logits"]


def _accuracy(net: torch.nn.Module, x: np.ndarray, y: np.ndarray, protos: np.ndarray) -> float:
    """Test accuracy; the dendritic network gets each input's nearest prototype as context."""
    with torch.no_grad():
        if isinstance(net, _Dendritic):
            logits = net(torch.from_numpy(x), torch.from_numpy(nearest_prototype(x, protos)))
        else:
            logits = net(torch.from_numpy(x))
    return float((logits.argmax(1).numpy() == y).mean())


def continual_accuracies(model: str, tasks: int = 5, seed: int = 0, epochs: int = 20, hidden: int = 256,
                         lr: float = 5e-4, batch: int = 64, winners: float = 0.1) -> list[list[float]]:
    """Learn the tasks in order (`model`: "dendrites" or "mlp"); row t: the test accuracy on every task after
    learning task t (the last row is the score, the drop down a column the forgetting)."""
    torch.manual_seed(seed)
    train, test = permuted_tasks(tasks)
    protos = prototypes(np.concatenate([x for x, _ in train]), np.repeat(np.arange(tasks), len(train[0][0])))
    if model == "dendrites":
        net: torch.nn.Module = _Dendritic(tasks, hidden, seed, winners)
    else:
        net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                  torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    rng = np.random.default_rng(seed)
    history = []
    for task, (x, y) in enumerate(train):
        optimiser = torch.optim.Adam(net.parameters(), lr=lr)  # re-created per task
        if model == "dendrites":
            net.circuit.keep_masks(optimiser)
        context = torch.from_numpy(np.repeat(protos[task:task + 1], batch, 0))
        for _ in range(epochs):
            order = rng.permutation(len(x))
            for start in range(0, len(x), batch):
                pick = order[start:start + batch]
                inputs, labels = torch.from_numpy(x[pick]), torch.from_numpy(y[pick])
                logits = net(inputs, context[:len(pick)]) if model == "dendrites" else net(inputs)
                optimiser.zero_grad()
                torch.nn.functional.cross_entropy(logits, labels).backward()
                optimiser.step()
        history.append([_accuracy(net, x, y, protos) for x, y in test])
    return history


def main(tasks: int = 5, seeds: int = 3) -> None:
    """Print the table: each seed's mean accuracy over the tasks for both models, and the time taken."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    rows = {m: [float(np.mean(continual_accuracies(m, tasks, s)[-1])) for s in range(seeds)]
            for m in ("dendrites", "mlp")}
    print(f"permuted digits, {tasks} tasks, hidden [256, 256], 20 epochs/task, seeds 0..{seeds - 1}")
    for name, values in rows.items():
        print(f"  {name:9s}  " + "  ".join(f"{v:.3f}" for v in values) + f"   mean {np.mean(values):.3f}")
    print(f"  took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
