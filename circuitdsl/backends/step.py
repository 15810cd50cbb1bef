"""The semantics of one time step, written once for every backend against a small table of array ops.

Arrays are batch-first and flat per population: an output is [batch, units].  Everything here is
functional (no in-place writes), so the same code runs under torch autograd and under jax.jit.

A step: populations are computed in the plan's order; each sums its weighted inputs per port (a
projection reads this step's output of its source, or the previous step's for recurrent edges and gap
junctions, or its ring buffer for delays), then runs its neuron model's equations in order.  Each
projection is one operation, as the plan lowered it (element-wise, a matmul, or gather/scatter).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from circuitdsl.backends import delays, operators
from circuitdsl.backends.plan import Plan, ProjectionPlan, ref_key
from circuitdsl.ir.expr import fold, refs
from circuitdsl.ir.model import Binary, Call, Cond, Const, Expr, NeuronModel, Operator, Ref, Unary, Var
from circuitdsl.ir.operators import bias_shape
from circuitdsl.ir.params import effective
from circuitdsl.ir.units import class_groups, port_size

if TYPE_CHECKING:
    from circuitdsl.backends.record import Record

Array = Any
State = dict[str, Array]


class Ops(Protocol):
    """What a backend provides: array creation, indexing, and the element-wise functions by name."""

    functions: Mapping[str, Callable[..., Array]]

    def asarray(self, values: np.ndarray) -> Array: ...
    def zeros(self, batch: int, n: int) -> Array: ...
    def full(self, batch: int, n: int, value: float) -> Array: ...
    def take(self, x: Array, index: Array) -> Array: ...  # x[:, index]
    def scatter_add(self, n: int, index: Array, values: Array) -> Array: ...  # zeros(B, n) with values added
    def add_at(self, x: Array, index: Array, values: Array) -> Array: ...  # x with values added at [:, index]
    def to_float(self, x: Array) -> Array: ...
    def spike(self, x: Array, surrogate: str, slope: float) -> Array: ...  # x > 0, surrogate_derivative back
    def softplus(self, x: Array) -> Array: ...
    def stack_time(self, history: Array, latest: Array) -> Array: ...  # drop the oldest step, append latest
    # fields (circuitdsl/backends/operators.py): the grid is the trailing axes
    def einsum(self, spec: str, *operands: Array) -> Array: ...
    def stack(self, xs: list[Array], axis: int) -> Array: ...
    def concat(self, xs: list[Array], axis: int) -> Array: ...
    def pad(self, x: Array, widths: list[tuple[int, int]]) -> Array: ...  # zeros (before, after) the last axes
    def rfftn(self, x: Array, axes: int) -> Array: ...  # over the last `axes` axes; norm 'forward': means
    def irfftn(self, x: Array, sizes: list[int]) -> Array: ...  # norm 'forward'; the last axis zero-padded
    def complex(self, real: Array, imag: Array) -> Array: ...
    def correlate(self, x: Array, w: Array) -> Array: ...  # valid: x [batch, in, *grid], w [out, in, *taps]


# ---- spikes --------------------------------------------------------------------------------------


def surrogate_derivative(x: Array, surrogate: str, slope: float, functions: Mapping[str, Callable[..., Array]]) -> Array:
    """d spike / dx that the backward pass uses in place of the Heaviside's: snnTorch's formulas, for every backend."""
    if surrogate == "atan":
        return slope / 2 / (1 + (math.pi / 2 * slope * x) ** 2)
    if surrogate == "fast_sigmoid":
        return 1 / (slope * functions["abs"](x) + 1) ** 2
    if surrogate == "sigmoid":
        s = functions["sigmoid"](slope * x)
        return slope * s * (1 - s)
    return 1.0 + 0.0 * functions["step"](x)  # straight_through: ones shaped like x


def surrogate_slope(args: Mapping[str, float]) -> float:
    """The one argument of a spike's surrogate (alpha or slope; straight_through has none)."""
    return next(iter(args.values()), 1.0)


# ---- expressions ---------------------------------------------------------------------------------


def evaluate(expr: Expr, lookup: Callable[[Var | Ref], Array], ops: Ops, shared: Sequence[Expr] = (),
             memo: dict[int, Array] | None = None) -> Array:
    """An IR expression over arrays (and Python floats for constants); a shared entry's value once per `memo`."""
    def visit(node: Expr, args: tuple[Array, ...]) -> Array:
        if isinstance(node, Const):
            return float(node.value)
        if isinstance(node, Var | Ref):
            return lookup(node)
        if isinstance(node, Unary):
            return -args[0] if node.op == "-" else 1.0 - args[0]
        if isinstance(node, Binary):
            return _binary(node.op, args[0], args[1], ops)
        if isinstance(node, Call):
            return ops.functions[node.fn](*args)
        if isinstance(node, Cond):
            return ops.functions["where"](*args)
        raise TypeError(f"unknown expression {node!r}")

    return fold(expr, visit, shared, memo)


def _binary(op: str, a: Array, b: Array, ops: Ops) -> Array:
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        return a / b
    if op == "%":
        return a % b
    if op == "**":
        return a ** b
    if op == "and":
        return a * b
    if op == "or":
        return a + b - a * b
    compare = {"==": lambda: a == b, "!=": lambda: a != b, "<": lambda: a < b, "<=": lambda: a <= b,
               ">": lambda: a > b, ">=": lambda: a >= b}[op]()
    return float(compare) if isinstance(compare, bool) else ops.to_float(compare)


# ---- state ---------------------------------------------------------------------------------------


def initial_state(plan: Plan, batch: int, ops: Ops) -> State:
    """Neuron states at their initial values, last outputs at 0, delay lines empty."""
    state: State = {}
    for population in plan.populations.values():
        for variable in population.model.states:
            value = float(evaluate(variable.init, _no_lookup, ops))
            size = population.size * math.prod([a.size for a in variable.shape])
            state[f"{population.name}.{variable.name}"] = ops.full(batch, size, value)
        out_size = math.prod([a.size for a in population.model.output_shape])
        state[f"{population.name}:out"] = ops.zeros(batch, population.size * out_size)
    for projection in plan.projections:
        if projection.delay:
            state[f"{projection.id}:delay"] = ops.zeros(batch, projection.delay * projection.source_size)
    return state


def _no_lookup(name: Var | Ref) -> Array:
    raise ValueError(f"an initial value cannot read {name!r}")


# ---- the step ------------------------------------------------------------------------------------


class Stepper:
    """Runs steps of one plan with one backend; index arrays are converted once."""

    def __init__(self, plan: Plan, ops: Ops) -> None:
        self.plan = plan
        self.ops = ops
        index = {key: None if idx is None else ops.asarray(idx) for key, idx in plan.ref_index.items()}
        exprs = [p.source for p in plan.projections] + [piece.expr for o in plan.ir.outputs for piece in o.pieces]
        # each read's units, keyed by the Ref object itself: no selection is hashed or printed inside a step
        # (which also keeps the step traceable by torch.compile)
        self.units_read = {id(ref): index[ref_key(ref)] for expr in exprs for ref in refs(expr, plan.ir.shared)}
        self.output_size = {o.name: math.prod(a.size for a in o.shape) for o in plan.ir.outputs}
        self.output_index = {key: None if idx is None else ops.asarray(idx) for key, idx in plan.output_index.items()}
        self.arrays: dict[str, Array] = {}
        for p in plan.projections:
            for name in ("target_index", "pre", "post", "source_index", "gather", "factor"):
                value = getattr(p, name)
                if value is not None:
                    self.arrays[f"{p.id}:{name}"] = ops.asarray(value)
            if p.delay_param is not None:
                self.arrays[f"{p.id}:taps"] = ops.asarray(delays.taps(p.delay))
            if p.lowering == "masked":
                cells = p.post * p.source_size + p.pre  # each synapse's cell of the [target, source] matrix
                self.arrays[f"{p.id}:cells"] = ops.asarray(cells)
                counts = np.bincount(cells, minlength=p.target_size * p.source_size).astype(np.float32)
                self.arrays[f"{p.id}:counts"] = ops.asarray(counts.reshape(p.target_size, p.source_size))
        self.by_class: dict[tuple[str, str], Array] = {}  # (population, param): flat elements each unit reads
        for population in plan.ir.populations:
            for param in plan.populations[population.name].model.params:
                if param.by_class:
                    rows = class_groups(population.shape[0].classes or [])[0]
                    k = math.prod(a.size for a in param.shape)
                    self.by_class[population.name, param.name] = ops.asarray(
                        (rows[:, None] * k + np.arange(k)).reshape(-1))
        self.incoming: dict[str, list[ProjectionPlan]] = {name: [] for name in plan.populations}
        for p in plan.projections:
            self.incoming[p.target].append(p)
            if p.kind == "electrical" and p.source_population != p.target:
                self.incoming[p.source_population].append(p)

    def step(self, params: Mapping[str, Array], inputs: Mapping[str, Array], state: State,
             record: Sequence[Record] = ()) -> tuple[dict[str, Array], State]:
        """One step: the flat outputs, each record [batch, *its shape] under its name, and the new state."""
        ops, plan = self.ops, self.plan
        weights = {p.name: effective(p, params[p.name], ops).reshape(-1) for p in plan.parameters}
        current: dict[str, Array] = {}
        new_state: State = {}
        inside: dict[str, Array] = {}  # recorded lets and spikes of neuron models, by record name
        wanted = {(r.population, r.variable) for r in record if r.kind == "value"}
        shared: dict[bool, dict[int, Array]] = {False: {}, True: {}}  # shared entries' values this step, by `past`

        def read(ref: Ref, past: bool) -> Array:
            if ref.source in inputs:
                whole = inputs[ref.source]
            elif past or ref.source not in current:
                whole = state[f"{ref.source}:out"]
            else:
                whole = current[ref.source]
            index = self.units_read[id(ref)]
            return whole if index is None else ops.take(whole, index)

        def signal(p: ProjectionPlan, past: bool) -> Array:
            value = evaluate(p.source, lambda ref: read(ref, past), ops, plan.ir.shared,  # type: ignore[arg-type]
                             shared[past])
            return _as_batch(value, _batch_of(inputs, state), p.source_size, ops)

        for name in plan.order:
            population = plan.populations[name]
            ports = {i.name: ops.zeros(_batch_of(inputs, state), population.size * port_size(population.model, i.name))
                     for i in population.model.inputs}
            for p in self.incoming[name]:
                for port, index, values in self._contributions(p, name, weights, state, signal):
                    ports[port] = values + ports[port] if index is None else ops.add_at(ports[port], index, values)
            private = {p.name: self._private(name, p.name, weights[f"{name}.{p.name}"]) for p in population.model.params}
            keep = {v for pop, v in wanted if pop == name}
            out, updates, values = run_neuron(population.model, ports, state, name, ops, private, keep)
            inside.update({f"{name}.{v}": value for v, value in values.items()})
            current[name] = out
            new_state.update(updates)
            new_state[f"{name}:out"] = out
        for p in plan.projections:
            if p.delay:
                history = state[f"{p.id}:delay"]
                new_state[f"{p.id}:delay"] = ops.stack_time(history, signal(p, past=False))
        batch = _batch_of(inputs, state)
        outputs = {o.name: self._output(o, read, batch, shared[False]) for o in plan.ir.outputs}
        for r in record:
            value = {"out": current.get(r.population), "state": new_state.get(f"{r.population}.{r.variable}"),
                     "value": inside.get(r.name)}[r.kind]
            shaped = value.reshape(batch, *r.shape, -1)
            outputs[r.name] = shaped.reshape(batch, *r.shape) if shaped.shape[-1] == 1 else shaped
        return outputs, new_state

    def _private(self, population: str, param: str, values: Array) -> Array:
        """A neuron param's flat values for every unit: per-class values gathered to the units of each class."""
        index = self.by_class.get((population, param))
        return values if index is None else self.ops.take(values.reshape(1, -1), index).reshape(-1)

    def _contributions(self, p: ProjectionPlan, receiver: str, weights: Mapping[str, Array], state: State,
                       signal: Callable[[ProjectionPlan, bool], Array]) -> list[tuple[str, Array | None, Array]]:
        """What projection p adds to population `receiver`: (port, flat units or None for all, values)."""
        if p.operator is not None:
            return [(p.port, self.arrays.get(f"{p.id}:target_index"),
                     self._operator(p, p.operator, weights, signal(p, p.recurrent)))]
        w = weights[p.param]
        if p.gather is not None:
            w = w[self.arrays[f"{p.id}:gather"]]
        else:
            w = w[p.offset] if p.stride == 0 else w[p.offset:p.offset + p.synapses]
        if p.factor is not None:
            w = w * self.arrays[f"{p.id}:factor"]
        if p.kind == "electrical":
            return self._gap_junction(p, receiver, w, state)
        if p.delay_param is not None:
            return [(p.port, self.arrays.get(f"{p.id}:target_index"), self._learned_delay(p, w, weights, state))]
        if p.delay:
            source = state[f"{p.id}:delay"][:, : p.source_size]
        else:
            source = signal(p, p.recurrent)
        return [(p.port, self.arrays.get(f"{p.id}:target_index"), self._project(p, w, source))]

    def _project(self, p: ProjectionPlan, w: Array, source: Array) -> Array:
        """Source [batch, source units] through p's synapses (weights w, one per synapse or shared): [batch, target
        units], as one operation of p's lowering."""
        ops = self.ops
        if p.lowering == "elementwise":
            return source * w
        if p.lowering == "sparse":
            return ops.scatter_add(p.target_size, self.arrays[f"{p.id}:post"],
                                   ops.take(source, self.arrays[f"{p.id}:pre"]) * w)
        if p.lowering == "dense" and p.stride == 0:
            return ops.zeros(source.shape[0], p.target_size) + w * source.sum(1, keepdims=True)
        return source @ self._matrix(p, w).T

    def _operator(self, p: ProjectionPlan, operator: Operator, weights: Mapping[str, Array], source: Array) -> Array:
        """A field [batch, in channels * grid points] through p's operator, plus its function-valued bias if any:
        [batch, out channels * grid points]."""
        (channels_in, channels_out), ops, grid = p.channels, self.ops, list(p.grid)
        out = operators.apply(operator, weights[p.param], source.reshape(-1, channels_in, *grid), channels_out, ops)
        if operator.bias is not None:
            coefficients = weights[operator.bias].reshape(bias_shape(operator, channels_out))
            out = out + operators.bias(coefficients, grid, operator.periodic, ops)
        return out.reshape(-1, channels_out * math.prod(grid))

    def _learned_delay(self, p: ProjectionPlan, w: Array, weights: Mapping[str, Array], state: State) -> Array:
        """Each synapse's source read through its delay kernel over the history (gathered per synapse),
        weighted and scattered into the target: [batch, target units]."""
        history = state[f"{p.id}:delay"].reshape(-1, p.delay, p.source_size)  # [batch, K, source], oldest first
        pre, post = self.arrays[f"{p.id}:pre"], self.arrays[f"{p.id}:post"]
        k = delays.kernel(weights[p.delay_param], weights[p.delay_sigma], self.arrays[f"{p.id}:taps"],
                          self.ops.functions)
        return self.ops.scatter_add(p.target_size, post, (history[:, :, pre] * k).sum(1) * w)

    def _matrix(self, p: ProjectionPlan, w: Array) -> Array:
        """p's weights as a dense [target, source] matrix: in place for all_to_all, else scattered (repeats add)."""
        if p.lowering == "dense":
            return w.reshape(p.target_size, p.source_size)
        if p.stride == 0:
            return w * self.arrays[f"{p.id}:counts"]
        cells = self.ops.scatter_add(p.target_size * p.source_size, self.arrays[f"{p.id}:cells"], w.reshape(1, -1))
        return cells.reshape(p.target_size, p.source_size)

    def _gap_junction(self, p: ProjectionPlan, receiver: str, g: Array,
                      state: State) -> list[tuple[str, Array | None, Array]]:
        """Current g (v_other - v_self) into both ends of every pair, from the previous step's outputs.

        Masked, with G the [target, source] conductance matrix: G v_source - rowsum(G) v_target into the
        target, G^T v_target - colsum(G) v_source into the source; sparse, pair by pair."""
        ops = self.ops
        pre, post = self.arrays[f"{p.id}:pre"], self.arrays[f"{p.id}:post"]
        source_units = self.arrays[f"{p.id}:source_index"]
        target_units = self.arrays.get(f"{p.id}:target_index")
        v_source = ops.take(state[f"{p.source_population}:out"], source_units)
        v_target = state[f"{p.target}:out"]
        if target_units is not None:
            v_target = ops.take(v_target, target_units)
        if p.lowering == "masked":
            matrix = self._matrix(p, g)
            into_target = v_source @ matrix.T - v_target * matrix.sum(1)
            into_source = v_target @ matrix - v_source * matrix.sum(0)
        else:
            v_pre, v_post = ops.take(v_source, pre), ops.take(v_target, post)
            into_target = ops.scatter_add(p.target_size, post, g * (v_pre - v_post))
            into_source = ops.scatter_add(p.source_size, pre, g * (v_post - v_pre))
        parts = []
        if receiver == p.target:
            parts.append((p.port, target_units, into_target))
        if receiver == p.source_population:
            parts.append((p.source_port, source_units, into_source))
        return parts

    def _output(self, output: Any, read: Callable[[Ref, bool], Array], batch: int, memo: dict[int, Array]) -> Array:
        """An output assembled from its pieces, [batch, units]."""
        ops = self.ops
        n = self.output_size[output.name]
        total = ops.zeros(batch, n)
        for i, piece in enumerate(output.pieces):
            value = evaluate(piece.expr, lambda ref: read(ref, False), ops, self.plan.ir.shared,  # type: ignore[arg-type]
                             memo)
            index = self.output_index[(output.name, i)]
            part = _as_batch(value, batch, n if index is None else int(index.shape[0]), ops)
            total = part + total if index is None else ops.add_at(total, index, part)
        return total


def _batch_of(inputs: Mapping[str, Array], state: State) -> int:
    for value in (*inputs.values(), *state.values()):
        return int(value.shape[0])
    return 1


def _as_batch(value: Array, batch: int, n: int, ops: Ops) -> Array:
    """A signal as [batch, n]: constants and single units broadcast."""
    if isinstance(value, float):
        return ops.full(batch, n, value)
    if len(value.shape) == 2 and value.shape[1] == n:
        return value
    return ops.zeros(batch, n) + value


def run_neuron(model: NeuronModel, ports: Mapping[str, Array], state: State, name: str, ops: Ops,
               params: Mapping[str, Array], keep: set[str] | frozenset[str] = frozenset()) -> tuple[Array, State,
                                                                                                  dict[str, Array]]:
    """One step of a population's neuron model: its equations in order; returns the output, the new states and
    the values of the lets and spikes named in `keep` (each [batch, units, k]).

    Inside, every value is [batch, units, k] (k: its internal axis, 1 for a plain value) and a param of the
    model [units, *its axes] (`params`: flat, by the model's names), so per-unit values broadcast over a
    unit's axis; ports and states are flat [batch, units * k] outside."""
    batch = int(next(iter(ports.values())).shape[0])
    units = int(next(iter(ports.values())).shape[1]) // port_size(model, model.inputs[0].name)
    values: dict[str, Array] = {port: x.reshape(batch, units, -1) for port, x in ports.items()}
    shaped: dict[str, Array] = {}  # each state's zeros [batch, units, k], to broadcast its new value
    for variable in model.states:
        values[variable.name] = state[f"{name}.{variable.name}"].reshape(batch, units, -1)
        shaped[variable.name] = values[variable.name] * 0.0
    for param in model.params:
        copies = 1 if param.shared else units
        values[param.name] = params[param.name].reshape(copies, *([a.size for a in param.shape] or [1]))
    reference = ops.zeros(batch, units).reshape(batch, units, 1)  # one value per unit
    out = None
    for equation in model.equations:
        value = evaluate(equation.expr, lambda var: values[var.name], ops)  # type: ignore[arg-type, union-attr]
        if equation.kind == "spike":
            value = ops.spike(_like(value, reference), equation.surrogate or "atan",
                              surrogate_slope(equation.surrogate_args))
        if equation.kind == "out":
            out = _like(value, reference).reshape(batch, -1)
        elif equation.kind in ("update", "ode"):
            values[equation.target] = _like(value, shaped[equation.target])
        else:
            values[equation.target] = value if equation.kind == "let" else _like(value, reference)
    updates = {f"{name}.{v.name}": _like(values[v.name], shaped[v.name]).reshape(batch, -1) for v in model.states}
    return out, updates, {v: _like(values[v], reference) for v in keep}


def _like(value: Array, reference: Array) -> Array:
    """A neuron's value shaped like `reference`: constants, per-unit params and smaller shapes broadcast."""
    return value if not isinstance(value, float) and value.shape == reference.shape else reference * 0.0 + value
