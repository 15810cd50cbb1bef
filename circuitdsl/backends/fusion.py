"""Per-target fusion, decided once per compile in numpy: every synapse into one port of one population becomes
one operator over one input vector.

A port's input vector X is the concatenation of the signals its projections read (blocks): a population's
output (this step's, or the previous step's for recurrent edges and gap junctions; a selection of its units is
folded into the synapses' indices, so no gather runs), an input port, a projection's source expression, or a
delay line's oldest slot.  Every synapse is a term (pre: its column of X, post: its element of the port, weight:
an element of its projection's weights times a sign).  A gap junction is written in Laplacian form: g (v_pre -
v_post) into the target is the term +g from the source's output and the term -g from the target's own, and
the mirror image into the source, so junctions fuse with the chemical synapses of the same port.

Each group runs as one operation, chosen by size and density (`lowering`): `elementwise` (one one-to-one
projection: x * w), `dense` (one matmul with the [port, X] matrix, built once per forward call) or `sparse`
(one CSR product; thresholds measured, see DENSE_CELLS); a backend may overrule the choice (`Choice`: JAX runs
small groups as `ell`, circuitdsl/backends/jax_lowering.py).  Operator projections and learnable delays are not
fused: they run as their own operations (circuitdsl/backends/program.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from circuitdsl.backends.plan import DENSE_ABOVE, Plan, ProjectionPlan, flat_index
from circuitdsl.ir.model import Ref

SMALL_CELLS: Final = 16384
"""A group whose [port, X] matrix has at most this many cells runs dense at any density: measured on one CPU
thread (benchmarks/lowerings.py, torch, batch 1 and 4), a 128 x 128 product costs 3-4 us dense and 8-12 us as CSR
at every density from 1% to 30%."""

DENSE_CELLS: Final = 4_000_000
"""Above this many cells a group runs sparse (CSR) whatever its density.  Between SMALL_CELLS and DENSE_CELLS,
DENSE_ABOVE (10%) decides; measured: 512 x 512 breaks even near 5-10% (dense 17-25 us, CSR 10 us at 1%, 24-30 us
at 10%, 70-136 us at 30%); 2000 x 2000 (4 M cells) costs 4-13 ms dense, CSR 0.04-0.05 ms at 1% and 3.4-3.6 ms
at 10%, dense winning again only at 30%."""

FEW_CELLS: Final = 131_072
"""A group run sparse by the rules above that has at most this many cells also gets a dense operator, used at a
batch of at most FEW_SAMPLES: measured on one CPU thread (torch, one product, best of 5 rounds of 200), a 302 x 302
group (the whole worm's size) costs 5.5 us dense and 8-12.5 us as CSR at batch 1 (1% to 7.7% dense), 7.4-8.2 us
against 8.3-11.6 us at batch 4, but 77-80 us against 24-44 us at batch 64; 512 x 512 at 1% ties at batch 1."""

FEW_SAMPLES: Final = 4

ACCELERATOR_DENSE_CELLS: Final = 4_000_000
"""On a GPU a group with at most this many cells runs dense at any density (`accelerator_choice`).  Measured on one
NVIDIA H200 (benchmarks/lowerings.py --device cuda; torch 2.11, one CPU thread, a chain of 20 products x <-
tanh(op(x)), microseconds a product): there each product is launch-bound up to 2000 x 2000 (4 M cells), dense 28-48
us at batch 1 and 64 against 46-84 us as CSR at 1% to 30% (61 against 58 at batch 256); at 4000 x 4000 CSR wins at
1% from batch 64 (58 against 69 us, 57 against 184 at batch 256) and at 8000 x 8000 from batch 1 (58 against 93)."""

DIAGONAL_LAYERS: Final = 2
"""A group whose synapses are runs of one-to-one pairs (a column range of its input vector onto a range of its
port) that form at most this many layers, each layer covering the whole port once, runs `diagonal`: each layer
its columns (concatenated where it reads several) times a weight vector, the layers added.  Measured on one CPU
thread (torch, best of 7 rounds of 3,000): two 5-unit layers cost 2.1 us at batch 1 either way and 3.5 us
against 4.6 us as a concatenation and a matrix product at batch 256; two 50-unit layers 2.2 against 2.5 us at
batch 1 and 7.5 against 26 us at batch 256.  Each more layer adds a product and a sum."""

Layer = list[tuple[int, int, int, int]]
"""A diagonal group's layer: (term, first column, first port element, length) of each of its runs, by port
element."""

BlockKey = tuple[str, ...]


@dataclass
class Block:
    """A signal a group reads: `kind` out (a population's output, `past`: the previous step's), input (an input
    port), expr (projection `projection`'s source expression) or delay (its delay line's oldest slot)."""

    kind: str
    name: str
    past: bool
    size: int
    projection: ProjectionPlan | None = None


@dataclass
class Term:
    """The synapses of one projection into a group: weight `sign` times the projection's weight of synapse s,
    from column pre[s] of the group's input vector to element post[s] of its port."""

    projection: ProjectionPlan
    sign: float
    pre: np.ndarray
    post: np.ndarray


@dataclass
class Group:
    """Everything entering one port of one population, as one operation."""

    target: str
    port: str
    size: int
    blocks: list[Block] = field(default_factory=list)
    terms: list[Term] = field(default_factory=list)
    lowering: str = "dense"
    layers: list[Layer] = field(default_factory=list)  # a diagonal group's (diagonal_layers)

    @property
    def width(self) -> int:
        return sum(b.size for b in self.blocks)

    def column(self, key: BlockKey, block: Block) -> int:
        """The first column of a block in the input vector, adding it the first time it is read."""
        start = 0
        for b in self.blocks:
            if (b.kind, b.name, str(b.past)) == key:
                return start
            start += b.size
        self.blocks.append(block)
        return start

    def synapses(self) -> tuple[np.ndarray, np.ndarray]:
        """(pre, post) of every term's synapses, in term order."""
        return (np.concatenate([t.pre for t in self.terms]).astype(np.int64),
                np.concatenate([t.post for t in self.terms]).astype(np.int64))


Choice = Callable[[Group, str], str]
"""A backend's own choice of a group's lowering (dense, sparse or ell), given the automatic one."""


def accelerator_choice(g: Group, automatic: str) -> str:
    """The choice of a module on a GPU: dense up to ACCELERATOR_DENSE_CELLS cells, where the CPU's rules pick CSR
    for a sparse group (a GPU's dense product costs little more than its launch at those sizes)."""
    return "dense" if automatic == "sparse" and g.size * g.width <= ACCELERATOR_DENSE_CELLS else automatic


def fusable(p: ProjectionPlan) -> bool:
    """Whether a projection joins its target's group (operators and learnable delays run on their own)."""
    return p.operator is None and p.delay_param is None


def groups(plan: Plan, force: str = "auto", choose: Choice | None = None) -> dict[tuple[str, str], Group]:
    """Every (population, port) that fusable projections reach, with its blocks, terms and lowering; `choose`
    lets a backend overrule the automatic choice (it gets the group and that choice)."""
    out: dict[tuple[str, str], Group] = {}
    sizes = signal_sizes(plan)

    def group(target: str, port: str) -> Group:
        if (target, port) not in out:
            model = plan.populations[target].model
            inner = next((math.prod(a.size for a in i.shape) for i in model.inputs if i.name == port), 1)
            out[target, port] = Group(target, port, plan.populations[target].size * inner)
        return out[target, port]

    for p in plan.projections:
        if not fusable(p):
            continue
        pre, post = _synapse_units(p)
        if p.kind == "electrical":
            _gap_junction(p, pre, post, group, sizes)
            continue
        g = group(p.target, p.port)
        g.terms.append(Term(p, 1.0, _columns(plan, p, g, pre, sizes), _into(p.target_index, post)))
    for g in out.values():
        g.lowering = _lowering(g, force)
        if choose is not None and force == "auto" and g.lowering != "elementwise":
            g.lowering = choose(g, g.lowering)
        if g.lowering == "diagonal":
            g.layers = diagonal_layers(g) or []
    return out


def signal_sizes(plan: Plan) -> dict[str, int]:
    """The flat size of every population's output and every input port."""
    sizes = {name: math.prod(shape) for name, shape in plan.sizes.items()}
    for name, population in plan.populations.items():
        sizes[name] = population.size * math.prod(a.size for a in population.model.output_shape)
    return sizes


def _synapse_units(p: ProjectionPlan) -> tuple[np.ndarray, np.ndarray]:
    """Each synapse's (pre, post) flat unit of the projection's source signal and target selection."""
    if p.pre is not None and p.post is not None:
        return p.pre, p.post
    if p.rule == "one_to_one":
        return np.arange(p.target_size), np.arange(p.target_size)
    post, pre = np.meshgrid(np.arange(p.target_size), np.arange(p.source_size), indexing="ij")
    return pre.ravel(), post.ravel()


def _into(index: np.ndarray | None, units: np.ndarray) -> np.ndarray:
    return units if index is None else index[units]


def _columns(plan: Plan, p: ProjectionPlan, g: Group, pre: np.ndarray, sizes: dict[str, int]) -> np.ndarray:
    """The columns of g's input vector holding each synapse's source value (adding the block read)."""
    if p.delay:
        block = Block("delay", p.id, False, p.source_size, p)
    elif isinstance(p.source, Ref) and p.source.source in sizes:
        name = p.source.source
        past = p.recurrent and name in plan.populations
        block = Block("out" if name in plan.populations else "input", name, past, sizes[name])
        pre = _into(flat_index(plan.sizes[name], p.source.select), pre)
    else:
        block = Block("expr", p.id, p.recurrent, p.source_size, p)
    return g.column((block.kind, block.name, str(block.past)), block) + pre


def _gap_junction(p: ProjectionPlan, pre: np.ndarray, post: np.ndarray, group: Callable[[str, str], Group],
                  sizes: dict[str, int]) -> None:
    """A junction's four terms, from both ends' previous outputs: g (v_other - v_self) into either end."""
    assert p.source_population is not None and p.source_index is not None
    ends = [(p.target, p.port, _into(p.target_index, post)),
            (p.source_population, p.source_port or p.port, p.source_index[pre])]
    for (own, port, own_units), (other, _, other_units) in (ends, ends[::-1]):
        g = group(own, port)
        other_start = g.column(("out", other, "True"), Block("out", other, True, sizes[other]))
        own_start = g.column(("out", own, "True"), Block("out", own, True, sizes[own]))
        g.terms.append(Term(p, 1.0, other_start + other_units, own_units))
        g.terms.append(Term(p, -1.0, own_start + own_units, own_units))


def diagonal_layers(g: Group) -> list[Layer] | None:
    """g's terms as at most DIAGONAL_LAYERS layers of one-to-one runs, each layer covering the port once, or None
    when they are not: every term must map a column range inside one block onto a range of the port, in order."""
    starts = np.cumsum([0] + [b.size for b in g.blocks])
    layers: list[Layer] = []
    for index, t in enumerate(g.terms):
        n = len(t.pre)
        if n == 0 or not (_run(t.pre) and _run(t.post)):
            return None
        column, element = int(t.pre[0]), int(t.post[0])
        if np.searchsorted(starts, column, side="right") != np.searchsorted(starts, column + n - 1, side="right"):
            return None  # across two blocks
        layer = next((layer for layer in layers
                      if all(element + n <= e or e + m <= element for _, _, e, m in layer)), None)
        if layer is None:
            if len(layers) == DIAGONAL_LAYERS:
                return None
            layers.append(layer := [])
        layer.append((index, column, element, n))
    if any(sum(m for *_, m in layer) != g.size for layer in layers):
        return None  # a layer leaves part of the port uncovered
    return [sorted(layer, key=lambda run: run[2]) for layer in layers]


def _run(units: np.ndarray) -> bool:
    """Whether units are consecutive and increasing."""
    return bool(np.array_equal(units, np.arange(units[0], units[0] + len(units))))


def dense_when_few(g: Group, force: str) -> bool:
    """Whether a sparse group also runs dense at a batch of at most FEW_SAMPLES (`lowering="auto"` only)."""
    return force == "auto" and g.lowering == "sparse" and g.size * g.width <= FEW_CELLS


def _lowering(g: Group, force: str) -> str:
    """elementwise, dense or sparse for a group: forced, or by its size and density."""
    pre, post = g.synapses()
    cells = g.size * g.width
    identity = (len(g.terms) == 1 and g.width == g.size and len(pre) == g.size
                and bool(np.all(pre == np.arange(g.size))) and bool(np.all(post == np.arange(g.size))))
    if force in ("dense", "sparse"):
        return force
    if identity:
        return "elementwise"
    if diagonal_layers(g) is not None:
        return "diagonal"
    if cells <= SMALL_CELLS:
        return "dense"
    unique = len(np.unique(post * g.width + pre))
    return "dense" if cells <= DENSE_CELLS and unique > DENSE_ABOVE * cells else "sparse"
