"""One run of a sweep, as a worker executes it: build the controller, evaluate it at init, train, evaluate at each
checkpoint; the result is the run's rows of the tidy table (one per checkpoint), returned only when all exist.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from circuitdsl.sweep.spec import Unit

EVAL_SEED = 1_000_000  # evaluation episodes start here: run s has its own, the same at every checkpoint


def run(unit: Unit, marker: Path | None = None) -> list[dict[str, Any]]:
    """The rows of one run.  `marker`, when given, holds this process's id while the run is in progress (so a
    supervisor, or a test, can see which worker holds which run)."""
    import os

    if marker is not None:
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text(str(os.getpid()))
    from circuitdsl.envs.controllers import SwimController
    from circuitdsl.envs.es import ESConfig, evolve

    started = time.perf_counter()
    backend = unit.settings.get("backend", "torch") if unit.model != "mlp" else "torch"
    controller = SwimController(unit.model, unit.joints, unit.seed, unit.args, backend, unit.env)
    episodes = [EVAL_SEED + unit.seed * unit.eval_episodes + k for k in range(unit.eval_episodes)]
    rows = []

    def checkpoint(generation: int, env_steps: int, train_return: float | None) -> None:
        returns = controller.returns(controller.vector()[None], episodes, unit.episode_steps)[0]
        rows.append(_row(unit, generation, env_steps, float(returns.mean()), train_return, started))

    checkpoint(0, 0, None)
    if unit.trainer == "es":
        s = unit.settings
        config = ESConfig(s["population"], s["sigma"], s["lr"], s["weight_decay"], unit.episode_steps)
        per_generation = config.population * unit.episode_steps

        def on_generation(generation: int, train_return: float) -> None:
            done = generation + 1
            if done % s["eval_every"] == 0 or done == s["generations"]:
                checkpoint(done, done * per_generation, train_return)

        evolve(controller, config, s["generations"], np.random.default_rng(unit.seed), on_generation)
    if marker is not None:
        marker.unlink(missing_ok=True)
    return rows


def _row(unit: Unit, generation: int, env_steps: int, eval_return: float, train_return: float | None,
         started: float) -> dict[str, Any]:
    """One row of the tidy table."""
    return {"run_id": unit.run_id, "variant": unit.variant, "args": _args_text(unit.args), "env": unit.env,
            "joints": unit.joints, "trainer": unit.trainer, "seed": unit.seed, "generation": generation,
            "env_steps": env_steps, "eval_return": eval_return,
            "train_return": float("nan") if train_return is None else train_return,
            "wall_s": round(time.perf_counter() - started, 3)}


def _args_text(args: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in args.items())


COLUMNS = ["run_id", "variant", "args", "env", "joints", "trainer", "seed", "generation", "env_steps", "eval_return",
           "train_return", "wall_s"]
