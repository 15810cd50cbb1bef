"""Train a swim controller (the NCAP circuit or the MLP baseline) with a small PPO.

Actor: the controller's output is the mean of a Normal action distribution.  For NCAP the standard deviation
is fixed at 0.1 (as in the paper); for the MLP it is a learned per-joint log-std, starting at 0.1 too (so both
start with the same exploration noise), unless `--learn-std`/`--fixed-std` says otherwise.  Critic: a 64x64 tanh
MLP on the whole flat observation, standardised by running statistics; it predicts (1 - gamma) * value, which
lies in [0, 1] since every reward does.  Each update collects one episode from each of `--envs` environments
stepped in lockstep (4 x 1000 = 4000 steps by default, close to the paper's 4096), computes GAE (gamma 0.99,
lambda 0.97, bootstrapped from the critic where the episode is cut off), then runs `--epochs` clipped-objective
(0.2) steps of Adam (3e-4).  The action means are recomputed for every actor step by replaying the stored
episodes through the controller from its initial state, so a stateful circuit (NCAP's oscillator clock) is
trained correctly.

    python examples/swimmer/train_ppo.py --policy ncap
    python examples/swimmer/train_ppo.py --policy mlp --env-steps 200000
    python examples/swimmer/train_ppo.py --arg init=uniform(0,1) --arg shared=false
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from common import Controller, Log, iterations, parser
from common import controller as make_controller
from torch import nn

from circuitdsl.envs.baselines import observation_size
from circuitdsl.envs.swim import flat_observation, make_env


class Normaliser(nn.Module):
    """Running mean and standard deviation of the critic's inputs, merged batch by batch."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.register_buffer("count", torch.zeros(()))
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))

    def update(self, x: torch.Tensor) -> None:
        """Fold a batch [n, size] into the statistics (parallel variance formula)."""
        n, mean, var = x.shape[0], x.mean(0), x.var(0, correction=0)
        total = self.count + n
        delta = mean - self.mean
        self.var = (self.count * self.var + n * var + delta**2 * self.count * n / total) / total
        self.mean = self.mean + delta * n / total
        self.count = total

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / (self.var.sqrt() + 1e-6)


class Critic(nn.Module):
    """The PPO critic of NCAP's comparisons: a 64x64 tanh MLP on the standardised flat observation."""

    def __init__(self, joints: int, task: str = "swim") -> None:
        super().__init__()
        size = observation_size(joints, task)
        self.normaliser = Normaliser(size)
        self.net = nn.Sequential(nn.Linear(size, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 1))

    def forward(self, flat: torch.Tensor) -> torch.Tensor:
        """[..., observation] -> [...]: (1 - gamma) times the value."""
        return self.net(self.normaliser(flat)).squeeze(-1)


def collect(controller: Controller, log_std: torch.Tensor, seeds: Sequence[int], steps: int,
            rng: np.random.Generator) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """One episode per seed in lockstep with Normal exploration noise: observations [batch, steps + 1, ...]
    (the last one only for bootstrapping), actions [batch, steps, joints] and rewards [batch, steps]."""
    envs = [make_env(controller.joints, seed, controller.task) for seed in seeds]
    first = [env.reset().observation for env in envs]
    observations = {key: np.zeros((len(envs), steps + 1, *value.shape)) for key, value in first[0].items()}
    for key, value in observations.items():
        value[:, 0] = np.stack([o[key] for o in first])
    actions = np.zeros((len(envs), steps, controller.joints))
    rewards = np.zeros((len(envs), steps))
    std = log_std.detach().exp().numpy()
    controller.policy.reset(len(envs))
    for t in range(steps):
        mean = controller.policy.act({key: value[:, t] for key, value in observations.items()})
        actions[:, t] = mean + std * rng.standard_normal(mean.shape)
        for i, env in enumerate(envs):
            step = env.step(np.clip(actions[i, t], -1.0, 1.0))
            rewards[i, t] = step.reward
            for key, value in step.observation.items():
                observations[key][i, t + 1] = value
    return observations, actions, rewards


def advantages(rewards: torch.Tensor, values: torch.Tensor, gamma: float, lam: float) -> torch.Tensor:
    """GAE over [batch, time]; `values` has one more step, the bootstrap value where the episode was cut off."""
    result = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * values[:, t + 1] - values[:, t]
        running = delta + gamma * lam * running
        result[:, t] = running
    return result


def main(argv: Sequence[str] | None = None) -> Log:
    """Train with PPO and return the log (learning curve and the trained controller)."""
    p = parser(__doc__.splitlines()[0], "updates", default_iterations=15)
    p.add_argument("--envs", type=int, default=4, help="environments in lockstep; one episode each per update")
    p.add_argument("--epochs", type=int, default=10, help="actor steps (each a full replay) per update")
    p.add_argument("--critic-minibatches", type=int, default=8, help="critic steps per epoch")
    p.add_argument("--std", type=float, default=0.1, help="(initial) standard deviation of the action noise")
    learn = p.add_mutually_exclusive_group()
    learn.add_argument("--learn-std", dest="learn_std", action="store_true", default=None,
                       help="learn the log-std (default for the MLP)")
    learn.add_argument("--fixed-std", dest="learn_std", action="store_false", help="fixed std (default for NCAP)")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate of actor and critic")
    p.add_argument("--clip", type=float, default=0.2, help="PPO ratio clip")
    p.add_argument("--gamma", type=float, default=0.99, help="discount")
    p.add_argument("--lam", type=float, default=0.97, help="GAE lambda")
    p.set_defaults(backend="torch")
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    controller = make_controller(args)  # the torch backend: PPO differentiates the replay
    learn_std = args.policy == "mlp" if args.learn_std is None else args.learn_std
    log_std = nn.Parameter(torch.full((args.joints,), math.log(args.std)), requires_grad=learn_std)
    value = Critic(args.joints, args.task)
    actor_optimiser = torch.optim.Adam([*controller.parameters(), *([log_std] if learn_std else [])], lr=args.lr)
    critic_optimiser = torch.optim.Adam(value.parameters(), lr=args.lr)
    scale = 1 - args.gamma  # the critic predicts scale * value, in [0, 1]
    steps = args.envs * args.episode_steps
    updates = iterations(args, steps)
    log = Log(controller, args, updates, steps)
    for update in range(updates):
        seeds = [int(s) for s in rng.integers(2**31, size=args.envs)]
        observations, actions_np, rewards_np = collect(controller, log_std, seeds, args.episode_steps, rng)
        flat = torch.from_numpy(flat_observation(observations, args.joints).astype(np.float32))
        value.normaliser.update(flat.reshape(-1, flat.shape[-1]))
        actions = torch.from_numpy(actions_np.astype(np.float32))
        rewards = torch.from_numpy(rewards_np.astype(np.float32))
        with torch.no_grad():
            values = value(flat) / scale
            gae = advantages(rewards, values, args.gamma, args.lam)
            targets = (gae + values[:, :-1]) * scale
            gae = (gae - gae.mean()) / (gae.std() + 1e-8)
            replay = {key: v[:, :-1] for key, v in observations.items()}
            old = torch.distributions.Normal(controller.means(replay), log_std.exp()).log_prob(actions).sum(-1)
        inputs, targets = flat[:, :-1].reshape(-1, flat.shape[-1]), targets.reshape(-1)
        for _ in range(args.epochs):
            new = torch.distributions.Normal(controller.means(replay), log_std.exp()).log_prob(actions).sum(-1)
            ratio = (new - old).exp()
            loss = -torch.min(ratio * gae, ratio.clamp(1 - args.clip, 1 + args.clip) * gae).mean()
            actor_optimiser.zero_grad()
            loss.backward()
            actor_optimiser.step()
            for batch in torch.randperm(len(targets)).chunk(args.critic_minibatches):
                critic_loss = (value(inputs[batch]) - targets[batch]).pow(2).mean()
                critic_optimiser.zero_grad()
                critic_loss.backward()
                critic_optimiser.step()
        log.step(update, float(rewards_np.sum(1).mean()))
    return log


if __name__ == "__main__":
    main()
