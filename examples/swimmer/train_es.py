"""Train a swim controller (the NCAP circuit or the MLP baseline) with evolution strategies.

NCAP's ES recipe (OpenAI-style ES with Adam): each generation perturbs the flat vector of trainable parameters
with antithetic Gaussian noise (sigma 0.02), scores every member by the return of one episode, turns the
returns into centred ranks and steps Adam (lr 0.01, L2 weight decay 0.005) along the estimated gradient.
All members of a generation swim the same episode (one seed per generation), so a pair differs only by
its noise.

    python examples/swimmer/train_es.py --policy ncap
    python examples/swimmer/train_es.py --policy mlp --env-steps 500000
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from common import Controller, Log, iterations, parser
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from circuitdsl.envs.swim import run_episodes


def centred_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5], so the update ignores the scale of the returns and their outliers."""
    ranks = np.empty(len(fitness))
    ranks[np.argsort(fitness, kind="stable")] = np.arange(len(fitness))
    return ranks / (len(fitness) - 1) - 0.5


def main(argv: Sequence[str] | None = None) -> Log:
    """Train with ES and return the log (learning curve and the trained controller)."""
    p = parser(__doc__.splitlines()[0], "generations", default_iterations=40)
    p.add_argument("--population", type=int, default=8, help="members per generation: antithetic pairs, so even")
    p.add_argument("--sigma", type=float, default=0.02, help="standard deviation of the parameter noise")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=0.005, help="L2 penalty added to the ES gradient")
    args = p.parse_args(argv)
    if args.population < 2 or args.population % 2:
        p.error(f"--population must be an even number >= 2, got {args.population}")
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    controller = Controller(args.policy, args.joints, args.seed)
    params = controller.parameters()
    theta = torch.nn.Parameter(parameters_to_vector(params).detach().clone())
    optimiser = torch.optim.Adam([theta], lr=args.lr, weight_decay=args.weight_decay)
    steps = args.population * args.episode_steps
    generations = iterations(args, steps)
    log = Log(controller, args, generations, steps)
    for generation in range(generations):
        half = torch.from_numpy(rng.standard_normal((args.population // 2, theta.numel()))).to(theta.dtype)
        noise = torch.cat([half, -half])
        seed = int(rng.integers(2**31))
        fitness = np.empty(args.population)
        with torch.no_grad():
            for i, eps in enumerate(noise):
                vector_to_parameters(theta + args.sigma * eps, params)
                fitness[i] = run_episodes(controller.policy, args.joints, [seed], args.episode_steps)[0]
        weights = torch.from_numpy(centred_ranks(fitness)).to(theta.dtype)
        theta.grad = -(weights @ noise) / (args.population * args.sigma)  # negated: Adam descends, ES ascends
        optimiser.step()
        with torch.no_grad():
            vector_to_parameters(theta.detach().clone(), params)  # a copy: the module must not alias theta
        log.step(generation, float(fitness.mean()))
    return log


if __name__ == "__main__":
    main()
