"""Circuits on named axes against torch.nn written by hand with the same weights, in one process.

The references are tests/test_axes.py's (nn.MultiheadAttention, a pre-norm transformer block, an MLP-Mixer
block), with their weights loaded into the compiled circuit and the outputs checked equal before timing.  Each
row times one eager step without gradients (the circuit: `module(x)`, no state given; torch.nn: `module(x)`) in
interleaved rounds and prints the ratio of the fastest rounds and of the median rounds.  One CPU thread; both
sides on a GPU with `--device cuda` (each round waits for the device's queued work).

Run: `python -m benchmarks.axes [--rounds 7] [--device cuda]` (under a minute).
"""

from __future__ import annotations

import argparse

import torch

import circuitdsl
from benchmarks.engine import Run, timed
from tests.test_axes import REFERENCES, E, T, mask, our_params, reference


def row(name: str, causal: bool, batch: int, run: Run) -> tuple[str, float, float]:
    """Our step over torch.nn's for one reference at one batch size."""
    path = REFERENCES[name][0]
    module = circuitdsl.compile(circuitdsl.load(path, **({} if name == "mixer" else {"causal": causal})))
    hand = reference(name)
    with torch.no_grad():
        for key, value in our_params(hand).items():
            module.params[key].copy_(torch.from_numpy(value).reshape(module.params[key].shape))
    module, hand = module.to(run.device), hand.to(run.device)
    x = torch.randn(batch, T, E).to(run.device)
    attn_mask = None if (m := mask(causal)) is None else m.to(run.device)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[0]["y"].reshape(batch, T, E), hand(x, attn_mask), rtol=0, atol=1e-5)
        found = timed(lambda: module(x), lambda: hand(x, attn_mask), run, 200)
    return (f"{name}{' (causal)' if causal else ''}, batch {batch}", *found)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per row")
    parser.add_argument("--device", default="cpu", help="where both sides run (cuda: a GPU)")
    options = parser.parse_args()
    run = Run(options.rounds, torch.device(options.device))
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__} on {run.device}, 1 CPU thread; ratio = circuitdsl / torch.nn (eager, no grad)")
    print(f"{'workload':<40}{'min':>8}{'median':>9}")
    for name, causal in (("attention", False), ("attention", True), ("block", False), ("block", True),
                         ("mixer", False)):
        for batch in (1, 64):
            label, low, middle = row(name, causal, batch, run)
            print(f"{label:<40}{low:>8.2f}{middle:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
