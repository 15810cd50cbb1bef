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
from typing import Any, ClassVar, Final

import numpy as np

from circuitdsl.backends.plan import make_plan, ref_key
from circuitdsl.backends.step import effective, initial_values
from circuitdsl.ir.graph import signal_sources
from circuitdsl.ir.model import CircuitIR, Ref
from circuitdsl.ir.units import port_size

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


class _NumpyOps:
    """What `effective` needs to apply a parameter's sign enforcement in numpy."""

    functions: ClassVar[dict[str, Any]] = {"clamp": np.clip, "abs": np.abs}

    def softplus(self, x: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, x)


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
    plan = make_plan(ir, lowering="sparse")
    start = dict(zip(plan.order, np.cumsum([0] + [plan.populations[n].size for n in plan.order])[:-1],
                     strict=True))
    n = sum(p.size for p in plan.populations.values())
    rng = np.random.default_rng(0)
    values = {p.name: np.asarray(effective(p, initial_values(p, rng), _NumpyOps())).reshape(-1)  # type: ignore[arg-type]
              for p in plan.parameters}
    matrix = np.zeros((n, n))
    for p in plan.projections:
        if (p.kind != "chemical" or not isinstance(p.source, Ref) or p.source.source not in start or p.delay
                or port_size(plan.populations[p.target].model, p.port) != 1):
            continue
        w = values[p.param]
        if p.gather is not None:
            w = w[p.gather]
        else:
            w = np.broadcast_to(w[p.offset] if p.stride == 0 else w[p.offset:p.offset + p.synapses], (p.synapses,))
        if p.factor is not None:
            w = w * p.factor
        source_units = plan.ref_index[ref_key(p.source)]
        pre = p.pre if source_units is None else source_units[p.pre]
        post = p.post if p.target_index is None else p.target_index[p.post]
        np.add.at(matrix, (start[p.target] + post, start[p.source.source] + pre), w)
    return matrix


def stats(ir: CircuitIR) -> Stats:
    synapses: dict[str, int] = {}
    populations = {p.name for p in ir.populations}
    for projection in ir.projections:  # a projection reading an input port is no synapse between cells
        kind = projection.kind if set(signal_sources(projection.source)) <= populations else "input"
        synapses[kind] = synapses.get(kind, 0) + projection.synapses
    free = sum(p.size for p in ir.parameters if p.trainable)
    fixed = sum(p.size for p in ir.parameters if not p.trainable)
    fixed += sum(len(p.weight.scale) for p in ir.projections if p.weight.scale is not None)
    rank = None
    if ir.units <= MAX_RANK_UNITS and synapses.get("chemical"):
        rank = effective_rank(initial_matrix(ir))
    return Stats(ir.units, synapses, free, fixed, None if rank is None or math.isnan(rank) else rank)
