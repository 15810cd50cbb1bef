"""The forward `swim` task of NCAP (Bhattasali, Zador & Engel 2022) on dm-control's N-link swimmer, and beside it
dm-control's own `swimmer6` task (reach a target shown in the head frame; `TASKS` names both).

The body has `joints + 1` links.  Reward per control step is the linear tolerance of the head's forward
speed: 0 at <= 0, 1 at >= 0.1 m/s, so a 1000-step episode (30 s at 0.03 s per step) returns at most 1000.
The target of dm-control's stock swimmer task is neither observed nor rewarded.  A circuit reads the joint
angles normalised by the joint limit 2*pi/(joints+1) and clipped to [-1, 1]; action i is the torque of joint i.
"""

from __future__ import annotations

import collections
import functools
import math
import os
from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np

os.environ.setdefault("MUJOCO_GL", "disable")  # physics only: no OpenGL context is needed or wanted

from dm_control.rl import control
from dm_control.suite import base, swimmer
from dm_control.suite.utils import randomizers
from dm_control.utils import rewards

CONTROL_TIMESTEP = 0.03  # seconds per control step (dm-control's swimmer)
EPISODE_STEPS = 1000
TARGET_SPEED = 0.1  # forward head speed (m/s) that earns the full reward of 1 per step


def forward_speed(physics: swimmer.Physics) -> float:
    """The head's speed along its own axis, nose first (the nose sits at -y in the head frame)."""
    return -float(physics.named.data.sensordata["head_vel"][1])


class SwimTask(base.Task):
    """Swim forward as fast as possible from a random posture: joints and heading drawn per episode."""

    def initialize_episode(self, physics: swimmer.Physics) -> None:
        randomizers.randomize_limited_and_rotational_joints(physics, self.random)
        super().initialize_episode(physics)

    def get_observation(self, physics: swimmer.Physics) -> collections.OrderedDict[str, np.ndarray]:
        """Joint angles (head to tail) and local body velocities; the target is left out."""
        return collections.OrderedDict(joints=physics.joints(), body_velocities=physics.body_velocities())

    def get_reward(self, physics: swimmer.Physics) -> float:
        return float(rewards.tolerance(forward_speed(physics), bounds=(TARGET_SPEED, math.inf),
                                       margin=TARGET_SPEED, sigmoid="linear", value_at_margin=0.0))


# task name -> dm-control task class: `swim` (forward speed, NCAP's) and `swimmer6` (dm-control's target task,
# whose return depends mostly on where the target spawns; body size from `joints` as for `swim`)
TASKS: dict[str, type[base.Task]] = {"swim": SwimTask, "swimmer6": swimmer.Swimmer}


def make_env(joints: int = 5, seed: int | None = None, task: str = "swim") -> control.Environment:
    """A `task` environment for a body with `joints` actuated joints; episodes never end by themselves."""
    if joints < 2:
        raise ValueError(f"the swimmer needs at least 2 joints (3 links), got {joints}")
    if task not in TASKS:
        raise ValueError(f"unknown swimmer task '{task}': expected one of {', '.join(TASKS)}")
    physics = _compiled_body(joints).copy()  # its own model and data: swimmer6 moves its target in the model
    return control.Environment(physics, TASKS[task](random=seed), time_limit=math.inf,
                               control_timestep=CONTROL_TIMESTEP)


@functools.lru_cache(maxsize=16)
def _compiled_body(joints: int) -> swimmer.Physics:
    """The swimmer's physics fresh from its XML, compiled once per body size (a copy costs a fifth of a compile,
    which an ES generation of many episodes paid per episode)."""
    xml, assets = swimmer.get_model_and_assets(joints + 1)
    return swimmer.Physics.from_xml_string(xml, assets=assets)


def normalise_joints(angles: np.ndarray, joints: int) -> np.ndarray:
    """Joint angles as the circuit reads them: divided by the joint limit 2*pi/(joints+1), clipped to [-1, 1].
    Numpy or JAX arrays (the JAX policy normalises inside its compiled step)."""
    return (angles / (2 * math.pi / (joints + 1))).clip(-1.0, 1.0)


def flat_observation(observation: dict[str, np.ndarray], joints: int) -> np.ndarray:
    """The whole observation as one vector per environment (what an MLP reads): normalised joints, the target
    (`swimmer6` only) and the body velocities."""
    target = [observation["to_target"]] if "to_target" in observation else []
    return np.concatenate([normalise_joints(observation["joints"], joints), *target, observation["body_velocities"]],
                          -1)


class Policy(Protocol):
    """A controller for a batch of swimmers stepped in lockstep."""

    def reset(self, batch: int) -> None: ...
    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray: ...  # arrays [batch, ...] -> [batch, joints]


class _OptimizerSteps:
    """How many optimizer steps this process has taken, counted by torch's hook common to all optimizers (registered
    with the first torch policy): a fused optimizer (`fused=True`) changes its parameters in place without counting
    their versions, so a policy reads its weights again after any optimizer's step."""

    taken = 0
    hooked = False

    @classmethod
    def hook(cls) -> None:
        if not cls.hooked:
            from torch.optim.optimizer import register_optimizer_step_post_hook

            register_optimizer_step_post_hook(cls.count)
            cls.hooked = True

    @classmethod
    def count(cls, *_: Any) -> None:
        cls.taken += 1


class CircuitPolicy:
    """A compiled circuit as a swim controller: joint angles into input `q`, output `torque` as the action.

    Works with the torch backend's module and with the JAX backend's functions (`params` default to its `init()`,
    the torch module's initial values for the same seed).  A JAX circuit acts by one jitted call per act, on its
    parameters prepared once (`JaxCircuit.prepare`) and its state, carried as one donated array
    (circuitdsl/envs/jax_acting.py); it prepares them again when `policy.params` is replaced or one of its keys or
    entries is (JAX arrays never change in place; entries that can, such as numpy arrays, are prepared every act),
    and at each `reset`.  Its actions are those of the circuit's `step`.

    A torch module on the CPU acts through the same circuit compiled for numpy (`backend="numpy"`, in the
    module's dtype, with its lowering): at batch 1 a numpy step costs a fraction of a torch step, and acting needs
    no gradients.  It acts with the module's current weights: each `act` compares every parameter's identity,
    version counter and data pointer, and the number of optimizer steps taken in the process, with those of the
    weights it holds and reads them again when any differs, which covers an optimizer step (also a fused one,
    which counts no version), an in-place change under `torch.no_grad()` (`copy_`, `rezero_weights`), a replaced
    parameter and new data given with `p.data = ...` (`vector_to_parameters`); `reset` always reads them again.
    Only an in-place change through `p.data` (`p.data.mul_(2)`), which torch counts nowhere, and a new parameter
    table (`module.params = ...`) wait for the next `reset`.  A module on another device acts
    through torch itself.
    """

    def __init__(self, compiled: Any, params: Any = None, joints: int = 5, inputs: str = "q",
                 output: str = "torque") -> None:
        self.compiled, self.joints, self.inputs, self.output = compiled, joints, inputs, output
        self.torch = hasattr(compiled, "parameters")
        if self.torch:
            import torch

            self._torch = torch
            self._numpy: Any = None  # the circuit compiled for numpy, while the module is on the CPU
            self._weights: list[tuple[int, int, int]] = []  # (identity, version, data pointer) of what it holds
            self._held: list[Any] = []  # the parameters those are of, kept so that no identity is reused
            self._params: Any = None  # the module's parameter table, as at the last reset
            self._steps = -1  # the optimizer steps taken when it read them
            _OptimizerSteps.hook()
        else:
            from circuitdsl.envs.jax_acting import JaxActing

            self.params = compiled.init() if params is None else params
            self._jax = JaxActing(compiled, joints, inputs, output)
        self._state: Any = None

    @property
    def state(self) -> Any:
        """The circuit's state after the last act (None before the first `reset`)."""
        return self._state if self.torch else self._jax.state

    def reset(self, batch: int) -> None:
        if self.torch:
            self._state = self._reset_torch(batch)
        else:
            self._jax.reset(batch)

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        if self.torch:
            return self._act_torch(normalise_joints(observation["joints"], self.joints).astype(np.float32))
        return self._jax.act(self.params, observation["joints"])

    def _reset_torch(self, batch: int) -> Any:
        """The initial state for the torch module: the numpy circuit's while the module is on the CPU (its
        weights read again at the next act), else the module's own."""
        state = self.compiled.initial_state(batch)
        where = next(iter(state.values()))  # the module's device and dtype
        if where.device.type != "cpu":
            self._numpy = None
            return state
        dtype = str(where.dtype).removeprefix("torch.")
        if self._numpy is None or self._numpy.dtype != dtype:
            import circuitdsl

            self._numpy = circuitdsl.compile(self.compiled.ir, backend="numpy", lowering=self.compiled.lowering,
                                             dtype=dtype)
        # the module's table, held: reading it through nn.Module's __getattr__ costs as much as the check per act
        self._weights, self._params = [], self.compiled.params
        return self._numpy.initial_state(batch)

    def _act_torch(self, q: np.ndarray) -> np.ndarray:
        """The torch module's action: through the numpy circuit with the module's current weights while the module
        is on the CPU, else through the module."""
        numpy = self._numpy
        if numpy is None:
            torch = self._torch
            with torch.inference_mode():  # no autograd bookkeeping per operation; the state stays inside
                outputs, self._state = self.compiled({self.inputs: torch.from_numpy(q)}, self._state)
            return outputs[self.output].numpy().astype(np.float64)
        params = self._params
        steps, weights = _OptimizerSteps.taken, [(id(p), p._version, p.data_ptr()) for p in params.values()]
        if steps != self._steps or weights != self._weights:
            numpy.set_params({key: p.detach() for key, p in params.items()})
            self._steps, self._weights, self._held = steps, weights, list(params.values())
        numpy.nonfinite = self.compiled.nonfinite
        outputs, self._state = numpy.step({self.inputs: q.astype(numpy.ops.dtype, copy=False)}, self._state)
        return outputs[self.output].astype(np.float64)


def run_episodes(policy: Policy, joints: int = 5, seeds: Iterable[int] = range(10),
                 steps: int = EPISODE_STEPS, task: str = "swim") -> np.ndarray:
    """The return of one episode per seed, all seeds stepped together through one batched policy."""
    envs = [make_env(joints, seed, task) for seed in seeds]
    observations = [env.reset().observation for env in envs]
    policy.reset(len(envs))
    returns = np.zeros(len(envs))
    for _ in range(steps):
        batch = {key: np.stack([o[key] for o in observations]) for key in observations[0]}
        actions = policy.act(batch)
        for i, env in enumerate(envs):
            step = env.step(actions[i])
            observations[i] = step.observation
            returns[i] += step.reward
    return returns


class SwimLoop:
    """Closes a simulation's loop through one swimmer: torques in, normalised joint angles out (see simulate)."""

    def __init__(self, joints: int, seed: int = 0, inputs: str = "q", output: str = "torque") -> None:
        self.env, self.joints, self.inputs, self.output = make_env(joints, seed), joints, inputs, output
        self.observation = self.env.reset().observation
        self.total_reward = 0.0

    def __call__(self, previous: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
        if previous is not None:
            step = self.env.step(previous[self.output])
            self.observation, self.total_reward = step.observation, self.total_reward + step.reward
        return {self.inputs: normalise_joints(self.observation["joints"], self.joints).astype(np.float32)}
