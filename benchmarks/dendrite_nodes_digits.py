"""Dendrite nodes on a 4-unit digits MLP: train, then 3 cycles of add a dendrite copy per unit and retrain.

The circuit `models/dendrite_nodes_mlp.circuit` always has at least one copy, so the starting point trains the
plain MLP part only (the copy's output weight v stays 0: a 64 -> 4 -> 10 MLP, 310 parameters); cycle 1 frees
that copy, cycles 2 and 3 grow one more each with `grow_dendrites` (every trained weight kept).  Baselines:
plain MLPs with 4 hidden units and with as many parameters as the grown network.  Split 1000/400/397
(train/validation/test), Adam with batch 64, 80 epochs per phase (3e-3 first, 1e-3 after), best validation kept.

Run: python -m benchmarks.dendrite_nodes_digits [seeds]
"""

from __future__ import annotations

import copy
import sys
import time

import numpy as np
import torch

import circuitdsl
from benchmarks.digits import digits_split
from circuitdsl.backends.torch_backend import CircuitModule
from circuitdsl.dendrites import grow_dendrites

MODEL = "models/dendrite_nodes_mlp.circuit"
DENDRITE_PARAMS = ("params.x -> h #2/weight", "params.h/c", "params.h/v")

Split = tuple[torch.Tensor, torch.Tensor]


def splits() -> tuple[Split, Split, Split]:
    """(train, validation, test) as tensors: 1000/400/397."""
    x_train, x_test, y_train, y_test = digits_split(test=397)
    as_tensors = lambda x, y: (torch.from_numpy(x), torch.from_numpy(y))
    return (as_tensors(x_train[:1000], y_train[:1000]), as_tensors(x_train[1000:], y_train[1000:]),
            as_tensors(x_test, y_test))


def _logits(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits of a compiled circuit or a plain torch classifier."""
    return net({"x": x})[0]["logits"] if isinstance(net, CircuitModule) else net(x)


def accuracy(net: torch.nn.Module, data: Split) -> float:
    """Classification accuracy on (x, y)."""
    with torch.no_grad():
        return float((_logits(net, data[0]).argmax(1) == data[1]).float().mean())


def train(net: torch.nn.Module, params: list[torch.nn.Parameter], train_set: Split, val: Split, lr: float,
          seed: int, epochs: int = 80, batch: int = 64) -> torch.nn.Module:
    """Adam on `params`; returns the network at its best validation accuracy."""
    optimiser = torch.optim.Adam(params, lr=lr)
    rng = np.random.default_rng(seed)
    best, best_state = -1.0, copy.deepcopy(net.state_dict())
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(train_set[1])))
        for start in range(0, len(order), batch):
            pick = order[start:start + batch]
            optimiser.zero_grad()
            torch.nn.functional.cross_entropy(_logits(net, train_set[0][pick]), train_set[1][pick]).backward()
            optimiser.step()
        if (score := accuracy(net, val)) > best:
            best, best_state = score, copy.deepcopy(net.state_dict())
    net.load_state_dict(best_state)
    return net


def mlp(hidden: int) -> torch.nn.Module:
    """A plain 64 -> hidden -> 10 ReLU MLP."""
    return torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10))


def size(net: torch.nn.Module, frozen: tuple[str, ...] = ()) -> int:
    """Trainable scalars, leaving out the state-dict keys in `frozen`."""
    return sum(v.numel() for k, v in net.state_dict().items() if k not in frozen)


def run(seed: int) -> list[tuple[str, int, float]]:
    """(stage, parameters, test accuracy) for the dendrite cycles and the two MLP baselines."""
    torch.manual_seed(seed)
    train_set, val, test = splits()
    net = circuitdsl.compile(MODEL, seed=seed)
    named = net.state_dict(keep_vars=True)
    base = [p for k, p in named.items() if k not in DENDRITE_PARAMS]
    net = train(net, base, train_set, val, 3e-3, seed)
    rows = [("MLP, 4 units", size(net, DENDRITE_PARAMS), accuracy(net, test))]
    for cycle in range(1, 4):
        if cycle > 1:
            net = grow_dendrites(net, circuitdsl.load(MODEL, copies=cycle), seed=seed + cycle)
        net = train(net, list(net.parameters()), train_set, val, 1e-3, seed + cycle)
        rows.append((f"+ dendrites, cycle {cycle}", size(net), accuracy(net, test)))
    for hidden in (4, round((rows[-1][1] - 10) / 75)):
        torch.manual_seed(seed)
        baseline = mlp(hidden)
        baseline = train(baseline, list(baseline.parameters()), train_set, val, 3e-3, seed)
        rows.append((f"plain MLP, {hidden} units", size(baseline), accuracy(baseline, test)))
    return rows


def main(seeds: int = 3) -> None:
    """Print test accuracy per stage and seed, and the time taken."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = [run(s) for s in range(seeds)]
    print(f"dendrite nodes, digits 1000/400/397, seeds 0..{seeds - 1}: test accuracy")
    for i, (stage, params, _) in enumerate(results[0]):
        values = [r[i][2] for r in results]
        print(f"  {stage:26s} {params:5d} params  " + "  ".join(f"{v:.3f}" for v in values)
              + f"   mean {np.mean(values):.3f}")
    print(f"  took {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
