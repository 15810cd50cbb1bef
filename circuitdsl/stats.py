"""Size and structure of an elaborated circuit: units, synapses per kind, free and fixed parameters, and the
effective rank of its initial recurrent weight matrix (`circuitdsl check --stats`).

The effective rank of a matrix with singular values s_i is exp(H), H the entropy of p_i = s_i / sum(s)
(Roy & Vetterli 2007): n for a matrix whose singular values are all equal, 1 for a rank-one matrix.  The
matrix is the initial chemical weights among all population units, [target, source], with the parameters
drawn by seed 0; it is computed up to MAX_RANK_UNITS units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.model import CircuitIR, Ref
from circuitdsl.ir.params import NumpyOps, effective, initial_values, synapse_units, synapse_weights
from circuitdsl.ir.units import port_size, selected_units

MAX_RANK_UNITS: Final = 5000


@dataclass(frozen=True)
class Stats:
    units: int
    synapses: dict[str, int]  # per kind: chemical, electrical, and input (from input ports)
    free: int  # trainable scalars
    fixed: int  # frozen parameter scalars plus fixed per-synapse data (a connectome's scales)
    effective_rank: float | None  # None above MAX_RANK_UNITS units, or without chemical synapses

    def format(self) -> str:
        rank = "n/a" if self.effective_rank is None else f"{self.effective_rank:.1f}"
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.synapses.items())
        return (f"  neurons (units): {self.units}\n  synapses: {kinds or 'none'}\n"
                f"  parameters: {self.free} free, {self.fixed} fixed\n"
                f"  effective rank of the initial weight matrix: {rank}")


def effective_rank(matrix: np.ndarray) -> float:
    """exp of the entropy of the normalised singular values (0 for a zero matrix)."""
    s = np.linalg.svd(matrix, compute_uv=False)
    total = s.sum()
    if total <= 0:
        return 0.0
    p = s[s > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))


def initial_matrix(ir: CircuitIR) -> np.ndarray:
    """The initial chemical weights among every population unit, [target, source] (parameters by seed 0)."""
    sizes = {p.name: [a.size for a in p.shape] for p in ir.populations}
    start = dict(zip(sizes, np.cumsum([0] + [math.prod(s) for s in sizes.values()])[:-1], strict=True))
    n = sum(math.prod(s) for s in sizes.values())
    rng = np.random.default_rng(0)
    values = {p.name: np.asarray(effective(p, initial_values(p, rng), NumpyOps())).reshape(-1) for p in ir.parameters}
    matrix = np.zeros((n, n))
    for p in ir.projections:
        if (p.kind != "chemical" or not isinstance(p.source, Ref) or p.source.source not in start or p.delay
                or port_size(ir.neurons[ir.population(p.target).model], p.port) != 1):
            continue
        pre, post = synapse_units(p)
        pre = selected_units(sizes[p.source.source], p.source.select)[pre]
        post = selected_units(sizes[p.target], p.target_select)[post]
        np.add.at(matrix, (start[p.target] + post, start[p.source.source] + pre), synapse_weights(p, values[p.weight.param]))
    return matrix


def stats(ir: CircuitIR) -> Stats:
    synapses: dict[str, int] = {}
    populations = {p.name for p in ir.populations}
    for projection in ir.projections:  # a projection reading an input port is no synapse between cells
        kind = projection.kind if set(signal_sources(projection.source, ir.shared)) <= populations else "input"
        synapses[kind] = synapses.get(kind, 0) + projection.synapses
    free = sum(p.size for p in ir.parameters if p.trainable)
    fixed = sum(p.size for p in ir.parameters if not p.trainable)
    fixed += sum(len(p.weight.scale) for p in ir.projections if p.weight.scale is not None)
    rank = None
    if ir.units <= MAX_RANK_UNITS and synapses.get("chemical"):
        rank = effective_rank(initial_matrix(ir))
    return Stats(ir.units, synapses, free, fixed, None if rank is None or math.isnan(rank) else rank)
