"""Train a swim controller (the NCAP circuit, any circuit, or the MLP baseline) with evolution strategies.

NCAP's ES recipe (OpenAI-style ES with Adam; `circuitdsl.envs.es`): each generation perturbs the flat vector of
trainable parameters with antithetic Gaussian noise (sigma 0.02), scores every member by the return of one
episode, turns the returns into centred ranks (ties share a rank) and steps Adam (lr 0.01, L2 weight decay
0.005) along the estimated gradient.  All members of a generation swim the same episode (one seed per
generation), so a pair differs only by its noise.  With `--backend jax` the whole population is stepped as one
`vmap`ped call per control step.

    python examples/swimmer/train_es.py --policy ncap
    python examples/swimmer/train_es.py --arg init=uniform(0,1) --backend jax
    python examples/swimmer/train_es.py --model models/ncap_swimmer.circuit --arg signs=none --arg shared=false
    python examples/swimmer/train_es.py --policy mlp --env-steps 500000
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from common import Log, controller, iterations, parser

from circuitdsl.envs.es import ESConfig, evolve


def main(argv: Sequence[str] | None = None) -> Log:
    """Train with ES and return the log (learning curve and the trained controller)."""
    p = parser(__doc__.splitlines()[0], "generations", default_iterations=40)
    p.add_argument("--population", type=int, default=8, help="members per generation: antithetic pairs, so even")
    p.add_argument("--sigma", type=float, default=0.02, help="standard deviation of the parameter noise")
    p.add_argument("--lr", type=float, default=0.01, help="Adam learning rate")
    p.add_argument("--weight-decay", type=float, default=0.005, help="L2 penalty added to the ES gradient")
    p.add_argument("--backend", choices=["torch", "jax"], default="torch",
                   help="the circuit's backend; jax steps the population as one vmapped call")
    args = p.parse_args(argv)
    if args.population < 2 or args.population % 2:
        p.error(f"--population must be an even number >= 2, got {args.population}")
    torch.manual_seed(args.seed)
    config = ESConfig(args.population, args.sigma, args.lr, args.weight_decay, args.episode_steps)
    trained = controller(args)
    steps = args.population * args.episode_steps
    generations = iterations(args, steps)
    log = Log(trained, args, generations, steps)
    evolve(trained, config, generations, np.random.default_rng(args.seed), log.step)
    return log


if __name__ == "__main__":
    main()
