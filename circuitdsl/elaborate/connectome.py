"""`celegans.connectome(dataset, ...)` and `connectome("edges.npz", ...)`: options -> a resolved `Connectome`;
`population N : Model from net` -> its labelled population and one projection per synapse kind.

The data side (cect, files, selection, numpy) lives in circuitdsl/connectome/; this module reads the
call's options with our evaluator, reports mistakes at their spans, and writes the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

import numpy as np

from circuitdsl import ast, units
from circuitdsl.connectome import cect_data, source, wiring, worm
from circuitdsl.elaborate.evaluate import Abort, Evaluator, dim_of, is_number, magnitude
from circuitdsl.elaborate.scope import Scope
from circuitdsl.elaborate.values import DataCall, Signal, Symbol, describe
from circuitdsl.errors import Problem, Reporter, Span, did_you_mean
from circuitdsl.ir import model as ir
from circuitdsl.ir.arrays import Array
from circuitdsl.units import DIMENSIONLESS, Dim, format_dim

KINDS = ("chemical", "electrical")
POLICIES = ("c302", "transmitter", "data", "excitatory", "inhibitory")
OPTIONS = ("neurons", "synapses", "sign", "glutamate", "unknown", "mixed", "inhibit", "excite", "dale", "signs",
           "weight", "gap_weight", "strength", "share", "trainable", "missing", "self_junctions")
_SHARES = ("synapse", "class", "all")
_IR_SHARE: dict[str, Literal["edge", "class", "all"]] = {"synapse": "edge", "class": "class", "all": "all"}
_EDGE_VARS = ("count", "total_in", "total_out")
_GROUP_VARS = ("mean_count", "edges")


@dataclass(frozen=True)
class Kind:
    """One synapse kind of a connectome, ready for the IR: synapses, fixed sign and scale, trainable groups."""

    name: str
    synapses: wiring.Synapses
    sign: np.ndarray
    scale: np.ndarray
    dim: Dim
    group: np.ndarray
    strength: np.ndarray  # the initial value of each group's trainable strength


@dataclass
class Connectome:
    """A resolved connectome call: the selected cells (canonical order) and each synapse kind's wiring."""

    source: source.Source
    names: list[str]
    kinds: list[Kind]
    share: str
    signs: str  # fixed | trainable
    trainable: bool
    policy: str
    weight: str
    span: Span
    populated: list[str] = field(default_factory=list)


def build(ev: Evaluator, call: DataCall, scope: Scope) -> Connectome:
    """Read a connectome call's options, load its data and select; every mistake is one error at its span."""
    node = call.node
    named: dict[str, ast.Arg] = {}
    positional = [a for a in node.args if a.name is None]
    for arg in node.args:
        if arg.name is None:
            continue
        if arg.name.name not in OPTIONS:
            raise ev.fail("E203", f"connectome() has no option '{arg.name.name}'", arg.name.span,
                          [did_you_mean(arg.name.name, OPTIONS), f"options: {', '.join(OPTIONS)}"])
        if arg.name.name in named:
            raise ev.fail("E202", f"option '{arg.name.name}' is given twice", arg.name.span)
        named[arg.name.name] = arg
    what = "a dataset name" if call.builtin.name == "celegans.connectome" else "the path of a .csv or .npz file"
    if len(positional) != 1:
        raise ev.fail("E204", f"connectome() takes {what} first", node.span)
    label = ev.constant(positional[0].value, scope, what)
    if not isinstance(label, str):
        raise ev.fail("E301", f"connectome() takes {what}, not {describe(label)}", positional[0].value.span)
    reader = _Options(ev, scope, named, node.span)
    try:
        if call.builtin.name == "celegans.connectome":
            data = source.from_cect(label)
        else:
            data = source.from_file(_data_path(ev, label, node.span), ev.limits.data_rows)
    except Problem as error:
        raise ev.fail(error.code, error.message, positional[0].value.span, list(error.notes)) from None
    selected = _select(reader, data)
    names = [data.names[i] for i in selected]
    kinds_wanted = reader.symbols("synapses", KINDS, ("chemical",))
    policy = reader.symbol("sign", POLICIES, None) if "chemical" in kinds_wanted else "excitatory"
    if policy is None:
        raise ev.fail("E904", "say how chemical synapses get their signs", node.span,
                      [("add sign = c302 (GABAergic presynaptic neuron: inhibitory), or sign = transmitter; "
                        f"policies: {', '.join(POLICIES)}")])
    share = reader.symbol("share", _SHARES, "synapse")
    classes = None if data.classes is None else [data.classes[i] for i in selected]
    if share == "class" and classes is None:
        raise ev.fail("E505", "share = class needs a class per cell", named["share"].value.span,
                      ["give the file a `classes` array, or share = synapse or all"])
    kinds = []
    for kind in kinds_wanted:
        symmetric = kind == "electrical"
        synapses = wiring.restrict(getattr(data, kind), selected, len(data.names), symmetric)
        if synapses.self_junctions and reader.symbol("self_junctions", ("warn", "drop"), "warn") == "warn":
            where = named["synapses"].value.span if "synapses" in named else node.span
            ev.reporter.warn("W501", f"{synapses.self_junctions} self-junction{'s' * (synapses.self_junctions > 1)} "
                                     "dropped", where, ["a gap junction joins two different cells"])
        sign = _signs(reader, data, names, synapses, policy) if kind == "chemical" else np.ones(len(synapses.pre))
        option = "gap_weight" if kind == "electrical" and "gap_weight" in named else "weight"
        scale, dim = reader.per_edge(option, wiring.totals(synapses, len(names), symmetric), len(synapses.pre))
        group, n_groups = wiring.groups(synapses, share, classes, symmetric)
        strength, _ = reader.per_edge("strength", wiring.group_quantities(synapses.count, group, n_groups),
                                      n_groups, _GROUP_VARS)
        kinds.append(Kind(kind, synapses, sign.astype(np.int32), scale, dim, group, strength))
    return Connectome(data, names, kinds, share, reader.symbol("signs", ("fixed", "trainable"), "fixed"),
                      reader.boolean("trainable", True), policy, reader.text("weight", "count"), node.span)


def _data_path(ev: Evaluator, name: str, span: Span) -> str:
    """A data file's path, relative to the folder of the .circuit file that names it, inside the sandbox."""
    try:
        return ev.sandbox.resolve(name, str(Path(span.file).parent), "the connectivity file")
    except Problem as error:
        raise Problem("E906", error.message, error.notes) from None


class _Options:
    """The named options of one connectome call, each read on demand with its own span for errors."""

    def __init__(self, ev: Evaluator, scope: Scope, named: dict[str, ast.Arg], span: Span) -> None:
        self.ev, self.scope, self.named, self.span = ev, scope, named, span

    def where(self, name: str) -> Span:
        return self.named[name].value.span if name in self.named else self.span

    def word(self, node: ast.Expr) -> str:
        """A bare name is a word of the option's vocabulary unless it is bound (a circuit argument, a let)."""
        if isinstance(node, ast.Name) and self.scope.lookup(node.id) is None:
            return node.id
        value = self.ev.constant(node, self.scope, "an option")
        if isinstance(value, Symbol):
            return value.name
        if isinstance(value, str):
            return value
        raise self.ev.fail("E301", f"expected a name, not {describe(value)}", node.span)

    @overload
    def symbol(self, name: str, allowed: tuple[str, ...], default: str) -> str: ...
    @overload
    def symbol(self, name: str, allowed: tuple[str, ...], default: None) -> str | None: ...

    def symbol(self, name: str, allowed: tuple[str, ...], default: str | None) -> str | None:
        if name not in self.named:
            return default
        node = self.named[name].value
        word = self.word(node)
        if word not in allowed:
            raise self.ev.fail("E801", f"{name} is one of {', '.join(allowed)}, not '{word}'", node.span,
                               [did_you_mean(word, allowed)])
        return word

    def symbols(self, name: str, allowed: tuple[str, ...], default: tuple[str, ...]) -> tuple[str, ...]:
        if name not in self.named:
            return default
        node = self.named[name].value
        items = node.items if isinstance(node, ast.SetLit) else (node,)
        words = {self.word(item): item for item in items}
        for word, item in words.items():
            if word not in allowed:
                raise self.ev.fail("E801", f"{name} are among {', '.join(allowed)}, not '{word}'", item.span,
                                   [did_you_mean(word, allowed)])
        return tuple(w for w in allowed if w in words)

    def boolean(self, name: str, default: bool) -> bool:
        if name not in self.named:
            return default
        return self.ev.boolean(self.named[name].value, self.scope, f"the option '{name}'")

    def strings(self, name: str) -> list[tuple[str, Span]]:
        if name not in self.named:
            return []
        node = self.named[name].value
        items = node.items if isinstance(node, ast.SetLit) else (node,)
        out = []
        for item in items:
            value = self.ev.constant(item, self.scope, f"an entry of '{name}'")
            if not isinstance(value, str):
                raise self.ev.fail("E301", f"an entry of '{name}' is a string \"PRE -> POST\", not {describe(value)}",
                                   item.span)
            out.append((value, item.span))
        return out

    def text(self, name: str, default: str) -> str:
        """An option's source text, for provenance in the IR."""
        if name not in self.named:
            return default
        span = self.named[name].value.span
        lines = self.ev.reporter.sources.get(span.file, "").split("\n")[span.line - 1:span.end_line]
        if not lines:
            return default
        if len(lines) == 1:
            return lines[0][span.column - 1:span.end_column - 1]
        return " ".join([lines[0][span.column - 1:], *lines[1:-1], lines[-1][:span.end_column - 1]]).strip()

    def per_edge(self, name: str, values: dict[str, np.ndarray], n: int,
                 variables: tuple[str, ...] = _EDGE_VARS) -> tuple[np.ndarray, Dim]:
        """A weight (or strength) expression over per-edge (per-group) variables: finite values >= 0."""
        node = self.named.get(name)
        if node is None:
            default = values["count"] if name != "strength" else np.ones(n)
            return np.asarray(default, dtype=np.float64), DIMENSIONLESS
        inner = Scope(parent=self.scope)
        for variable in variables:
            inner.define(variable, Signal(ir.Var(name=variable), ()), None, "loop", self.ev.reporter)
            inner.names[variable].used = True
        value = self.ev.eval(node.value, inner)
        if isinstance(value, Signal):
            try:
                result, dim = wiring.per_edge(value.expr, values, n), value.dim
            except Problem as error:
                raise self.ev.fail(error.code, error.message, node.value.span) from None
        elif is_number(value) and not isinstance(value, bool):
            result, dim = np.full(n, float(magnitude(value))), dim_of(value)
        else:
            raise self.ev.fail("E301", f"{name} is a number or an expression of {', '.join(variables)}, not "
                                       f"{describe(value)}", node.value.span)
        bad = ~np.isfinite(result) | (result < 0)
        if bad.any():
            raise self.ev.fail("E801", f"{name} is negative or not finite for {int(bad.sum())} of {n} "
                                       f"{'groups' if name == 'strength' else 'synapses'}", node.value.span,
                               ["magnitudes are >= 0; the sign comes from the sign policy"])
        if name == "strength" and dim != DIMENSIONLESS:
            raise self.ev.fail("E401", "a strength is dimensionless; give the weight its unit", node.value.span)
        return result, dim


# ---- selection -----------------------------------------------------------------------------------


def _select(options: _Options, data: source.Source) -> np.ndarray:
    """The `neurons` option as positions into the source's cells, in canonical order."""
    drop = options.symbol("missing", ("error", "drop"), "error") == "drop"
    node = options.named["neurons"].value if "neurons" in options.named else ast.Name(options.span, "all")
    chosen = _terms(options, data, node, drop)
    if not chosen:
        raise options.ev.fail("E902", "the selection holds no cell of this dataset", node.span)
    return np.array(sorted(data.position[name] for name in chosen), dtype=np.int64)


def _terms(options: _Options, data: source.Source, node: ast.Expr, drop: bool) -> set[str]:
    """Evaluate a selection: sets, names, strings (`^regex$`), and `+` / `or` (union), `-` (difference),
    `and` (intersection) between them."""
    ev = options.ev
    if isinstance(node, ast.Binary) and node.op in ("+", "or", "-", "and"):
        left, right = _terms(options, data, node.left, drop), _terms(options, data, node.right, drop)
        return left | right if node.op in ("+", "or") else left - right if node.op == "-" else left & right
    items = node.items if isinstance(node, ast.SetLit) else (node,)
    chosen: set[str] = set()
    for item in items:
        word = options.word(item) if isinstance(item, ast.Name | ast.String) else None
        if word is None:
            value = ev.constant(item, options.scope, "a selection")
            if not isinstance(value, frozenset | str | Symbol):
                raise ev.fail("E301", f"a selection holds names and \"^patterns$\", not {describe(value)}", item.span)
            words = [v.name if isinstance(v, Symbol) else str(v) for v in
                     (value if isinstance(value, frozenset) else [value])]
        else:
            words = [word]
        for w in words:
            chosen |= _term(ev, data, w, item.span, drop)
    return chosen


def _term(ev: Evaluator, data: source.Source, word: str, span: Span, drop: bool) -> set[str]:
    """One selection term's cells present in the source; absent but valid names are an error unless dropped."""
    try:
        if word == "all":
            names: tuple[str, ...] = tuple(n for n in data.names if not data.is_worm or n in worm.worm().neurons)
        elif word.startswith("^"):
            if len(word) > ev.limits.pattern_length:
                raise Problem("E711", f"a pattern of {len(word)} characters is {ev.limits.over('pattern_length')}",
                              (ev.limits.hint("pattern_length"),))
            pattern = word if word.endswith("$") else None
            if pattern is None:
                raise Problem("E801", f"the pattern '{word}' is anchored at its start only",
                              ("anchor it at both ends: ^...$",))
            names = worm.matching(pattern, None if data.is_worm else data.names)
        elif data.is_worm:
            names = worm.resolve(word)
        elif word in data.position:
            names = (word,)
        else:
            raise Problem("E902", f"'{word}' is no cell of '{data.label}'",
                          tuple(n for n in (did_you_mean(word, data.names),) if n))
    except Problem as error:
        raise ev.fail(error.code, error.message, span, list(error.notes)) from None
    missing = [n for n in names if n not in data.position]
    if missing and not drop:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise ev.fail("E903", f"{data.label} has no {shown}", span,
                      [(f"'{word}' names {len(names)} cell{'s' * (len(names) > 1)}, {len(missing)} of them absent "
                        "from this dataset"), "add missing = drop to leave them out"])
    return {n for n in names if n in data.position}


# ---- signs ---------------------------------------------------------------------------------------


def _signs(options: _Options, data: source.Source, names: list[str], synapses: wiring.Synapses,
           policy: str) -> np.ndarray:
    """Each chemical synapse's sign under the policy, then the overrides, then (optionally) Dale's law."""
    ev = options.ev
    if policy in ("c302", "transmitter") and not data.is_worm:
        raise ev.fail("E904", f"sign = {policy} needs C. elegans cells; this file's cells are not",
                      options.where("sign"), ["use sign = data (a sign column), excitatory or inhibitory"])
    if policy == "data":
        if synapses.sign is None:
            raise ev.fail("E904", "sign = data needs signs in the data", options.where("sign"),
                          ["give the file a sign column (+1 / -1), or choose another policy"])
        signs = synapses.sign.astype(np.int64)
    elif policy in ("excitatory", "inhibitory"):
        signs = np.full(len(synapses.pre), 1 if policy == "excitatory" else -1, dtype=np.int64)
    else:
        per_neuron = _neuron_signs(options, names, synapses, policy)
        signs = per_neuron[synapses.pre]
    for option, value in (("inhibit", -1), ("excite", 1)):
        for text, span in options.strings(option):
            signs[_override(ev, data, names, synapses, text, span)] = value
    if options.boolean("dale", False):
        mixed = [names[i] for i in np.unique(synapses.pre)
                 if len(np.unique(signs[synapses.pre == i])) > 1]
        if mixed:
            raise ev.fail("E905", f"Dale's law: {', '.join(mixed[:6])}{' ...' * (len(mixed) > 6)} would make both "
                                  "excitatory and inhibitory synapses", options.where("dale"),
                          ["one sign per presynaptic neuron: override all of a neuron's synapses, or drop dale"])
    return signs


def _neuron_signs(options: _Options, names: list[str], synapses: wiring.Synapses, policy: str) -> np.ndarray:
    """One sign per selected neuron from its neurotransmitters: c302 (GABA: -1, else +1) or transmitter (ACh +1,
    GABA -1, glutamate, several or none as the options choose)."""
    table = cect_data.transmitters()
    if policy == "c302":
        return np.array([-1 if "GABA" in table.get(n, ()) else 1 for n in names], dtype=np.int64)
    values = {"excitatory": 1, "inhibitory": -1}
    choice = {word: values.get(options.symbol(word, tuple(values), None) or "")
              for word in ("glutamate", "unknown", "mixed")}
    needed: dict[str, list[str]] = {"glutamate": [], "unknown": [], "mixed": []}
    signs = np.ones(len(names), dtype=np.int64)
    for i in np.unique(synapses.pre):
        found = set(table.get(names[i], ()))
        votes = {1 for t in found if t == "Acetylcholine"} | {-1 for t in found if t == "GABA"}
        if "Glutamate" in found:
            votes.add(choice["glutamate"] or 0)
        case = "glutamate" if 0 in votes else "unknown" if not votes else "mixed" if len(votes) > 1 else None
        if case is not None and choice[case] is None:
            needed[case].append(names[i])
        signs[i] = votes.pop() if case is None else choice[case] or 1
    for word, who in needed.items():
        if who:
            raise options.ev.fail("E904", f"sign = transmitter needs a choice for {word} "
                                          f"({', '.join(who[:5])}{' ...' * (len(who) > 5)})", options.where("sign"),
                                  [f"add {word} = excitatory or {word} = inhibitory"])
    return signs


def _override(ev: Evaluator, data: source.Source, names: list[str], synapses: wiring.Synapses, text: str,
              span: Span) -> np.ndarray:
    """The synapses an override \"PRE -> POST\" names (each side a neuron, class or ^pattern$)."""
    parts = [p.strip() for p in text.split("->")]
    if len(parts) != 2 or not all(parts):
        raise ev.fail("E801", f"an override is \"PRE -> POST\", not \"{text}\"", span, ["e.g. \"DB -> DD\""])
    position = {n: i for i, n in enumerate(names)}
    pre, post = ({position[n] for n in _term(ev, data, p, span, True) if n in position} for p in parts)
    return np.isin(synapses.pre, list(pre)) & np.isin(synapses.post, list(post))


# ---- the IR --------------------------------------------------------------------------------------


def population_shape(net: Connectome) -> tuple[ir.Axis, ...]:
    """One `neuron` axis: the cells' names, and for drawing their classes and (in the worm) layers."""
    position = net.source.position
    labels = net.names if net.source.labelled else None
    classes = None if net.source.classes is None else [net.source.classes[position[n]] for n in net.names]
    layers = [worm.layer(n) for n in net.names] if net.source.is_worm else None
    return (ir.Axis(name="neuron", size=len(net.names), labels=labels, classes=classes, layers=layers),)


def weights(net: Connectome, population: str, ids: dict[str, str], port: str, port_dim: Dim, output_dim: Dim,
            span: Span, reporter: Reporter) -> tuple[list[ir.Parameter], list[ir.Projection]]:
    """One parameter and one projection per synapse kind of `net`, onto `population` itself."""
    parameters, projections = [], []
    shape = list(population_shape(net))
    for kind in net.kinds:
        if units.mul(kind.dim, output_dim) != port_dim:
            reporter.error("E401", f"weight × output is {format_dim(units.mul(kind.dim, output_dim))} but the "
                                   f"input '{port}' takes {format_dim(port_dim)}", net.span,
                           ["give the weight a unit, e.g. weight = count * 1 nA"])
            raise Abort()
        name = f"{population}.{kind.name}"
        constant = len(kind.strength) == 0 or bool(np.all(kind.strength == kind.strength[0]))
        init = (ir.Init(rule="constant", args=[float(kind.strength[0]) if len(kind.strength) else 1.0])
                if constant else ir.Init(rule="data", args=[], values=Array(kind.strength)))
        fixed = net.signs == "fixed"
        parameters.append(ir.Parameter(
            name=name, shape=[] if net.share == "all" else [len(kind.strength)],
            sign="excitatory" if fixed else "free", enforce="clamp" if fixed else "none", init=init,
            trainable=net.trainable, share=_IR_SHARE[net.share], dim=format_dim(kind.dim), span=span))
        s = kind.synapses
        electrical = kind.name == "electrical"
        projections.append(ir.Projection(
            id=ids[kind.name], kind=kind.name, arrow="<->" if electrical else "->",  # type: ignore[arg-type]
            source=ir.Ref(source=population), source_shape=shape, target=population, target_shape=shape,
            port=port, synapses=len(s.pre),
            connectivity=ir.Connectivity(rule="connectome", pre=Array(s.pre), post=Array(s.post),
                                         args={"dataset": net.source.label, "kind": kind.name}),
            weight=ir.WeightRef(param=name, offset=0, stride=1,
                                index=None if net.share == "synapse" else Array(kind.group),
                                sign=Array(kind.sign, dtype="int32"), scale=Array(kind.scale)),
            span=span))
    return parameters, projections


def data_source(net: Connectome, name: str, population: str) -> ir.DataSource:
    return ir.DataSource(name=name, population=population, provider=net.source.provider, dataset=net.source.label,
                         weights=net.source.weights, sign=net.policy, weight=net.weight, neurons=len(net.names))
