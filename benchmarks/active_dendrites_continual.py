"""Continual learning on permuted sklearn digits: the active-dendrites circuit vs a dense ReLU MLP of the same size.

Tasks are learned one after another (task 0 the identity, the others fixed pixel permutations, labels shared);
the score is the mean test accuracy over all tasks after the last one.  Active dendrites get the task's prototype
(the mean training input) as context while training and the nearest prototype at test time.
Run: python benchmarks/active_dendrites_continual.py [tasks] [seeds]   (the reference note: 5 tasks, 3 seeds).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

import circuitdsl
from circuitdsl.dendrites import nearest_prototype, prototypes

MODEL = "models/active_dendrites_continual.circuit"


Tasks = list[tuple[np.ndarray, np.ndarray]]


def base_data(data: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """64-feature, 10-class (train x, test x, train y, test y), 1347/450: sklearn's digits /16, or, where
    scikit-learn is not installed, noisy Gaussian clusters (a stand-in with the same sizes)."""
    if data == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        return train_test_split(x / 16, y, test_size=450, random_state=0)  # type: ignore[no-any-return]
    rng = np.random.default_rng(0)
    centres, y = rng.standard_normal((10, 64)), rng.integers(0, 10, 1797)
    x = centres[y] + 3.0 * rng.standard_normal((1797, 64))
    return x[:1347], x[1347:], y[:1347], y[1347:]


def permuted_tasks(tasks: int, data: str = "digits") -> tuple[Tasks, Tasks]:
    """(train, test) sets per task, standardised; task 0 the identity, task t a fixed permutation of the features."""
    x_train, x_test, y_train, y_test = base_data(data)
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)
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


def continual_accuracy(model: str, tasks: int = 5, seed: int = 0, epochs: int = 20, hidden: int = 256,
                       lr: float = 5e-4, batch: int = 64, data: str = "digits", winners: float = 0.1) -> float:
    """Mean test accuracy over all tasks after learning them in order (`model`: "dendrites" or "mlp")."""
    torch.manual_seed(seed)
    train, test = permuted_tasks(tasks, data)
    protos = prototypes(np.concatenate([x for x, _ in train]), np.repeat(np.arange(tasks), len(train[0][0])))
    if model == "dendrites":
        net: torch.nn.Module = _Dendritic(tasks, hidden, seed, winners)
    else:
        net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, hidden),
                                  torch.nn.ReLU(), torch.nn.Linear(hidden, 10))
    rng = np.random.default_rng(seed)
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
    accuracies = []
    with torch.no_grad():
        for x, y in test:
            inputs = torch.from_numpy(x)
            if model == "dendrites":
                logits = net(inputs, torch.from_numpy(nearest_prototype(x, protos)))
            else:
                logits = net(inputs)
            accuracies.append(float((logits.argmax(1).numpy() == y).mean()))
    return float(np.mean(accuracies))


def main(tasks: int = 5, seeds: int = 3) -> None:
    """Print the table: each seed's mean accuracy for both models, and the time taken."""
    torch.set_num_threads(2)
    try:
        import sklearn  # noqa: F401
        data = "digits"
    except ImportError:
        data = "clusters"
    start = time.perf_counter()
    rows = {m: [continual_accuracy(m, tasks, s, data=data) for s in range(seeds)] for m in ("dendrites", "mlp")}
    print(f"permuted {data}, {tasks} tasks, hidden [256, 256], 20 epochs/task, seeds 0..{seeds - 1}")
    for name, values in rows.items():
        print(f"  {name:9s}  " + "  ".join(f"{v:.3f}" for v in values) + f"   mean {np.mean(values):.3f}")
    print(f"  took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
