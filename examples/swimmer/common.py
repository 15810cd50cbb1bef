"""What the swimmer trainers share: the controller being trained, the command line, evaluation, the log.

A controller is the compiled NCAP circuit (or any circuit given by `--model` with `--arg`s), or the MLP baseline.
The trainers change it only through its trainable parameters, so either trains with the same code.
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from circuitdsl.envs.controllers import SwimController
from circuitdsl.envs.swim import EPISODE_STEPS, flat_observation, normalise_joints, run_episodes

EVAL_SEED = 1_000_000  # evaluation seeds start here; training seeds are random draws below 2**31
SHOWN_SCALARS = 16  # print the trained parameters of controllers with at most this many scalars


class Controller(SwimController):
    """A swim controller under training (see `SwimController`), plus the differentiable replay PPO needs."""

    def __init__(self, kind: str, joints: int, seed: int, model: str | None = None,
                 args: dict[str, str] | None = None, backend: str = "torch", task: str = "swim") -> None:
        if kind not in ("ncap", "mlp"):
            raise ValueError(f"unknown policy '{kind}': expected 'ncap' or 'mlp'")
        super().__init__(model or kind, joints, seed, args, backend, task)
        self.label = Path(model).stem if model else kind

    def means(self, observations: dict[str, np.ndarray]) -> torch.Tensor:
        """Actions for whole episodes, [batch, time, ...] -> [batch, time, joints], replayed from the initial state.

        Replaying keeps this right for stateful circuits (NCAP's oscillator clock) as well as stateless MLPs.
        """
        assert self.module is not None, "replay needs the torch backend"
        if self.kind == "circuit":
            q = torch.from_numpy(normalise_joints(observations["joints"], self.joints).astype(np.float32))
            outputs, _ = self.module.rollout({"q": q}, state=self.module.initial_state(q.shape[0]))
            return outputs["torque"]
        return self.module(torch.from_numpy(flat_observation(observations, self.joints).astype(np.float32)))


def controller(args: argparse.Namespace) -> Controller:
    """The controller the command line asks for."""
    given = dict(item.split("=", 1) for item in args.arg)
    return Controller(args.policy, args.joints, args.seed, args.model, given, args.backend, args.task)


def parser(description: str, iterations: str, default_iterations: int) -> argparse.ArgumentParser:
    """The flags every trainer takes; the budget is `--<iterations>` or `--env-steps`, whichever is given."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--policy", choices=["ncap", "mlp"], default="ncap", help="the controller to train")
    p.add_argument("--model", metavar="FILE.circuit", help="a circuit to train instead of models/ncap_swimmer.circuit "
                   "(input q = joint angles, output torque)")
    p.add_argument("--arg", action="append", default=[], metavar="NAME=VALUE",
                   help="a circuit argument, e.g. --arg init=uniform(0,1) --arg signs=none")
    p.add_argument("--task", choices=["swim", "swimmer6"], default="swim", help="the dm-control task")
    p.add_argument("--joints", type=int, default=5, help="actuated joints of the swimmer (links = joints + 1)")
    p.add_argument("--seed", type=int, default=0, help="seeds the initial parameters, the noise and the episodes")
    p.add_argument("--episode-steps", type=int, default=EPISODE_STEPS, help="control steps per episode")
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(f"--{iterations}", dest="iterations", type=int, default=default_iterations,
                        help=f"training budget in {iterations} (default %(default)s)")
    budget.add_argument("--env-steps", type=int, help=f"training budget in env steps, rounded up to whole {iterations}")
    p.add_argument("--eval-every", type=int, default=5, help=f"evaluate the mean policy every N {iterations}")
    p.add_argument("--eval-episodes", type=int, default=5, help="episodes (seeds) per evaluation")
    p.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    return p


def iterations(args: argparse.Namespace, steps_per_iteration: int) -> int:
    """The number of iterations the budget allows: `--env-steps` rounded up, or the iteration count."""
    return math.ceil(args.env_steps / steps_per_iteration) if args.env_steps is not None else args.iterations


def evaluate(controller: Controller, args: argparse.Namespace) -> float:
    """Mean return of the noise-free controller over fixed held-out seeds (same seeds at every evaluation)."""
    seeds = range(EVAL_SEED, EVAL_SEED + args.eval_episodes)
    return float(run_episodes(controller.policy, controller.joints, seeds, args.episode_steps, controller.task).mean())


@dataclass
class Record:
    """One line of the learning curve: training env steps so far, mean training return, evaluation return."""

    env_steps: int
    train_return: float | None
    eval_return: float | None


@dataclass
class Log:
    """Return against env steps: a progress bar over the env-step budget, one printed line per evaluation."""

    controller: Controller
    args: argparse.Namespace
    total_iterations: int
    steps_per_iteration: int
    history: list[Record] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bar = tqdm(total=self.total_iterations * self.steps_per_iteration, unit="step", unit_scale=True,
                        disable=not self.args.progress, dynamic_ncols=True)
        params = self.controller.vector().size
        self.write(f"{self.controller.label}: {params} trainable parameters, {self.controller.joints} joints, "
                   f"{self.args.episode_steps}-step episodes (max return {self.args.episode_steps})")
        self.write(f"{'env steps':>10}  {'train return':>12}  {'eval return':>11}")
        self.history.append(Record(0, None, evaluate(self.controller, self.args)))
        self.write(self.line(self.history[-1]))

    def write(self, text: str) -> None:
        """Print above the progress bar."""
        tqdm.write(text)

    @staticmethod
    def line(record: Record) -> str:
        """A record as a table row."""
        def cell(value: float | None, width: int) -> str:
            return f"{'-':>{width}}" if value is None else f"{value:{width}.1f}"

        return f"{record.env_steps:>10}  {cell(record.train_return, 12)}  {cell(record.eval_return, 11)}"

    def step(self, iteration: int, train_return: float) -> None:
        """Record one finished iteration; evaluate and print every `--eval-every` and at the end."""
        self.bar.update(self.steps_per_iteration)
        done = iteration + 1
        evaluated = done % self.args.eval_every == 0 or done == self.total_iterations
        record = Record(done * self.steps_per_iteration, train_return,
                        evaluate(self.controller, self.args) if evaluated else None)
        self.history.append(record)
        self.bar.set_postfix(train=f"{train_return:.1f}")
        if evaluated:
            self.write(self.line(record))
        if done == self.total_iterations:
            self.bar.close()
            if self.controller.vector().size <= SHOWN_SCALARS:  # a circuit's few weights are worth reading
                self.write("trained: " + ", ".join(f"{name} = {v:+.3f}" for name, v in self.controller.named_weights()))
