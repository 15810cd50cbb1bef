"""Swim controllers as trainers see them: a flat vector of trainable weights, and the returns of many such vectors.

A controller is a compiled circuit (any `.circuit` file with an input `q` of joint angles and an output `torque`,
with its circuit arguments; torch or JAX backend) or the MLP baseline.  Evolution strategies only need
`vector`, `set_vector` and `returns`; on the JAX backend `returns` steps a whole population of weight vectors
as one `vmap`ped call per control step, so the cost of a generation is the physics, not the policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

import circuitdsl
from circuitdsl.envs.baselines import MLPPolicy
from circuitdsl.envs.swim import CircuitPolicy, Policy, flat_observation, normalise_joints, run_episodes

MODELS = Path(__file__).resolve().parents[2] / "models"
NCAP = MODELS / "ncap_swimmer.circuit"
ArgValue = str | int | float | bool


class SwimController:
    """A controller for the swimmer with `joints` joints: `model` is "ncap", "mlp" or a .circuit path.

    A circuit gets the body's `joints` as its argument of that name when it declares one, plus `args`.
    """

    def __init__(self, model: str | Path, joints: int, seed: int, args: Mapping[str, ArgValue] | None = None,
                 backend: str = "torch", task: str = "swim") -> None:
        self.joints, self.seed, self.task, self.backend = joints, seed, task, backend
        self.kind = "mlp" if str(model) == "mlp" else "circuit"
        self.module: torch.nn.Module | None = None
        self.policy: Policy
        if self.kind == "mlp":
            self.module = self.policy = MLPPolicy(joints, seed=seed, task=task)
            self._sizes = [(name, p.numel()) for name, p in self.module.named_parameters() if p.requires_grad]
            return
        path = NCAP if str(model) == "ncap" else Path(model)
        ir = load_circuit(path, joints, args or {})
        self.compiled = circuitdsl.compile(ir, backend=backend, seed=seed)
        # trainable weights in the IR's order on both backends, keyed as compiled circuits key them ('.' -> '/')
        self._trainable = [p.name.replace(".", "/") for p in ir.parameters if p.trainable]
        self._sizes = [(p.name, p.size) for p in ir.parameters if p.trainable]
        if backend == "torch":
            self.module = self.compiled
            self.policy = CircuitPolicy(self.compiled, joints=joints)
            return
        self.params = self.compiled.init()
        self.policy = CircuitPolicy(self.compiled, self.params, joints=joints)
        self._population = PopulationPolicy(self.compiled, joints)

    def parameters(self) -> list[torch.nn.Parameter]:
        """The trainable torch parameters, a circuit's in the IR's order (empty on the JAX backend: use `vector`)."""
        if self.module is None:
            return []
        if self.kind == "circuit":
            return [self.module.params[key] for key in self._trainable]  # type: ignore[index,misc]
        return [p for p in self.module.parameters() if p.requires_grad]

    def named_weights(self) -> list[tuple[str, float]]:
        """Every trainable scalar with its name (`ipsi`, `W[3]`), in the order of `vector`."""
        labels = [name if size == 1 else f"{name}[{i}]" for name, size in self._sizes for i in range(size)]
        return list(zip(labels, self.vector().tolist(), strict=True))

    def vector(self) -> np.ndarray:
        """The trainable weights as one float64 vector."""
        if self.module is not None:
            return parameters_to_vector(self.parameters()).detach().double().numpy()
        return np.concatenate([np.asarray(self.params[k], dtype=np.float64).ravel() for k in self._trainable])

    def set_vector(self, vector: np.ndarray) -> None:
        """Load a flat vector (as `vector` lays it out) into the controller and its policy."""
        if self.module is not None:
            with torch.no_grad():
                vector_to_parameters(torch.as_tensor(vector, dtype=torch.float32).clone(), self.parameters())
            return
        self.params = self._unflatten(np.asarray(vector, dtype=np.float32)[None])
        self.params = {k: v[0] for k, v in self.params.items()}
        self.policy.params = self.params  # type: ignore[attr-defined]

    def returns(self, vectors: np.ndarray, seeds: Sequence[int], steps: int) -> np.ndarray:
        """The return of every weight vector [P, n] on every episode seed: [P, len(seeds)].  All P x seeds
        swimmers step together, through one batched policy call per step (the torch circuit: one member at a
        time)."""
        batch = np.repeat(np.asarray(vectors, dtype=np.float32), len(seeds), axis=0)
        episodes = [s for _ in vectors for s in seeds]
        if self.module is None:
            self._population.params = self._unflatten(batch)
            population: Policy = self._population
        elif self.kind == "mlp":
            population = MLPPopulation(self.module, batch, self.joints)
        else:
            saved, out = self.vector(), np.empty((len(vectors), len(seeds)))
            for i, vector in enumerate(vectors):
                self.set_vector(vector)
                out[i] = run_episodes(self.policy, self.joints, seeds, steps, self.task)
            self.set_vector(saved)
            return out
        return run_episodes(population, self.joints, episodes, steps, self.task).reshape(len(vectors), len(seeds))

    def _unflatten(self, vectors: np.ndarray) -> dict[str, Any]:
        """[B, n] vectors -> params with a leading axis B (fixed params broadcast)."""
        import jax.numpy as jnp

        params, start = {}, 0
        for key, value in self.params.items():
            shape = np.shape(value)
            if key in self._trainable:
                size = int(np.prod(shape))
                params[key] = jnp.asarray(vectors[:, start:start + size].reshape(len(vectors), *shape))
                start += size
            else:
                params[key] = jnp.broadcast_to(jnp.asarray(value), (len(vectors), *shape))
        return params


class MLPPopulation:
    """Many weight vectors of one MLP, one swimmer each: member b acts with the weights `vectors[b]`."""

    def __init__(self, module: torch.nn.Module, vectors: np.ndarray, joints: int) -> None:
        self.module, self.joints, self.params, start = module, joints, {}, 0
        for name, parameter in module.named_parameters():  # parameters_to_vector's order
            size = parameter.numel()
            self.params[name] = torch.from_numpy(vectors[:, start:start + size]).reshape(len(vectors),
                                                                                         *parameter.shape)
            start += size

    def reset(self, batch: int) -> None:
        """Stateless."""

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        x = torch.from_numpy(flat_observation(observation, self.joints).astype(np.float32))
        member = torch.func.vmap(lambda params, row: torch.func.functional_call(self.module, params, (row,)))
        with torch.no_grad():
            return member(self.params, x).numpy().astype(np.float64)


class PopulationPolicy:
    """Many weight sets of one JAX circuit, one swimmer each: member b steps with `params[...][b]`."""

    def __init__(self, compiled: Any, joints: int) -> None:
        import jax

        self.compiled, self.joints = compiled, joints
        self.params: dict[str, Any] = {}
        members = jax.vmap(compiled.step, in_axes=(0, 0, 0))

        def step(params: Any, state: Any, q: Any) -> tuple[Any, Any]:
            outputs, state = members(params, state, {"q": q[:, None, :]})
            return outputs["torque"][:, 0], state

        self._step = jax.jit(step)  # one dispatch per control step: the torque's slicing is compiled in too
        self.state: Any = None

    def reset(self, batch: int) -> None:
        import jax

        self.state = jax.tree_util.tree_map(lambda x: x[:, None], self.compiled.initial_state(batch))

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        q = normalise_joints(observation["joints"], self.joints).astype(np.float32)
        torque, self.state = self._step(self.params, self.state, q)
        return np.asarray(torque, dtype=np.float64)


def load_circuit(path: Path, joints: int, args: Mapping[str, ArgValue]) -> Any:
    """The circuit's IR for a body of `joints` joints: its argument `joints` set to that, when it declares one."""
    ir = circuitdsl.elaborate(path, args=args).ir
    if "joints" in ir.args and ir.args["joints"] != joints:
        ir = circuitdsl.elaborate(path, args={**args, "joints": joints}).ir
    return ir
