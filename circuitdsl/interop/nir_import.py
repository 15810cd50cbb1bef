"""NIR -> circuit: a readable .circuit file, its weight matrices in a .npz file beside it (`load(...)`).

Every neuron node becomes a population, every Input and Output a port; the weight nodes between them (Affine,
Linear, Scale, Delay, and the ports of nested graphs) are folded into one projection per (source, target,
delay): the product of the matrices on every path, Affine biases as a projection from a `Constant` unit.  NIR's
ODEs are read at the graph's step `dt` with forward Euler: a LIF (v_leak = v_reset = 0) is the library LIF with
beta = 1 - dt / tau and its inputs scaled by dt r / tau, a LI is `Leaky`, a Threshold a LIF with beta 0 and no
reset, CubaLIF and CubaLI are neuron models written into the file.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field

import nir
import numpy as np

from circuitdsl.interop.fidelity import Entry, FidelityReport
from circuitdsl.interop.nir_export import DEFAULT_DT
from circuitdsl.interop.nir_read import fail, size_out

NEURONS = (nir.LIF, nir.IF, nir.LI, nir.CubaLIF, nir.CubaLI, nir.Threshold)
WEIGHTS = (nir.Affine, nir.Linear, nir.Scale, nir.Delay)
PASS = "pass"  # the Input and Output of a nested graph: values go through unchanged

CUBA = {
    "CubaLIF": '''neuron CubaLIF(tau_syn: time, tau_mem: time, r: float, w_in: float, v_leak: float, threshold: float,
                v_reset: float, dt: time) {
  """NIR's current-based LIF, forward Euler (current and membrane from the state before the step), then
  threshold and reset in the same step."""
  state i = 0
  state v = 0
  di/dt = (-i + w_in * in) / tau_syn
  dv/dt = (v_leak - v + r * i) / tau_mem
  spike z = v > threshold
  v = where(z, v_reset, v)
  out = z
}''',
    "CubaLI": '''neuron CubaLI(tau_syn: time, tau_mem: time, r: float, w_in: float, v_leak: float, dt: time) {
  """NIR's current-based leaky integrator, forward Euler (current and membrane from the state before the step)."""
  state i = 0
  state v = 0
  di/dt = (-i + w_in * in) / tau_syn
  dv/dt = (v_leak - v + r * i) / tau_mem
  out = v
}''',
    "Constant": '''neuron Constant {
  """Always 1: the source of the Affine biases."""
  out = 1
}''',
}

KEYWORDS = {"input", "output", "population", "circuit", "neuron", "param", "import", "let", "for", "if", "else",
            "in", "out", "state", "spike", "true", "false", "from", "dt"}


@dataclass
class Converted:
    """A converted graph: the .circuit text, the arrays its `load(...)` calls read, and the fidelity report."""

    text: str
    arrays: dict[str, np.ndarray]
    report: FidelityReport
    names: dict[str, str]  # NIR node -> circuit name (population or port)
    dt: float


@dataclass
class _Flat:
    """The graph with nested graphs inlined (their Input and Output as pass-through nodes)."""

    nodes: dict[str, nir.NIRNode | str] = field(default_factory=dict)
    edges: list[tuple[str, str]] = field(default_factory=list)


def flatten(graph: nir.NIRGraph, prefix: str = "", flat: _Flat | None = None) -> _Flat:
    """Nested graphs inlined, their nodes named `outer.inner`; an edge to or from a nested graph goes to its
    Input or from its Output."""
    flat = flat or _Flat()
    ends: dict[str, tuple[str, str]] = {}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner = f"{prefix}{name}."
            flatten(node, inner, flat)
            first = next(k for k, n in node.nodes.items() if isinstance(n, nir.Input))
            last = next(k for k, n in node.nodes.items() if isinstance(n, nir.Output))
            flat.nodes[inner + first] = flat.nodes[inner + last] = PASS
            ends[name] = (inner + first, inner + last)
        else:
            flat.nodes[prefix + name] = node
    for src, dst in graph.edges:
        flat.edges.append((ends[src][1] if src in ends else prefix + src, ends[dst][0] if dst in ends else prefix + dst))
    return flat


def identifier(name: str, taken: set[str]) -> str:
    """A circuit identifier for a NIR node name, unique among `taken`."""
    base = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or "n"
    if base[0].isdigit() or base in KEYWORDS:
        base = f"n_{base}"
    candidate, i = base, 2
    while candidate in taken:
        candidate, i = f"{base}_{i}", i + 1
    taken.add(candidate)
    return candidate


def _uniform(node: nir.NIRNode, fields: tuple[str, ...], entry: Entry) -> dict[str, float]:
    """One value per field; a field that varies over neurons is averaged and the entry marked approximate."""
    values = {}
    for name in fields:
        data = np.asarray(getattr(node, name) if getattr(node, name, None) is not None else 0.0, dtype=np.float64)
        values[name] = float(data.mean()) if data.size else 0.0
        if data.size and not np.allclose(data, data.reshape(-1)[0], rtol=1e-6, atol=0):
            entry.status = "approximate"
            varies = f"{name} varies over neurons ({data.min():g} .. {data.max():g}); their mean is used"
            entry.why = "; ".join(w for w in (entry.why, varies) if w)
    return values


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3!r} ms"


def neuron(node: nir.NIRNode, dt: float, entry: Entry) -> tuple[str, float]:
    """The population's model (as written in the file) and the factor its inputs are scaled by."""
    if isinstance(node, nir.Threshold):
        p = _uniform(node, ("threshold",), entry)
        return f"LIF(beta = 0, threshold = {p['threshold']!r}, reset = none)", 1.0
    if isinstance(node, nir.LI):
        p = _uniform(node, ("tau", "r", "v_leak"), entry)
        _must_be_zero(p, ("v_leak",), entry)
        return f"Leaky(tau = {_ms(p['tau'])}, dt = {_ms(dt)})", p["r"]
    if isinstance(node, nir.LIF | nir.IF):
        leaky = isinstance(node, nir.LIF)
        p = _uniform(node, ("tau", "r", "v_leak", "v_threshold", "v_reset") if leaky else
                     ("r", "v_threshold", "v_reset"), entry)
        _must_be_zero(p, ("v_leak", "v_reset"), entry)
        beta = 1.0 - dt / p["tau"] if leaky else 1.0
        scale = dt * p["r"] / p["tau"] if leaky else dt * p["r"]
        return f"LIF(beta = {beta!r}, threshold = {p['v_threshold']!r}, reset = zero)", scale
    spiking = isinstance(node, nir.CubaLIF)
    fields = ("tau_syn", "tau_mem", "r", "w_in", "v_leak") + (("v_threshold", "v_reset") if spiking else ())
    p = _uniform(node, fields, entry)
    args = (f"tau_syn = {_ms(p['tau_syn'])}, tau_mem = {_ms(p['tau_mem'])}, r = {p['r']!r}, w_in = {p['w_in']!r}, "
            f"v_leak = {p['v_leak']!r}")
    if spiking:
        args += f", threshold = {p['v_threshold']!r}, v_reset = {p['v_reset']!r}"
    return f"{type(node).__name__}({args}, dt = {_ms(dt)})", 1.0


def _must_be_zero(values: dict[str, float], fields: tuple[str, ...], entry: Entry) -> None:
    for name in fields:
        if name in values and values[name] != 0.0:
            entry.status = "unsupported"
            entry.why = f"{name} = {values[name]:g}: the library neuron has {name} 0"


@dataclass
class _Paths:
    """What reaches each sink: {(source, sink, delay steps): matrix [sink size, source size]}, and biases."""

    weights: dict[tuple[str, str, int], np.ndarray] = field(default_factory=dict)
    biases: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)  # (sink, delay): constant drive


def trace(flat: _Flat, start: str, initial: np.ndarray, dt: float, file: str, paths: _Paths,
          sinks: set[str], as_bias: bool) -> None:
    """Follow every path from `start` through weight and pass-through nodes to a sink, multiplying matrices and
    adding delays; a cycle that meets no neuron cannot be ordered (E952)."""
    successors: dict[str, list[str]] = {}
    for src, dst in flat.edges:
        successors.setdefault(src, []).append(dst)
    stack: list[tuple[str, np.ndarray, int, tuple[str, ...]]] = [(start, initial, 0, (start,))]
    while stack:
        node_name, matrix, delay, path = stack.pop()
        for nxt in successors.get(node_name, []):
            if nxt in sinks:
                if as_bias:  # a bias inside a cycle through the sink arrives a step late, as the cycle's output
                    late = int(_reaches(successors, nxt, start))
                    paths.biases[(nxt, late)] = paths.biases.get((nxt, late), 0) + matrix[:, 0]
                else:
                    key = (start, nxt, delay)
                    paths.weights[key] = paths.weights.get(key, 0) + matrix
                continue
            if nxt in path:
                raise fail("E952", file, f"the cycle {' -> '.join(path[path.index(nxt):] + (nxt,))} passes no neuron,"
                                         " so no step order computes it")
            node = flat.nodes[nxt]
            if node == PASS or isinstance(node, nir.Delay):
                steps = _delay_steps(node, nxt, dt, file) if isinstance(node, nir.Delay) else 0
                stack.append((nxt, matrix, delay + steps, path + (nxt,)))
            elif isinstance(node, nir.Affine | nir.Linear):
                stack.append((nxt, np.asarray(node.weight, dtype=np.float64) @ matrix, delay, path + (nxt,)))
            elif isinstance(node, nir.Scale):
                stack.append((nxt, np.asarray(node.scale, dtype=np.float64).reshape(-1, 1) * matrix, delay,
                              path + (nxt,)))


def _reaches(successors: dict[str, list[str]], start: str, goal: str) -> bool:
    """Whether a path leads from `start` to `goal`."""
    seen, stack = {start}, [start]
    while stack:
        for nxt in successors.get(stack.pop(), []):
            if nxt == goal:
                return True
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return False


def _delay_steps(node: nir.Delay, name: str, dt: float, file: str) -> int:
    steps = np.asarray(node.delay, dtype=np.float64).reshape(-1) / dt
    whole = np.rint(steps)
    if steps.size == 0 or not np.allclose(steps, whole, atol=1e-6) or np.ptp(whole) != 0:
        raise fail("E951", file, f"Delay '{name}' is not one whole number of steps of dt = {dt:g} s for every "
                                 f"element ({steps.min():g} .. {steps.max():g} steps)",
                   "circuitdsl delays are whole steps, one per projection")
    return int(whole[0])


def convert(graph: nir.NIRGraph, file: str, dt: float | None, stem: str) -> Converted:
    """The graph as circuit text (data file `<stem>.npz`), read at step `dt` (default: the graph's metadata)."""
    given = dt if dt is not None else (graph.metadata or {}).get("dt")
    step = float(given) if given is not None else DEFAULT_DT
    report = FidelityReport("NIR -> circuit", file, f"{stem}.circuit")
    origin = ("given" if dt is not None else "from the graph" if given is not None
              else "assumed: the graph records none; the NIR paper and snnTorch use 1e-4 s")
    report.notes.append(f"dt = {step:g} s ({origin}); forward Euler, reset in the step that spikes, a cycle reads "
                        "the previous step")
    flat = flatten(graph)
    order = _bfs_order(flat)
    taken: set[str] = set()
    names = {n: identifier(n, taken) for n in order if isinstance(flat.nodes[n], (nir.Input, nir.Output, *NEURONS))}
    inputs = [n for n in order if isinstance(flat.nodes[n], nir.Input)]
    neurons = [n for n in order if isinstance(flat.nodes[n], NEURONS)]
    outputs = [n for n in order if isinstance(flat.nodes[n], nir.Output)]
    for n, node in flat.nodes.items():
        if node != PASS and not isinstance(node, (*NEURONS, *WEIGHTS, nir.Input, nir.Output)):
            report.add("node", n, "-", "unsupported", f"NIR {type(node).__name__} has no circuitdsl counterpart")
    paths = _Paths()
    sinks = set(neurons) | set(outputs)
    for n in inputs + neurons:
        trace(flat, n, np.eye(_size(flat.nodes[n])), step, file, paths, sinks, as_bias=False)
    for n, node in flat.nodes.items():
        if isinstance(node, nir.Affine) and node.bias is not None and np.any(np.asarray(node.bias) != 0):
            bias = np.asarray(node.bias, dtype=np.float64).reshape(-1, 1)
            trace(flat, n, bias, step, file, paths, sinks, as_bias=True)
    return _write(flat, names, inputs, neurons, outputs, paths, step, report, stem, file)


def _size(node: nir.NIRNode) -> int:
    size = size_out(node)
    assert size is not None
    return size


def _bfs_order(flat: _Flat) -> list[str]:
    """Nodes breadth-first from the Inputs (then any left), so a back-edge goes to an earlier population."""
    successors: dict[str, list[str]] = {}
    for src, dst in flat.edges:
        successors.setdefault(src, []).append(dst)
    seen: dict[str, None] = {}
    queue = deque(n for n, node in flat.nodes.items() if isinstance(node, nir.Input))
    while queue:
        n = queue.popleft()
        if n not in seen:
            seen[n] = None
            queue.extend(successors.get(n, []))
    return list(seen) + [n for n in flat.nodes if n not in seen]


@dataclass
class _Writer:
    """The circuit text being written from the folded paths: declarations, projections, outputs."""

    flat: _Flat
    names: dict[str, str]
    paths: _Paths
    dt: float
    report: FidelityReport
    stem: str
    lines: list[str] = field(default_factory=list)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    models: dict[str, tuple[str, float]] = field(default_factory=dict)  # node -> (model as written, input scale)
    sums: dict[str, str] = field(default_factory=dict)  # output -> the Identity population that sums into it
    bias: str = ""
    live: set[str] = field(default_factory=set)  # the inputs and the neurons that convert

    def reached(self, output: str) -> bool:
        """Whether a path from a converted node, or a bias, reaches an output (one nothing reaches is left out)."""
        return (any(k[1] == output and k[0] in self.live for k in self.paths.weights)
                or any(k[0] == output for k in self.paths.biases))

    def size(self, n: str) -> int:
        return _size(self.flat.nodes[n])

    def declarations(self, inputs: list[str], neurons: list[str], outputs: list[str]) -> None:
        populations = []
        for n in neurons:
            entry = self.report.add("population", n, self.names[n], "exact")
            model, scale = neuron(self.flat.nodes[n], self.dt, entry)
            entry.target = f"{self.names[n]} : {model.split('(')[0]}"
            self.models[n] = (model, scale)
            if entry.status != "unsupported":
                self.live.add(n)
                populations.append(_wrapped(f"  population {self.names[n]}[unit = {self.size(n)}] : {model}"))
        for n in inputs:
            self.live.add(n)
            self.report.add("input", n, self.names[n], "exact")
            self.lines.append(f"  input {self.names[n]}[unit = {self.size(n)}]")
        reached = [n for n in outputs if self.reached(n)]
        self.lines.extend([*(f"  output {self.names[n]}[unit = {self.size(n)}]" for n in reached), "", *populations])
        taken = set(self.names.values())
        for n in reached:  # an output fed through weights gets an Identity population that sums them
            fed = [k for k in self.paths.weights if k[1] == n and k[0] in self.live]
            biased = any(sink == n for sink, _ in self.paths.biases)
            if not (len(fed) == 1 and fed[0][2] == 0 and not biased and _is_identity(self.paths.weights[fed[0]])):
                self.sums[n] = identifier(f"{self.names[n]}_sum", taken)
                self.lines.append(f"  population {self.sums[n]}[unit = {self.size(n)}] : Identity")
                self.models[n] = ("Identity", 1.0)
        if self.paths.biases:
            self.bias = identifier("bias", taken)
            self.lines.append(f"  population {self.bias} : Constant")
        self.lines.append("")

    def projection(self, source: str, target: str, key: str, values: np.ndarray, delay: int, why: str) -> None:
        """One projection into a neuron's population (or an output's sum), its weights scaled by the target's
        input scale and stored under `key`."""
        self.arrays[key] = values * self.models[target][1]
        into = self.sums.get(target, self.names.get(target))
        rule = "all_to_all, " if source != self.bias else ""
        self.lines.append(f'  {self.names.get(source, source)} -> {into} : {rule}weight = from_file("{self.stem}.npz", '
                          f'key = "{key}")' + (f", delay = {delay}" if delay else ""))
        self.report.add("projection", f"{source} -> {target}", f"{self.names.get(source, source)} -> {into}",
                        "exact", why)

    def projections(self, live: set[str]) -> None:
        """Every folded path between exported nodes, and the biases (`live`: inputs and exported neurons)."""
        for (src, dst, delay), matrix in self.paths.weights.items():
            if src in live and (dst in live or dst in self.sums):
                key = f"{self.names[src]}__{self.names[dst]}" + (f"__d{delay}" if delay else "")
                self.projection(src, dst, key, matrix, delay, f"delay {delay} steps" if delay else "")
        for (dst, late), vector in self.paths.biases.items():
            if dst in live or dst in self.sums:
                key = f"bias__{self.names[dst]}" + ("__late" if late else "")
                why = "the Affine biases on its paths" + (", inside a cycle: from the second step" if late else "")
                self.projection(self.bias, dst, key, np.asarray(vector).reshape(-1), int(late), why)
        self.lines.append("")

    def outputs(self, outputs: list[str]) -> None:
        for n in outputs:
            fed = [k for k in self.paths.weights if k[1] == n and k[0] in self.live]
            source = self.sums.get(n) or (self.names[fed[0][0]] if fed else None)
            if source is None:
                self.report.add("output", n, "-", "unsupported", "nothing converted reaches it")
                continue
            self.lines.append(f"  {self.names[n]} = {source}")
            self.report.add("output", n, self.names[n], "exact")


def _write(flat: _Flat, names: dict[str, str], inputs: list[str], neurons: list[str], outputs: list[str],
           paths: _Paths, dt: float, report: FidelityReport, stem: str, file: str) -> Converted:
    """The circuit text: ports, populations, projections (weights to the .npz), outputs."""
    writer = _Writer(flat, names, paths, dt, report, stem)
    writer.declarations(inputs, neurons, outputs)
    writer.projections(writer.live)
    writer.outputs(outputs)
    used = {m.split("(")[0] for m, _ in writer.models.values()} | ({"Constant"} if paths.biases else set())
    text = _file_text(file, stem, dt, [CUBA[k] for k in ("CubaLIF", "CubaLI", "Constant") if k in used], writer.lines)
    return Converted(text, writer.arrays, report, names, dt)


def _wrapped(line: str, width: int = 110) -> str:
    """A long declaration broken after commas (newlines inside parentheses are free in the language)."""
    if len(line) <= width:
        return line
    indent = " " * (line.index("(") + 1)
    parts, current = [], ""
    for piece in line.split(", "):
        if current and len(current) + len(piece) + 2 > width:
            parts.append(current + ",")
            current = indent + piece
        else:
            current = f"{current}, {piece}" if current else piece
    return "\n".join([*parts, current])


def _is_identity(matrix: np.ndarray) -> bool:
    return matrix.shape[0] == matrix.shape[1] and np.array_equal(matrix, np.eye(matrix.shape[0]))


def _file_text(file: str, stem: str, dt: float, models: list[str], body: list[str]) -> str:
    name = "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", stem) if part) or "Converted"
    if name[0].isdigit():
        name = f"Nir{name}"
    head = (f'"""Converted from {file} by `circuitdsl convert` (NIR, dt = {dt!r} s).\n\n'
            f"The weight matrices are in {stem}.npz beside this file; what converted exactly is in "
            f'{stem}.circuit.fidelity.txt."""\n')
    parts = [head, *(m + "\n" for m in models), f"circuit {name} {{", *body, "}"]
    return "\n".join(parts).replace("\n\n\n", "\n\n") + "\n"


def measure(converted: Converted, graph: nir.NIRGraph, module: object, ir: object, steps: int = 100,
            seed: int = 0) -> None:
    """Run the graph (nirtorch) and the converted circuit on the same random inputs; record each entry's error."""
    from circuitdsl.interop import compare, nir_exec

    report = converted.report
    ports = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input | nir.Output)]
    if len(ports) != 2:
        report.comparison = "not run: nirtorch runs graphs with one input and one output"
        return
    x = compare.random_inputs(ir, steps, seed=seed)  # type: ignore[arg-type]
    ours, populations = compare.our_traces(module, ir, x, steps)  # type: ignore[arg-type]
    nodes = [e.name for e in report.entries if e.kind == "population" and e.status != "unsupported"]
    theirs, traces = nir_exec.run(graph, next(iter(x.values())), converted.dt, nodes)
    for entry in report.entries:
        if entry.kind == "population" and entry.name in traces:
            report.measured(entry, compare.max_error(populations[converted.names[entry.name]], traces[entry.name]))
        elif entry.kind == "output" and entry.status != "unsupported":
            report.measured(entry, compare.max_error(ours[converted.names[entry.name]], theirs))
    report.comparison = (f"{steps} steps, batch {compare.BATCH}, uniform(0, 1) inputs (seed {seed}), float32; the "
                         "graph run by nirtorch 2.6 with forward-Euler neurons")
