"""How fast is the compiled NCAP swimmer?  Ratios against baselines measured in the same process.

1. One forward step of `circuitdsl.compile("models/ncap_swimmer.circuit")` against a hand-written,
   vectorised torch NCAP (the same equations, no Python loop over segments), at batch 1 and 256,
   eager and under torch.compile.
2. 1000 steps of the swim task driven by the compiled policy against the physics alone (zero torques).

Run: `python -m benchmarks.ncap_step` (CPU; prints a table; takes about a minute, torch.compile included).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch import nn

import circuitdsl
from benchmarks.timing import per_call

MODEL = "models/ncap_swimmer.circuit"


class HandNCAP(nn.Module):
    """NCAP's swimmer written directly in torch from the paper: 4 shared, sign-clamped weights, +-1 init."""

    def __init__(self, joints: int = 5, period: int = 60) -> None:
        super().__init__()
        self.osc, self.prop, self.ipsi = (nn.Parameter(torch.tensor(1.0)) for _ in range(3))
        self.contra = nn.Parameter(torch.tensor(-1.0))
        self.joints, self.period = joints, period

    def forward(self, q: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        osc, prop, ipsi = self.osc.clamp(min=0), self.prop.clamp(min=0), self.ipsi.clamp(min=0)
        contra = self.contra.clamp(max=0)
        dorsal = ((t % self.period) < self.period / 2).to(q.dtype)  # [batch, 1]
        bd = torch.cat([osc * dorsal, prop * q[:, :-1].clamp(0, 1)], 1).clamp(0, 1)
        bv = torch.cat([osc * (1 - dorsal), prop * (-q[:, :-1]).clamp(0, 1)], 1).clamp(0, 1)
        md = (ipsi * bd + contra * bv).clamp(0, 1)
        mv = (ipsi * bv + contra * bd).clamp(0, 1)
        return md - mv, t + 1


def step_ratios(batch: int, compiled: bool, repeat: int) -> tuple[float, float]:
    """(circuitdsl seconds per step, hand-written seconds per step) on the same random joint angles."""
    module, hand = circuitdsl.compile(MODEL), HandNCAP()
    q = torch.rand(batch, 5) * 2 - 1
    state, clock = module.initial_state(batch), torch.zeros(batch, 1)
    with torch.no_grad():
        expected = hand(q, clock)[0]
        assert torch.allclose(module({"q": q}, state)[0]["torque"], expected)  # same circuit, same numbers
        module_step = torch.compile(module) if compiled else module
        hand_step = torch.compile(hand) if compiled else hand
        ours = per_call(lambda: module_step({"q": q}, state), repeat)
        theirs = per_call(lambda: hand_step(q, clock), repeat)
    return ours, theirs


def swim_seconds(steps: int) -> tuple[float, float]:
    """(seconds for `steps` swim steps with the compiled policy, seconds with zero torques: physics alone)."""
    from circuitdsl.envs.swim import CircuitPolicy, make_env  # dm-control: HandNCAP's users need none

    policy = CircuitPolicy(circuitdsl.compile(MODEL))
    env = make_env(5, seed=0)
    observation = env.reset().observation
    policy.reset(1)
    start = time.perf_counter()
    for _ in range(steps):
        observation = env.step(policy.act({k: v[None] for k, v in observation.items()})[0]).observation
    with_policy = time.perf_counter() - start
    env.reset()
    zeros = np.zeros(5)
    start = time.perf_counter()
    for _ in range(steps):
        env.step(zeros)
    return with_policy, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=300, help="steps timed per measurement")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile rows")
    options = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread; NCAP swimmer, 5 joints")
    print(f"{'mode':<14}{'batch':>6}{'circuitdsl us':>15}{'hand torch us':>15}{'ratio':>8}")
    for compiled in (False,) if options.no_compile else (False, True):
        for batch in (1, 256):
            ours, theirs = step_ratios(batch, compiled, options.repeat)
            mode = "torch.compile" if compiled else "eager"
            print(f"{mode:<14}{batch:>6}{ours * 1e6:>15.1f}{theirs * 1e6:>15.1f}{ours / theirs:>8.2f}")
    with_policy, physics = swim_seconds(1000)
    print(f"1000 swim steps: compiled policy + physics {with_policy:.3f} s, physics alone {physics:.3f} s, "
          f"ratio {with_policy / physics:.2f}")


if __name__ == "__main__":
    main()
