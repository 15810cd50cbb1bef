"""The forward swim task, and the compiled NCAP swimmer swimming in it without training."""

from __future__ import annotations

import math

import numpy as np
import pytest

import circuitdsl
from circuitdsl.envs.baselines import MLPPolicy, observation_size
from circuitdsl.envs.swim import (
    CircuitPolicy,
    flat_observation,
    forward_speed,
    make_env,
    normalise_joints,
    run_episodes,
)

MODEL = "models/ncap_swimmer.circuit"


def ncap(joints: int = 5, backend: str = "torch") -> CircuitPolicy:
    return CircuitPolicy(circuitdsl.compile(MODEL, backend=backend, joints=joints), joints=joints)


def test_env_has_one_motor_per_joint_and_no_target_in_the_observation() -> None:
    env = make_env(joints=7, seed=0)
    observation = env.reset().observation
    assert env.action_spec().shape == (7,)
    assert list(observation) == ["joints", "body_velocities"]
    assert observation["joints"].shape == (7,)
    assert flat_observation(observation, 7).shape == (observation_size(7),)


def test_joint_angles_are_normalised_by_the_joint_limit_and_clipped() -> None:
    limit = 2 * math.pi / 6
    angles = np.array([0.0, limit / 2, -limit, 2 * limit, -3 * limit])
    assert normalise_joints(angles, 5).tolist() == pytest.approx([0.0, 0.5, -1.0, 1.0, -1.0])


def test_reward_is_linear_in_forward_head_speed_between_0_and_0_1() -> None:
    env = make_env(joints=5, seed=3)
    policy = ncap()
    policy.reset(1)
    observation = env.reset().observation
    seen = []
    for _ in range(200):
        step = env.step(policy.act({k: v[None] for k, v in observation.items()})[0])
        observation = step.observation
        speed = forward_speed(env.physics)
        seen.append(speed)
        assert step.reward == pytest.approx(min(max(speed / 0.1, 0.0), 1.0), abs=1e-9)
    assert min(seen) < 0.1 < max(seen)  # both the linear part and the saturated part were exercised


def test_same_seed_same_episode() -> None:
    first = run_episodes(ncap(), seeds=[4], steps=100)
    again = run_episodes(ncap(), seeds=[4], steps=100)
    assert first.tolist() == again.tolist()


def test_untrained_ncap_swims_at_least_780_over_10_seeds_and_a_random_mlp_does_not() -> None:
    """The paper's claim at ±1 init: the full 10-seed, 1000-step check (about 5 s)."""
    returns = run_episodes(ncap(), seeds=range(10))
    assert returns.mean() >= 780, returns
    mlp = np.concatenate([run_episodes(MLPPolicy(5, seed=s), seeds=range(3)) for s in range(2)])
    assert mlp.mean() < 100, mlp  # far lower: a random 64x64 MLP barely moves forward
    assert returns.min() > 5 * mlp.max()


@pytest.mark.parametrize("joints", range(3, 14))
def test_changing_only_joints_compiles_and_swims(joints: int) -> None:
    """3 to 13 joints, same weights: every body swims forward (the 3-joint body is the slowest, about 340)."""
    returns = run_episodes(ncap(joints), joints=joints, seeds=[0])
    assert returns[0] > 300


def test_the_jax_backend_swims_the_same_episodes_as_torch() -> None:
    """Same seed, same circuit: the JAX-driven swimmer's returns equal torch's (float32 round-off only)."""
    torch_returns = run_episodes(ncap(backend="torch"), seeds=range(3))
    jax_returns = run_episodes(ncap(backend="jax"), seeds=range(3))
    assert jax_returns == pytest.approx(torch_returns, abs=1e-3)
