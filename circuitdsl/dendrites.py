"""Helpers for dendritic circuits: Ahmad & Hawkins' false-match probability, the modified Kaiming init of
active dendrites, prototype contexts (Iyer et al. 2022), all plain numpy for any backend; and growing the
dendrite nodes of a compiled torch module."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

from circuitdsl.ir.model import CircuitIR


def false_match_probability(n: int, a: int, s: int, theta: int) -> float:
    """Chance that a random pattern of `a` active cells out of `n` puts at least `theta` of a segment's `s`
    synapses on active cells: sum over b >= theta of C(s, b) C(n - s, a - b) / C(n, a), computed exactly."""
    if not 0 <= a <= n or not 0 <= s <= n or theta < 0:
        raise ValueError(f"need 0 <= a, s <= n and theta >= 0, got n={n}, a={a}, s={s}, theta={theta}")
    matches = sum(math.comb(s, b) * math.comb(n - s, a - b) for b in range(theta, min(s, a) + 1))
    return float(Fraction(matches, math.comb(n, a)))


def false_match_sampled(n: int, a: int, s: int, theta: int, trials: int, seed: int = 0) -> float:
    """The same probability by Monte-Carlo: the fraction of `trials` random active sets matching a fixed segment."""
    rng = np.random.default_rng(seed)
    active = rng.random((trials, n)).argsort(axis=1)[:, :a]  # a distinct random cells per trial
    on_segment = (active < s).sum(axis=1)  # the segment's synapses sit on cells 0..s-1 (any fixed set will do)
    return float((on_segment >= theta).mean())


def modified_kaiming_bound(fan_in: int, input_density: float = 1.0, weight_density: float = 1.0) -> float:
    """Half-width of the uniform init of active-dendrite layers: 1 / sqrt(input density · weight density · fan-in)
    (the feed-forward weights; segments use input density 0.1 over the context size)."""
    return 1.0 / math.sqrt(input_density * weight_density * fan_in)


def prototypes(inputs: np.ndarray, tasks: np.ndarray) -> np.ndarray:
    """One context per task, the mean of its training inputs: [tasks, features], row t for task t."""
    inputs, tasks = np.asarray(inputs, dtype=np.float32), np.asarray(tasks)
    return np.stack([inputs[tasks == t].mean(axis=0) for t in range(int(tasks.max()) + 1)])


def nearest_prototype(inputs: np.ndarray, protos: np.ndarray) -> np.ndarray:
    """Each input's context at test time: the prototype nearest to it (Euclidean), [samples, features]."""
    inputs = np.asarray(inputs, dtype=np.float32)
    distances = ((inputs[:, None, :] - protos[None, :, :]) ** 2).sum(axis=2)
    return protos[distances.argmin(axis=1)]  # type: ignore[no-any-return]


def grow_dendrites(module: Any, grown: CircuitIR, seed: int = 0) -> Any:
    """A compiled torch module restructured as `grown`, the same circuit with more dendrite copies (e.g.
    `load(path, copies = 2)`): every trained weight kept, each param that grew along an axis keeping its old
    values first and the new copies drawn by `grown`'s inits (their output weights start at 0, so the outputs
    are unchanged at the moment of growth)."""
    from circuitdsl import compile as compile_circuit  # the public entry point: only it reaches the backends

    new = compile_circuit(grown, seed=seed)
    trained, state = module.state_dict(), new.state_dict()
    for key, value in state.items():
        old = trained.get(key)
        if old is None:
            continue
        if old.dim() != value.dim() or any(a > b for a, b in zip(old.shape, value.shape, strict=True)):
            raise ValueError(f"{key}: {tuple(old.shape)} does not fit in {tuple(value.shape)}")
        value[tuple(slice(0, n) for n in old.shape)] = old
    new.load_state_dict(state)
    return new
