"""Evolution strategies for swim controllers: NCAP's recipe (OpenAI-style ES with Adam).

Each generation perturbs the flat vector of trainable weights with antithetic Gaussian noise (sigma 0.02),
scores every member by the return of one episode (the same episode seed for the whole generation, so a pair
differs only by its noise), turns the returns into centred ranks and steps Adam (lr 0.01, L2 weight decay
0.005) along the estimated gradient.  The population is scored by `SwimController.returns`, in one batched
run (a `vmap` on the JAX backend).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.stats import rankdata

from circuitdsl.envs.controllers import SwimController
from circuitdsl.envs.swim import EPISODE_STEPS


@dataclass(frozen=True)
class ESConfig:
    """The ES hyper-parameters (NCAP's defaults)."""

    population: int = 8  # antithetic pairs, so even
    sigma: float = 0.02
    lr: float = 0.01
    weight_decay: float = 0.005
    episode_steps: int = EPISODE_STEPS

    def __post_init__(self) -> None:
        if self.population < 2 or self.population % 2:
            raise ValueError(f"the population must be an even number >= 2, got {self.population}")


def centred_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [-0.5, 0.5], so the update ignores the scale of the returns and their outliers.

    Tied returns share their mean rank, so a generation whose members all score the same gives no step at all
    (ranks by index order would random-walk the weights along the noise of the first members)."""
    ranks = rankdata(fitness, method="average") - 1.0
    return ranks / (len(fitness) - 1) - 0.5


def evolve(controller: SwimController, config: ESConfig, generations: int, rng: np.random.Generator,
           on_generation: Callable[[int, float], None] | None = None) -> np.ndarray:
    """Train `controller` in place for `generations`; after each, `on_generation(generation, mean return)` sees the
    controller at its new weights.  Returns the final weight vector."""
    theta = torch.nn.Parameter(torch.from_numpy(controller.vector()))
    optimiser = torch.optim.Adam([theta], lr=config.lr, weight_decay=config.weight_decay)
    for generation in range(generations):
        half = torch.from_numpy(rng.standard_normal((config.population // 2, theta.numel())))
        noise = torch.cat([half, -half])
        seed = int(rng.integers(2**31))
        members = (theta.detach() + config.sigma * noise).numpy()
        fitness = controller.returns(members, [seed], config.episode_steps)[:, 0]
        weights = torch.from_numpy(centred_ranks(fitness))
        theta.grad = -(weights @ noise) / (config.population * config.sigma)  # negated: Adam descends, ES ascends
        optimiser.step()
        controller.set_vector(theta.detach().numpy().copy())
        if on_generation is not None:
            on_generation(generation, float(fitness.mean()))
    return theta.detach().numpy().copy()
