"""The MLP baseline of the NCAP comparisons, as a swim controller: the whole observation in, torques out."""

from __future__ import annotations

import itertools

import numpy as np
import torch
from torch import nn

from circuitdsl.envs.swim import flat_observation


def observation_size(joints: int, task: str = "swim") -> int:
    """Normalised joint angles, the target (x, y) for `swimmer6`, and (vx, vy, wz) of each of the joints + 1 links."""
    return joints + 3 * (joints + 1) + (2 if task == "swimmer6" else 0)


class MLPPolicy(nn.Module):
    """A tanh MLP actor (NCAP's PPO baseline shape, 64x64 by default) with actions squashed into [-1, 1]."""

    def __init__(self, joints: int = 5, hidden: tuple[int, ...] = (64, 64), seed: int = 0, task: str = "swim") -> None:
        super().__init__()
        torch.manual_seed(seed)
        sizes = [observation_size(joints, task), *hidden]
        layers: list[nn.Module] = []
        for n_in, n_out in itertools.pairwise(sizes):
            layers += [nn.Linear(n_in, n_out), nn.Tanh()]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], joints), nn.Tanh())
        self.joints = joints

    def forward(self, observation: torch.Tensor) -> torch.Tensor:
        return self.net(observation)

    def reset(self, batch: int) -> None:
        """Stateless: nothing to reset."""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(flat_observation(observation, self.joints).astype(np.float32))
        with torch.no_grad():
            return self(x).numpy().astype(np.float64)
