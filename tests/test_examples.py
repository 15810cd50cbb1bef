"""The swimmer training examples run, change the parameters, are deterministic and replay the circuit right.

The examples are scripts, not a package: each is imported by path, with its folder on `sys.path` for the
`common` module the scripts share.  Budgets are tiny (one generation or update of 50-step episodes).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import torch

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "swimmer"
TINY = ["--episode-steps", "50", "--eval-episodes", "1", "--no-progress"]
BUDGET = {"train_es": ["--generations", "1"], "train_ppo": ["--updates", "1", "--envs", "2", "--epochs", "2"]}


@pytest.fixture
def load(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """A loader of example scripts by name, with the examples folder importable while the test runs."""
    monkeypatch.syspath_prepend(str(EXAMPLES))

    def loader(name: str) -> ModuleType:
        spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return loader


def flat(parameters: list[torch.nn.Parameter]) -> torch.Tensor:
    return torch.nn.utils.parameters_to_vector(parameters).detach()


@pytest.mark.parametrize("policy", ["ncap", "mlp"])
@pytest.mark.parametrize("script", ["train_es", "train_ppo"])
def test_trainer_runs_and_changes_the_parameters(load: Callable[[str], ModuleType], script: str, policy: str) -> None:
    log = load(script).main(["--policy", policy, *BUDGET[script], *TINY])
    assert log.history[0].env_steps == 0 < log.history[-1].env_steps
    returns = [r.train_return for r in log.history[1:]] + [r.eval_return for r in log.history]
    assert all(r is not None and math.isfinite(r) for r in returns), log.history
    initial = load("common").Controller(policy, 5, 0)
    assert not torch.equal(flat(log.controller.parameters()), flat(initial.parameters()))


def test_ppo_is_deterministic_for_a_seed(load: Callable[[str], ModuleType]) -> None:
    main = load("train_ppo").main
    first, again = (main(["--policy", "ncap", "--seed", "3", *BUDGET["train_ppo"], *TINY]) for _ in range(2))
    assert first.history == again.history
    assert torch.equal(flat(first.controller.parameters()), flat(again.controller.parameters()))


def test_replaying_an_episode_gives_the_actions_the_stateful_circuit_took(load: Callable[[str], ModuleType]) -> None:
    """What PPO relies on: `means` over a stored episode equals stepping the circuit (past the clock's half period)."""
    ppo = load("train_ppo")
    controller = load("common").Controller("ncap", 5, 0)
    no_noise = torch.full((5,), -math.inf)
    observations, actions, _ = ppo.collect(controller, no_noise, [0, 1], 70, np.random.default_rng(0))
    with torch.no_grad():
        replayed = controller.means({key: value[:, :-1] for key, value in observations.items()})
    assert replayed.shape == (2, 70, 5)
    np.testing.assert_allclose(replayed.numpy(), actions, atol=1e-6)
    assert len(np.unique(np.sign(actions[:, :, 0]))) > 1  # the head joint's torque changed sign with the oscillator
