"""The lowering pass: a plan compiled once, per backend, dtype and device, into a flat program of prepared
operations (closures).  Nothing walks the IR while a circuit runs, and no source code is generated.

A call runs in two parts:

- `prepare(params)`, once per forward call or rollout: every parameter's effective (signed, clamped) value,
  every group's operator (a [port, X] matrix, a CSR matrix or a weight vector, circuitdsl/backends/fusion.py),
  every neuron's private weights per unit.  A rollout prepares once, not once per step.
- `step(prepared, inputs, state)`, once per time step: for each population in order, each of its groups as one
  operation on the concatenated signals it reads, the operator projections and learnable delays, then its
  neuron model's equations (closures, circuitdsl/backends/closures.py); then the delay lines and the outputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final, TypeVar, overload

import numpy as np

from circuitdsl.backends import delays, ell, operators
from circuitdsl.backends.closures import Compiled, ExprCompiler, full_shaped, value
from circuitdsl.backends.fusion import (
    FEW_SAMPLES,
    Block,
    Choice,
    Group,
    Layer,
    dense_when_few,
    fusable,
    groups,
    signal_sizes,
)
from circuitdsl.backends.neurons import NeuronProgram
from circuitdsl.backends.plan import AXIS_OPERATORS, Plan, ProjectionPlan, flat_index, read_later
from circuitdsl.backends.record import Record
from circuitdsl.backends.step import Ops, Pick, State, as_batch, fixed, read_at
from circuitdsl.ir import axes
from circuitdsl.ir.expr import refs
from circuitdsl.ir.model import Operator, Ref, Var
from circuitdsl.ir.operators import bias_shape
from circuitdsl.ir.params import effective
from circuitdsl.ir.primitives import Primitives

Array = Any
Prepared = dict[str, Any]
Settled = TypeVar("Settled", bound=Mapping[str, Any])

DEFERRED_STEP: Final = 8192
"""The most elements (batch x the widths of the populations the outputs read) a torch or numpy rollout keeps per
step to assemble its outputs after its time loop (`Program.rollout_step`).  Measured on the whole worm (302
units, two outputs of two columns each; 1000 steps, one CPU thread), assembled after the loop against per step:
17.7 against 26.8 ms at batch 1, 31.6 against 38.5 at batch 8 (2,416 elements), 49.6 against 52.3 at batch 24
(7,248), 71.9 against 58.7 at batch 32 (9,664) and 149 against 91 at batch 64: keeping every step's populations
costs memory traffic that outgrows the operations saved."""

DEFERRED_TOTAL: Final = 1 << 24
"""The most elements such a rollout keeps over all its steps (64 MiB in float32): a longer one assembles its outputs
step by step, so that what it holds grows with its outputs' widths only."""

ACCELERATOR_DEFERRED_TOTAL: Final = 1 << 26
"""On a GPU (`Ops.accelerator`) a rollout assembles its outputs after its time loop whenever what it keeps fits in
this many elements (256 MiB in float32), at any batch: there each operation is a kernel launch (about 10 us from
one CPU thread on an H200) and a step's kept populations are a few microseconds of memory traffic.  Measured (the
whole worm, 1000 steps, batch 64, dense, torch 2.11): assembled per step, its two outputs' four column reads and
two sums made the rollout 1.25-1.27x the hand-written one, which reads both outputs with one product; assembled
after the loop, 0.71-0.75x (19.3 M elements kept, 77 MB)."""


class Frame:
    """What one step's closures read and write: the call's prepared parameters, the inputs, the previous state,
    this step's outputs so far, the new state so far, and the values computed once per step (shared
    subexpressions, a neuron's values read twice)."""

    __slots__ = ("batch", "current", "inputs", "memo", "new_state", "prepared", "state")

    def __init__(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array],
                 batch: int) -> None:
        self.prepared, self.inputs, self.state, self.batch = prepared, inputs, state, batch
        self.current: dict[str, Array] = {}
        self.new_state: State = {}
        self.memo: dict[Any, Array] = {}


@dataclass
class _Port:
    """One port of a population: its fused group (if any) and the projections that run on their own."""

    name: str
    size: int
    group: Group | None
    solo: list[ProjectionPlan]
    index: dict[str, Array | None]  # solo projection id -> the port elements it reaches (None: all)


class Program:
    """A plan lowered for one backend (its `ops`, which fix dtype and device)."""

    def __init__(self, plan: Plan, ops: Ops, lowering: str = "auto", choose: Choice | None = None,
                 pick: Pick | None = None) -> None:
        self.plan, self.ops, self._pick = plan, ops, pick
        self.exprs = ExprCompiler(ops, plan.ir.shared)
        self.groups = groups(plan, lowering, choose)
        # sparse groups small enough to run dense at a batch of a few samples: their dense twin, under `key|dense`
        self.twins = {f"{key[0]}:{key[1]}": replace(g, lowering="dense") for key, g in self.groups.items()
                      if dense_when_few(g, lowering)}
        self.sizes = signal_sizes(plan)
        self._arrays: dict[str, Any] = {}
        self.read_later = read_later(plan)  # the populations whose last output is state (recurrent edges, junctions)
        self._elements, self._factors = _synapse_elements(plan)
        self._zero = sum(p.size for p in plan.parameters)  # the 0 appended to the flat parameters
        self._offsets = dict(zip([p.name for p in plan.parameters],
                                 np.cumsum([0] + [p.size for p in plan.parameters]).tolist()))
        for key, g in self.groups.items():
            self._lower_group(f"{key[0]}:{key[1]}", g)
        for name, twin in self.twins.items():
            self._lower_group(f"{name}|dense", twin)
        self.blocks = {id(b): self._block(b) for g in self.groups.values() for b in g.blocks}
        self.products = {f"{key[0]}:{key[1]}": self._product(f"{key[0]}:{key[1]}", g) for key, g in self.groups.items()}
        self.ports = {name: self._ports(name) for name in plan.order}
        self.neurons = {name: NeuronProgram(plan, name, ops) for name in plan.order}
        self.sources = {p.id: self._source(p, p.recurrent and not p.delay) for p in plan.projections
                        if p.kind == "chemical"}
        self.pushes = [(f"{p.id}:delay", self._source(p, False)) for p in plan.projections if p.delay]
        self.outputs = [self._output(o) for o in plan.ir.outputs]
        # what prepare and step loop over, keys built once (not an f-string per population and step)
        self._zero_element = ops.asarray(np.zeros(1))
        self._group_keys = [(f"{key[0]}:{key[1]}", g) for key, g in self.groups.items()]
        self._group_keys += [(f"{key}|dense", twin) for key, twin in self.twins.items()]
        self._private_keys = [(f"{name}:private", neuron) for name, neuron in self.neurons.items()]
        # whether any group reads the flat vector of all parameters (not one whose runs read their parameters)
        self._flat = any(g.lowering != "diagonal" or not ops.fuses for _, g in self._group_keys)
        self._runs = [(name, {p.name: self._port_closure(p) for p in self.ports[name]
                              if p.name in self.neurons[name].reads},
                       self.neurons[name], f"{name}:private", self._kept_key(name)) for name in plan.order]
        self._outputs = list(zip([o.name for o in plan.ir.outputs], self.outputs))
        # the populations the outputs read, with the key a rollout's step gives each under (`step_sources`)
        self._output_reads = [(name, f"{name}:out") for name in plan.order
                              if any(r.source == name for o in plan.ir.outputs for piece in o.pieces
                                     for r in refs(piece.expr, plan.ir.shared))]
        self._read_width = sum(self.sizes[name] for name, _ in self._output_reads)
        # a step without records: each population as one closure (its ports, its equations, its new states)
        self._plain = [(name, out_key, neuron.runner(ports, private))
                       for name, ports, neuron, private, out_key in self._runs]
        self._keeps: dict[tuple[Record, ...], dict[str, frozenset[str]]] = {}
        self._lower_solo(plan)

    # ---- compile time ----------------------------------------------------------------------------

    def _lower_solo(self, plan: Plan) -> None:
        """The constants of the projections that run as operations of their own, made once: an operator's
        function-valued bias basis (the bias itself is parameter-only work, `prepare`) and a multigrid operator's
        resampling matrices, a learned axis map as a function of its weights and source, a learnable delay's
        taps, synapses and weight elements."""
        ops = self.ops
        self._biases = [p for p in plan.projections if p.operator is not None and p.operator.bias is not None
                        and p.operator.kind not in AXIS_OPERATORS]
        for p in self._biases:
            assert p.operator is not None
            self._arrays[f"{p.id}:bias basis"] = [ops.asarray(operators.bias_basis(n, wrap))
                                                  for n, wrap in zip(p.grid, p.operator.periodic)]
        self._axis_maps = {p.id: _axis_map(p, ops.primitives) for p in plan.projections
                           if p.operator is not None and p.operator.kind in AXIS_OPERATORS}
        for p in plan.projections:
            if p.operator is not None:
                self._arrays[f"{p.id}:resampling"] = {key: ops.asarray(operators.resampling(*key))
                                                      for key in operators.resamplings(p.operator, p.grid)}
            if p.delay_param is not None:
                self._arrays[f"{p.id}:taps"] = ops.asarray(delays.taps(p.delay))
                for name in ("pre", "post"):
                    self._arrays[f"{p.id}:{name}"] = ops.asarray(getattr(p, name))
                offset = self._offsets[p.param]
                self._arrays[f"{p.id}:element"] = fixed(self._elements[p.id] - offset, ops, self._pick)
                self._arrays[f"{p.id}:factor"] = ops.asarray(self._factors[p.id])

    def _lower_group(self, key: str, g: Group) -> None:
        """What builds g's operator from the flat vector of all parameters at prepare time: which element (read
        through the backend's `pick` where it has one) and fixed factor each cell, or each synapse where cells
        repeat, takes."""
        ops, pick = self.ops, self._pick
        pre, post = g.synapses()
        element = np.concatenate([self._elements[t.projection.id] for t in g.terms])
        factor = np.concatenate([t.sign * self._factors[t.projection.id] for t in g.terms])
        if g.lowering == "elementwise":
            self._arrays[key] = (fixed(element, ops, pick), _unless_ones(factor, ops))
            return
        if g.lowering == "diagonal":  # per layer, each port element's weight (or each run's): element and factor
            lower = self._run_weights if ops.fuses else self._layer_weights
            self._arrays[key] = [lower(g, layer, element, factor) for layer in g.layers]
            return
        cells = post * g.width + pre
        unique, inverse = np.unique(cells, return_inverse=True)
        if g.lowering in ("sparse", "ell"):
            rows, cols = unique // g.width, unique % g.width
            if g.lowering == "ell":
                self._arrays[f"{key}:ell"] = ell.layout(rows, cols, g.size, g.width, ops, pick)
            else:
                crow = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=g.size))])
                self._arrays[f"{key}:csr"] = (ops.asarray(crow), ops.asarray(rows), ops.asarray(cols), len(unique))
            count, cells = len(unique), inverse.reshape(-1)
        else:  # the [X, port] matrix the product takes, row-major: built without a transpose per call
            count, cells = g.size * g.width, pre * g.size + post
        if len(unique) == len(cells):  # one synapse per cell: a gather fills the matrix (or the CSR values)
            at: np.ndarray = np.full(count, self._zero, dtype=np.int64)
            scale: np.ndarray = np.ones(count)
            at[cells], scale[cells] = element, factor
            if g.lowering == "dense":  # indices shaped [X, port]: the gather is the operator, no reshape per call
                at, scale = at.reshape(g.width, g.size), scale.reshape(g.width, g.size)
            elif g.lowering == "ell" and self._direct(key, at, scale):
                return
            self._arrays[key] = (fixed(at, ops, pick), _unless_ones(scale, ops), None)
        else:  # repeated cells (a pair listed twice, a gap junction's own term): gather per synapse, then add
            self._arrays[key] = (fixed(element, ops, pick), _unless_ones(factor, ops), (ops.asarray(cells), count))

    def _direct(self, key: str, at: np.ndarray, scale: np.ndarray) -> bool:
        """Whether an ELL group's layers read their weights straight from the flat vector of all parameters (the
        padding its 0): where the backend picks that read (JAX: a few slices and broadcasts), not a gather of the
        group's values and a gather of those.  Recorded under `key|slots`."""
        layout = self._arrays[f"{key}:ell"]
        read = None if self._pick is None else self._pick(ell.through(layout, at, self._zero), self.ops)
        if read is not None:
            self._arrays[f"{key}|slots"] = (read, _unless_ones(ell.through(layout, scale, 1.0), self.ops))
        return read is not None

    def _layer_weights(self, g: Group, layer: Layer, element: np.ndarray, factor: np.ndarray) -> tuple[Any, Any]:
        """The gather (and fixed factors) giving a diagonal layer's weight vector, by port element: each run's
        synapses, in order, are its term's (element and factor are every term's, concatenated).  A layer whose
        every element takes one weight (a shared param) gets it as a single value: a product with a 0-d weight
        costs 0.8 us at batch 256, one with a 5-vector broadcast over the batch 1.4 us."""
        at, scale = np.zeros(g.size, dtype=np.int64), np.ones(g.size)
        for _, start, run_at, run_scale in _term_runs(g, layer, element, factor):
            at[start:start + len(run_at)], scale[start:start + len(run_at)] = run_at, run_scale
        return self._one_weight(at, scale) or (self.ops.asarray(at), _unless_ones(scale, self.ops))

    def _run_weights(self, g: Group, layer: Layer, element: np.ndarray, factor: np.ndarray) -> list[tuple[Any, ...]]:
        """A diagonal layer's weights run by run, for a backend that fuses element-wise work (`Ops.fuses`): each
        run's (parameter, its elements there, fixed factors), read from the parameter itself, not gathered from
        the flat vector of all parameters.  A run whose synapses share one weight reads it as one element (0-d).
        Under torch.compile a layer whose 5 elements were gathered by an index tensor from the padded flat
        vector ran as a masked loop per batch row with a bounds check per element; each run times its own
        scalar fuses as the hand-written step does (NCAP under `module.compile()`: 1.28-1.31x the hand-written
        compiled step at batch 1 and 1.77-1.79x at batch 256 with the gather, 1.17-1.19x and 1.24-1.28x without)."""
        found = []
        for term, _, at, scale in _term_runs(g, layer, element, factor):
            name = g.terms[term].projection.param
            local = at - self._offsets[name]
            weight = self._one_weight(local, scale) or (fixed(local, self.ops, self._pick),
                                                        _unless_ones(scale, self.ops))
            found.append((name, *weight))
        return found

    def _one_weight(self, at: np.ndarray, scale: np.ndarray) -> tuple[int, Any] | None:
        """(the element, the 0-d fixed factor) where every entry takes one weight with one factor (a shared
        param), else None."""
        if np.all(at == at[0]) and np.all(scale == scale[0]):
            return int(at[0]), _unless_ones(scale[:1].reshape(()), self.ops)
        return None

    def _block(self, b: Block) -> Callable[[Frame], Array]:
        """A closure reading one block of a group's input vector, [batch, size]."""
        name = b.name
        if b.kind == "input":
            return lambda fr: fr.inputs[name]
        if b.kind == "out":
            key = f"{name}:out"
            if b.past:
                assert name in self.read_later, key
                return lambda fr: fr.state[key]
            return lambda fr: fr.current[name]
        assert b.projection is not None
        if b.kind == "delay":
            key, size = f"{b.projection.id}:delay", b.projection.source_size
            return lambda fr: fr.state[key][:, :size]
        return self._source(b.projection, b.past)

    def _source(self, p: ProjectionPlan, past: bool) -> Callable[[Frame], Array]:
        """p's source signal this step (or the previous step's), [batch, source units]."""
        compiled = self.exprs.compile(p.source, lambda ref: self._read(ref, past), past)
        ops, size = self.ops, p.source_size
        if not callable(compiled):
            return lambda fr: as_batch(compiled, fr.batch, size, ops)
        if full_shaped(p.source, lambda ref: self._leaf_size(ref) == size, self.plan.ir.shared):
            return compiled  # [batch, size] by construction: no check per step

        def source(fr: Frame) -> Array:
            x = compiled(fr)
            shape = x.shape  # a read of the whole signal, or a selection of it, is [batch, size] already
            return x if len(shape) == 2 and shape[1] == size and shape[0] == fr.batch else as_batch(x, fr.batch, size,
                                                                                                      ops)
        return source

    def _leaf_size(self, ref: Ref | Var) -> int | None:
        """How many columns `_read` gives for a leaf: the signal's flat size, or its selection's."""
        if not isinstance(ref, Ref):
            return None
        index = flat_index(self.plan.sizes[ref.source], ref.select)
        return self.sizes[ref.source] if index is None else len(index)

    def _read(self, ref: Ref | Var, past: bool) -> Compiled:
        """A closure reading a signal: an input, or a population's output of this step or the previous one."""
        assert isinstance(ref, Ref)
        name, plan = ref.source, self.plan
        index = flat_index(plan.sizes[name], ref.select)
        at = None if index is None else self.ops.asarray(index)
        if name not in plan.populations:
            whole: Callable[[Frame], Array] = lambda fr: fr.inputs[name]
        elif past:
            key = f"{name}:out"
            assert name in self.read_later, key
            whole = lambda fr: fr.state[key]
        else:
            whole = lambda fr: fr.current[name]
        if at is None:
            return whole
        assert index is not None
        if len(index) and np.array_equal(index, np.arange(index[0], index[0] + len(index))):
            start, stop = int(index[0]), int(index[0]) + len(index)  # a contiguous run: a slice, not a gather
            return lambda fr: whole(fr)[:, start:stop]
        take = self.ops.take
        return lambda fr: take(whole(fr), at)

    def _ports(self, population: str) -> list[_Port]:
        model = self.plan.populations[population].model
        size = self.plan.populations[population].size
        ports = []
        for port in model.inputs:
            solo = [p for p in self.plan.projections if not fusable(p) and p.target == population
                    and p.port == port.name]
            index = {p.id: None if p.target_index is None else self.ops.asarray(p.target_index) for p in solo}
            inner = math.prod(a.size for a in port.shape)
            ports.append(_Port(port.name, size * inner, self.groups.get((population, port.name)), solo, index))
        return ports

    def _output(self, output: Any) -> Callable[[Frame], Array]:
        """A closure assembling an output from its pieces, [batch, units]."""
        n, ops = math.prod(a.size for a in output.shape), self.ops
        pieces = []
        for piece in output.pieces:
            compiled = self.exprs.compile(piece.expr, lambda ref: self._read(ref, False), False)
            index = flat_index([a.size for a in output.shape], piece.select)
            pieces.append((compiled, None if index is None else ops.asarray(index),
                           n if index is None else len(index)))
        if len(pieces) == 1 and pieces[0][1] is None:
            compiled = pieces[0][0]
            if callable(compiled) and full_shaped(output.pieces[0].expr, lambda ref: self._leaf_size(ref) == n,
                                                  self.plan.ir.shared):
                return compiled  # [batch, n] by construction
            return lambda fr: as_batch(value(compiled, fr), fr.batch, n, ops)

        def assemble(fr: Frame) -> Array:
            total = ops.zeros(fr.batch, n)
            for compiled, index, size in pieces:
                part = as_batch(value(compiled, fr), fr.batch, size, ops)
                total = part + total if index is None else ops.add_at(total, index, part)
            return total
        return assemble

    def _kept_key(self, name: str) -> str | None:
        """The state key a population's output is kept under for the next step (`pop:out`), or None when no
        step reads it later."""
        return f"{name}:out" if name in self.read_later else None

    # ---- once per call ---------------------------------------------------------------------------

    def prepare(self, params: Mapping[str, Array]) -> Prepared:
        """Everything that depends on the parameters only: effective values, group operators, neuron weights."""
        ops = self.ops
        weights = {p.name: _vector(effective(p, params[p.name], ops)) for p in self.plan.parameters}
        flat = ops.concat([*weights.values(), self._zero_element], 0) if self._flat else None  # and a 0 for empty cells
        prepared: Prepared = {"weights": weights}
        for key, g in self._group_keys:
            prepared[key] = self._group_operator(key, g, flat, weights)
        for key, neuron in self._private_keys:
            prepared[key] = neuron.private(weights)
        for p in self._biases:
            assert p.operator is not None and p.operator.bias is not None
            coefficients = weights[p.operator.bias].reshape(bias_shape(p.operator, p.channels[1]))
            prepared[f"{p.id}:bias"] = operators.bias(coefficients, self._arrays[f"{p.id}:bias basis"], ops)
        return prepared

    def _synapse_weights(self, p: ProjectionPlan, weights: Mapping[str, Array]) -> Array:
        """Each synapse's weight, [synapses]: its element of the param, times the fixed factor if any."""
        w = read_at(weights[p.param], self._arrays[f"{p.id}:element"])
        return w if p.factor is None else w * self._arrays[f"{p.id}:factor"]

    def _group_operator(self, key: str, g: Group, flat: Any, weights: Mapping[str, Array]) -> Any:
        """g's operator for this call: weight vectors (or each run's weights), an [X, port] matrix, or a CSR
        matrix; read from the flat vector of all parameters, or from the parameters themselves (`weights`)."""
        ops = self.ops
        if g.lowering == "elementwise":
            at, scale = self._arrays[key]
            return _scaled(read_at(flat, at), scale)
        if g.lowering == "diagonal" and ops.fuses:  # per layer, each run's weights
            return tuple(tuple(_scaled(read_at(weights[name], at), scale) for name, at, scale in layer)
                         for layer in self._arrays[key])
        if g.lowering == "diagonal":
            return tuple(_scaled(flat[at], scale) for at, scale in self._arrays[key])
        if f"{key}|slots" in self._arrays:
            at, scale = self._arrays[f"{key}|slots"]
            return ell.split(self._arrays[f"{key}:ell"], _scaled(read_at(flat, at), scale))
        at, scale, repeats = self._arrays[key]
        values = _scaled(read_at(flat, at), scale)
        if repeats is None and g.lowering == "dense":
            return values  # gathered as [X, port]
        if repeats is not None:
            cells, count = repeats
            values = ops.scatter_add(count, cells, values.reshape(1, -1)).reshape(-1)
        if g.lowering == "dense":
            return values.reshape(g.width, g.size)
        if g.lowering == "ell":
            return ell.weights(self._arrays[f"{key}:ell"], values, ops)
        crow, rows, cols, _ = self._arrays[f"{key}:csr"]
        return ops.csr(crow, rows, cols, values, (g.size, g.width))

    # ---- once per step ---------------------------------------------------------------------------

    @overload
    def step(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array], batch: int,
             record: Sequence[Record] = (), settle: None = None) -> tuple[dict[str, Array], State]: ...

    @overload
    def step(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array], batch: int,
             record: Sequence[Record], settle: Callable[[State], Settled]) -> tuple[dict[str, Array], Settled]: ...

    def step(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array], batch: int,
             record: Sequence[Record] = (), settle: Callable[[State], Any] | None = None) -> tuple[
            dict[str, Array], Mapping[str, Array]]:
        """One step: the flat outputs, each record [batch, *its shape] under its name, and the new state.  With
        `settle`, the new state is what it makes of the step's entries (JAX: one packed array), and the outputs
        and records read the populations' outputs and states back from it (see JaxCircuit._settle)."""
        fr, inside = self._advance(prepared, inputs, state, batch, record)
        final: Mapping[str, Array] = fr.new_state if settle is None else settle(fr.new_state)
        if settle is not None:
            fr.current.update({name: final[key] for name, _, _, _, key in self._runs if key is not None})
        outputs = {name: assemble(fr) for name, assemble in self._outputs}
        self._add_records(fr, record, inside, final, outputs)
        return outputs, final

    def rollout_step(self, batch: int, length: int) -> Callable[..., tuple[dict[str, Array], State]]:
        """The step a torch or numpy rollout loops over: `step_sources` where keeping the populations the outputs
        read is small (DEFERRED_STEP, DEFERRED_TOTAL), else `step`; `rollout_outputs` reads what it gave."""
        return self.step_sources if self._defers(batch, length) else self.step

    def rollout_outputs(self, prepared: Prepared, sequence: Mapping[str, Array], stacked: Mapping[str, Array],
                        batch: int, length: int) -> dict[str, Array]:
        """A rollout's flat outputs [batch, time, n] from what its `rollout_step` gave, stacked over time."""
        if self._defers(batch, length):
            return self.outputs_over_time(prepared, sequence, stacked, batch, length)
        return {name: stacked[name] for name, _ in self._outputs}

    def _defers(self, batch: int, length: int) -> bool:
        """Whether a rollout of `length` steps at `batch` assembles its outputs after its time loop."""
        kept = batch * self._read_width
        if self.ops.accelerator:
            return bool(self._outputs) and kept * length <= ACCELERATOR_DEFERRED_TOTAL
        return bool(self._outputs) and kept <= DEFERRED_STEP and kept * length <= DEFERRED_TOTAL

    def step_sources(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array],
                     batch: int, record: Sequence[Record] = ()) -> tuple[dict[str, Array], State]:
        """One step of a rollout whose outputs are assembled after its time loop, over all its steps at once
        (`outputs_over_time`): instead of the outputs, the outputs of the populations they read, each under
        `pop:out`; the records as `step` gives them; the new state."""
        fr, inside = self._advance(prepared, inputs, state, batch, record)
        sources = {key: fr.current[name] for name, key in self._output_reads}
        self._add_records(fr, record, inside, fr.new_state, sources)
        return sources, fr.new_state

    def outputs_over_time(self, prepared: Prepared, sequence: Mapping[str, Array], sources: Mapping[str, Array],
                          batch: int, length: int) -> dict[str, Array]:
        """A rollout's flat outputs [batch, time, n] from its inputs [batch, time, size] and the populations' outputs
        its steps gave (`step_sources`, stacked over time): each output's closure run once on all the steps as one
        batch of batch x time samples, not once per step (the whole worm's two outputs, two column reads and a sum
        each, were 6 of its 14 torch operations a step)."""
        flat = batch * length
        fr = Frame(prepared, {name: _merged(x, flat) for name, x in sequence.items()}, {}, flat)
        fr.current.update({name: _merged(sources[key], flat) for name, key in self._output_reads})
        outputs = {name: assemble(fr) for name, assemble in self._outputs}
        return {name: x.reshape(batch, length, x.shape[-1]) for name, x in outputs.items()}

    def _advance(self, prepared: Prepared, inputs: Mapping[str, Array], state: Mapping[str, Array], batch: int,
                 record: Sequence[Record]) -> tuple[Frame, dict[str, Array]]:
        """A step's populations, delay lines and new state (in the frame it returns), and the recorded lets and
        spikes by record name."""
        fr = Frame(prepared, inputs, state, batch)
        current, new_state = fr.current, fr.new_state
        inside: dict[str, Array] = {}  # the recorded lets and spikes, by record name
        if record:
            self._recorded(fr, self._kept(tuple(record)), inside)
        else:
            for name, out_key, run in self._plain:
                current[name] = run(fr)
                if out_key is not None:
                    new_state[out_key] = current[name]
        for key, source in self.pushes:
            new_state[key] = self.ops.stack_time(state[key], source(fr))
        return fr, inside

    def _add_records(self, fr: Frame, record: Sequence[Record], inside: Mapping[str, Array],
                     final: Mapping[str, Array], into: dict[str, Array]) -> None:
        """Each record of a step, [batch, *its shape] (and a let's own axis), into `into` under its name."""
        for r in record:
            found = {"out": fr.current.get(r.population), "value": inside.get(r.name),
                     "state": final.get(f"{r.population}.{r.variable}")}[r.kind]
            assert found is not None
            inner = math.prod(found.shape[1:]) // max(math.prod(r.shape), 1)  # a let's own axis, if any
            into[r.name] = found.reshape(fr.batch, *r.shape, *([inner] if inner > 1 else []))

    def _recorded(self, fr: Frame, keeps: Mapping[str, frozenset[str]], inside: dict[str, Array]) -> None:
        """The populations of a step that records: each neuron's kept lets and spikes into `inside`."""
        for name, ports, neuron, private, out_key in self._runs:
            values = {port: read(fr) for port, read in ports.items()}
            kept: dict[str, Array] = {}
            fr.current[name] = neuron.run(values, fr.state, fr.prepared[private], fr.batch, fr.new_state,
                                          keeps[name], kept)
            inside.update({f"{name}.{v}": x for v, x in kept.items()})
            if out_key is not None:
                fr.new_state[out_key] = fr.current[name]

    def _kept(self, record: tuple[Record, ...]) -> dict[str, frozenset[str]]:
        """The lets and spikes to keep, by population, for a tuple of records (worked out once per tuple)."""
        if record not in self._keeps:
            self._keeps[record] = {name: frozenset(r.variable for r in record
                                                   if r.kind == "value" and r.population == name)
                                   for name in self.plan.order}
        return self._keeps[record]

    def _port_closure(self, port: _Port) -> Callable[[Frame], Array]:
        """A closure computing a port's summed input, [batch, port size]: a port fed by its fused group alone
        (the common case) is the group's product; any other goes through `_port`."""
        if port.group is not None and not port.solo:
            return self.products[f"{port.group.target}:{port.group.port}"]
        return lambda fr: self._port(port, fr)

    def _product(self, key: str, g: Group) -> Callable[[Frame], Array]:
        """A closure computing a group's product (its operator applied to its input vector), [batch, port]."""
        if g.lowering == "diagonal":
            return self._diagonal(key, g)
        read = self._reader([self.blocks[id(b)] for b in g.blocks])
        matmul = self.ops.primitives.matmul
        if g.lowering == "dense":
            return lambda fr: matmul(read(fr), fr.prepared[key])
        if g.lowering == "elementwise":
            return lambda fr: read(fr) * fr.prepared[key]
        ops = self.ops
        if g.lowering == "ell":
            layout = self._arrays[f"{key}:ell"]
            return lambda fr: ell.product(layout, fr.prepared[key], read(fr), ops)
        csr_matmul = ops.csr_matmul
        if key in self.twins:  # dense at a few samples, CSR at more (FEW_CELLS)
            dense = f"{key}|dense"
            return lambda fr: (matmul(read(fr), fr.prepared[dense]) if fr.batch <= FEW_SAMPLES
                               else csr_matmul(fr.prepared[key], read(fr)))
        return lambda fr: csr_matmul(fr.prepared[key], read(fr))

    def _diagonal(self, key: str, g: Group) -> Callable[[Frame], Array]:
        """A diagonal group's product: each layer's runs (concatenated) times its weight vector, summed; or,
        where the backend fuses element-wise work, each run times its own weights, then concatenated."""
        starts = np.cumsum([0] + [b.size for b in g.blocks])
        layers = []
        for layer in g.layers:
            runs = []
            for _, column, _, n in layer:
                block = int(np.searchsorted(starts, column, side="right")) - 1
                runs.append(self._columns(self.blocks[id(g.blocks[block])], column - int(starts[block]), n,
                                          g.blocks[block].size))
            layers.append(runs)
        if self.ops.fuses:
            return self._run_products(key, layers)
        readers = [self._reader(runs) for runs in layers]
        if len(readers) == 1:
            (read,) = readers
            return lambda fr: read(fr) * fr.prepared[key][0]
        first, second = readers  # DIAGONAL_LAYERS

        def two(fr: Frame) -> Array:
            w0, w1 = fr.prepared[key]
            return first(fr) * w0 + second(fr) * w1
        return two

    def _run_products(self, key: str, layers: list[list[Callable[[Frame], Array]]]) -> Callable[[Frame], Array]:
        """A diagonal group's product run by run (`_run_weights`): per layer, each run times its weights, the
        runs side by side; the layers summed."""
        concat = self.ops.concat

        def product(fr: Frame) -> Array:
            total = None
            for runs, weights in zip(layers, fr.prepared[key]):
                parts = [read(fr) * w for read, w in zip(runs, weights)]
                layer = parts[0] if len(parts) == 1 else concat(parts, 1)
                total = layer if total is None else total + layer
            assert total is not None
            return total
        return product

    @staticmethod
    def _columns(read: Callable[[Frame], Array], start: int, n: int, size: int) -> Callable[[Frame], Array]:
        """Columns start .. start + n of a block, [batch, n]: the block itself when that is all of it."""
        if start == 0 and n == size:
            return read
        at = (slice(None), slice(start, start + n))
        return lambda fr: read(fr)[at]

    def _reader(self, reads: list[Callable[[Frame], Array]]) -> Callable[[Frame], Array]:
        """Blocks side by side (a group's input vector): the one block, or the blocks concatenated, [batch, width]."""
        concat = self.ops.concat
        if len(reads) == 1:
            return reads[0]
        if len(reads) == 2:
            first, second = reads
            return lambda fr: concat([first(fr), second(fr)], 1)
        return lambda fr: concat([r(fr) for r in reads], 1)

    def _port(self, port: _Port, fr: Frame) -> Array:
        """A port's summed input this step, [batch, port size]: its group's product and its solo projections."""
        ops, g = self.ops, port.group
        total = None if g is None else self.products[f"{g.target}:{g.port}"](fr)
        for p in port.solo:
            part = self._solo(p, fr.prepared["weights"], fr)
            index = port.index[p.id]
            if index is None:
                total = part if total is None else total + part
            else:
                total = ops.add_at(ops.zeros(fr.batch, port.size) if total is None else total, index, part)
        return ops.zeros(fr.batch, port.size) if total is None else total

    def _solo(self, p: ProjectionPlan, weights: Mapping[str, Array], fr: Frame) -> Array:
        """An operator projection or a learnable delay, [batch, target units]."""
        if p.operator is not None:
            return self._operator(p, p.operator, fr.prepared, self.sources[p.id](fr))
        assert p.delay_param is not None and p.delay_sigma is not None
        history = fr.state[f"{p.id}:delay"].reshape(-1, p.delay, p.source_size)  # [batch, K, source], oldest first
        pre, post = self._arrays[f"{p.id}:pre"], self._arrays[f"{p.id}:post"]
        k = delays.kernel(weights[p.delay_param], weights[p.delay_sigma], self._arrays[f"{p.id}:taps"],
                          self.ops.functions)
        return self.ops.scatter_add(p.target_size, post,
                                    (history[:, :, pre] * k).sum(1) * self._synapse_weights(p, weights))

    def _operator(self, p: ProjectionPlan, operator: Operator, prepared: Prepared, source: Array) -> Array:
        """A field [batch, in channels * grid points] through p's operator, plus its function-valued bias if any
        (prepared once per call): [batch, out channels * grid points]."""
        weights = prepared["weights"]
        if operator.kind in AXIS_OPERATORS:
            return self._axis_maps[p.id](weights, source)
        (channels_in, channels_out), ops, grid = p.channels, self.ops, list(p.grid)
        out = operators.apply(operator, weights[p.param], source.reshape(-1, channels_in, *grid), channels_out, ops,
                              self._arrays[f"{p.id}:resampling"])
        if operator.bias is not None:
            out = out + prepared[f"{p.id}:bias"]
        return out.reshape(-1, channels_out * math.prod(grid))


def _axis_map(p: ProjectionPlan, xp: Primitives) -> Callable[[Mapping[str, Array], Array], Array]:
    """A learned map over one named axis of the source, as a function of (the weights, the source): `linear`
    (matrix [out, in], bias [out]) or `layer_norm` (scale and shift [n]), [batch, target units]; what the axes'
    sizes fix is worked out here, once."""
    operator = p.operator
    assert operator is not None and operator.channel is not None
    param, bias = p.param, operator.bias
    if operator.kind == "linear":
        n = next(a.size for a in p.named if a.name == operator.channel)
        dense = axes.linear(p.named, operator.channel, xp)
        return lambda weights, source: dense(source, weights[param].reshape(-1, n),
                                             None if bias is None else weights[bias])
    norm = axes.layer_norm(p.named, operator.channel, xp)
    return lambda weights, source: norm(source, weights[param], None if bias is None else weights[bias])


def _synapse_elements(plan: Plan) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """For every projection, each synapse's element of the flat vector of all parameters (in plan order) and its
    fixed factor (the connectome's sign times scale, or 1)."""
    offsets = dict(zip([p.name for p in plan.parameters], np.cumsum([0] + [p.size for p in plan.parameters])))
    elements, factors = {}, {}
    for p in plan.projections:
        if p.gather is not None:
            local = p.gather
        else:
            local = p.offset + p.stride * np.arange(p.synapses, dtype=np.int64)
        elements[p.id] = offsets[p.param] + local.astype(np.int64)
        factors[p.id] = np.ones(p.synapses) if p.factor is None else p.factor.astype(np.float64)
    return elements, factors


def _term_runs(g: Group, layer: Layer, element: np.ndarray,
               factor: np.ndarray) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """A diagonal layer's runs as (term, first port element, the synapses' elements, their fixed factors): each
    run's synapses, in order, are its term's (element and factor are every term's, concatenated)."""
    first = np.cumsum([0] + [len(t.pre) for t in g.terms])
    return [(term, start, element[first[term]:first[term] + n], factor[first[term]:first[term] + n])
            for term, _, start, n in layer]


def _merged(x: Array, samples: int) -> Array:
    """x [batch, time, n] as [batch x time, n] (also for no samples, where -1 would be ambiguous)."""
    return x.reshape(samples, x.shape[-1])


def _vector(x: Array) -> Array:
    """x as a vector (no reshape when it is one already: a call less per parameter and call)."""
    return x if len(x.shape) == 1 else x.reshape(-1)


def _scaled(values: Array, scale: Array | None) -> Array:
    """values times their fixed factors, if any."""
    return values if scale is None else values * scale


def _unless_ones(values: np.ndarray, ops: Ops) -> Array | None:
    """Fixed factors as an array, or None when they are all 1 (nothing to multiply)."""
    return None if bool(np.all(values == 1.0)) else ops.asarray(values)
