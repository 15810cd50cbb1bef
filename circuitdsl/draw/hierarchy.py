"""The instance tree folded for drawing, and where each signal of the IR comes from.

Sibling instances of one circuit in one instance array (`seg[0]` ... `seg[4]`) fold into one `Group`, drawn once
and marked ×N.  `Resolver` reads a signal expression the way its author wrote it: a part of it that equals the
signal on a port of the instance it was written in (or of a child's output) is read *through that port*.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from circuitdsl.draw import text
from circuitdsl.ir.expr import fold, match, refs
from circuitdsl.ir.model import Axis, CircuitIR, Expr, Instance, Population, Port, Ref, Shared, Wire
from circuitdsl.ir.units import selected_units

_LETTERS = "ijklmnpqrs"
INLINE_SHARED = 12
"""A shared subexpression (a let read twice) of at most this many nodes, written out, is drawn written out;
a larger one is drawn by its name."""


@dataclass
class Group:
    """Instances drawn as one: the root, one named instance, or the same-circuit members of an instance array."""

    id: str
    path: str
    circuit: str
    members: list[Instance]
    parent: Group | None
    level: int
    letter: str | None = None
    children: list[Group] = field(default_factory=list)

    @property
    def indices(self) -> list[int]:
        """The distinct array indices of the members, sorted."""
        return sorted({m.index for m in self.members if m.index is not None})

    @property
    def array(self) -> str | None:
        """The name of the members' instance array, if they are in one."""
        return self.members[0].array

    def title(self) -> tuple[str, str]:
        """(`seg[i]`, `Segment  ×5`), with the index range when it is not 0..N-1."""
        local = self.path.rsplit(".", 1)[-1]
        if self.letter is None:
            return local, self.circuit
        indices = self.indices
        what = f"{self.circuit}  ×{len(indices)}"
        if indices != list(range(len(indices))):
            what += f"  ({self.letter} ∈ {text.indices(indices)})"
        return local, what

    def within(self, other: Group) -> bool:
        """Whether this group is `other` or nested in it."""
        group: Group | None = self
        while group is not None:
            if group is other:
                return True
            group = group.parent
        return False


class End(NamedTuple):
    """One end of a wire, before it is placed on the diagram: a population, a top-level port or an instance port."""

    kind: str  # population | input | output | port_in | port_out
    name: str  # population, port or instance name
    port: str = ""  # the instance's port, or the population's neuron input


@dataclass(frozen=True)
class Resolved:
    """A signal expression read in its instance: printed as a template, its leaves as slots, where they come from."""

    template: str
    slots: tuple[text.Slot, ...]
    ends: tuple[End, ...]

    @property
    def plain(self) -> bool:
        """Whether the signal is one leaf, drawn as a wire straight from it (no operation on the way)."""
        return self.template == text.HOLE


class Hierarchy:
    """The folded instance tree of a circuit, and the lookups the renderers need."""

    def __init__(self, ir: CircuitIR) -> None:
        self.ir = ir
        self.root = Group(id="", path="", circuit=ir.hierarchy.circuit, members=[ir.hierarchy], parent=None, level=0)
        self.instances: dict[str, Instance] = {}
        self.parent_of: dict[str, Instance] = {}
        self._index(ir.hierarchy)
        self.group_of: dict[str, Group] = {"": self.root}
        self._fold(self.root, 0)
        self.populations: dict[str, Population] = {p.name: p for p in ir.populations}
        self.inputs: dict[str, Port] = {p.name: p for p in ir.inputs}
        self.shapes: dict[str, list[Axis]] = {n: p.shape for n, p in self.inputs.items()}
        self.shapes.update({n: p.shape for n, p in self.populations.items()})

    def _index(self, instance: Instance) -> None:
        """Record every instance by name, and its parent."""
        self.instances[instance.name] = instance
        for child in instance.children:
            self.parent_of[child.name] = instance
            self._index(child)

    def _fold(self, group: Group, arrays: int) -> None:
        """Group the children of all members by (local name pattern, circuit), in order of appearance."""
        found: dict[tuple[str, str], list[Instance]] = {}
        for member in group.members:
            for child in member.children:
                local = child.name[len(member.name) + 1:] if member.name else child.name
                pattern = f"{child.array}[{_LETTERS[arrays % len(_LETTERS)]}]" if child.array else local
                found.setdefault((pattern, child.circuit), []).append(child)
        clashes = [pattern for pattern, _ in found]
        for (pattern, circuit), members in found.items():
            path = f"{group.path}.{pattern}" if group.path else pattern
            ident = f"{path}@{circuit}" if clashes.count(pattern) > 1 else path
            letter = _LETTERS[arrays % len(_LETTERS)] if members[0].array else None
            sub = Group(ident, path, circuit, members, group, group.level + 1, letter)
            group.children.append(sub)
            self.group_of.update((member.name, sub) for member in members)
            self._fold(sub, arrays + (letter is not None))

    def groups(self, group: Group | None = None) -> Iterator[Group]:
        """Every group, parents before children."""
        group = group or self.root
        yield group
        for child in group.children:
            yield from self.groups(child)

    def population_group(self, name: str) -> Group:
        """The group a population is drawn in."""
        return self.group_of[self.populations[name].instance]

    def local(self, name: str, instance: str) -> str:
        """A qualified name (population, param) without the prefix of its instance."""
        return name[len(instance) + 1:] if instance else name

    def display(self, name: str, context: Group) -> str:
        """How a population or top-level input is named in an expression written in `context`: `Bd`, `seg[i].Md`."""
        population = self.populations.get(name)
        if population is None:
            return name
        group = self.group_of[population.instance]
        local = self.local(name, population.instance)
        if group is context or not group.path:
            return local
        if context.path and group.within(context):
            return f"{group.path[len(context.path) + 1:]}.{local}"
        return f"{group.path}.{local}"

    def param_display(self, name: str) -> str:
        """A param's folded name: `osc`, or `seg[i].w` for one declared in each instance of an array."""
        owner, _, local = name.rpartition(".")
        return f"{self.group_of[owner].path}.{local}" if owner and owner in self.instances else name


class Resolver:
    """Reads signal expressions through the ports of the instance they were written in."""

    def __init__(self, hierarchy: Hierarchy) -> None:
        self.hierarchy = hierarchy
        self.shared = hierarchy.ir.shared
        self._sizes: dict[int, int] = {}  # each shared entry's size written out

    def candidates(self, context: Instance) -> list[tuple[Wire, End]]:
        """The port signals an expression written in `context` can read: its inputs, its children's outputs."""
        found = [(w, End("port_in", context.name, w.port)) for w in context.bound]
        for child in context.children:
            found.extend((w, End("port_out", child.name, w.port)) for w in child.exported)
        return found

    def resolve(self, expr: Expr, context: Instance) -> Resolved:
        """Print `expr` as written in `context`, each leaf a port it reads through or a population or input."""
        candidates = self.candidates(context)
        group = self.hierarchy.group_of[context.name]
        ends: list[End] = []

        def leaf(node: Expr) -> text.Slot | str | None:
            for wanted in (self._equal, self._within):
                for wire, end in candidates:
                    if wanted(node, wire.expr):
                        ends.append(end)
                        owner = self.hierarchy.instances[end.name]
                        name = end.port if end.kind == "port_in" else f"{self._local_instance(owner, group)}.{end.port}"
                        return text.Slot(name)
            if isinstance(node, Ref):
                ends.append(self._end(node))
                select = tuple(node.select) if node.select is not None else None
                return text.Slot(self.hierarchy.display(node.source, group), select,
                                 tuple(self.hierarchy.shapes[node.source]))
            named = self.shared_name(node)
            if named is not None:
                ends.extend(self._end(ref) for ref in refs(node, self.shared))
            return named

        shape, slots = text.template(expr, leaf, self.shared)
        return Resolved(shape, tuple(slots), tuple(dict.fromkeys(ends)))

    def _end(self, ref: Ref) -> End:
        return End("input" if ref.source in self.hierarchy.inputs else "population", ref.source)

    def _size(self, node: Shared) -> int:
        """How many nodes a shared entry has written out (2^30 for thirty doubling lets: computed, not built)."""
        return fold(node, lambda _, kids: 1 + sum(kids), self.shared, self._sizes)

    def shared_name(self, node: Expr) -> str | None:
        """How a shared entry too big to print inline is printed: the let that named it, or its number in the
        table; None for any other node (printed as written)."""
        if not isinstance(node, Shared) or self._size(node) <= INLINE_SHARED:
            return None
        names = self.hierarchy.ir.shared_names
        return names[node.index] if node.index < len(names) and names[node.index] else f"shared#{node.index}"

    def _local_instance(self, instance: Instance, context: Group) -> str:
        """An instance's folded name as seen from `context`: `seg[i]`, `c[j]`."""
        path = self.hierarchy.group_of[instance.name].path
        return path[len(context.path) + 1:] if context.path else path

    @staticmethod
    def _equal(node: Expr, wire: Expr) -> bool:
        """The expression is exactly the port's signal."""
        return match(node, wire, lambda a, b: a == b)

    def _within(self, node: Expr, wire: Expr) -> bool:
        """Same expression, each population read here a part of what the port carries (`drive[1]` of `x`)."""
        return match(node, wire, self._part_of)

    def _part_of(self, node: Expr, wire: Expr) -> bool:
        """A leaf read here is (a part of) the leaf the port carries."""
        if isinstance(node, Ref) and isinstance(wire, Ref):
            if node.source != wire.source:
                return False
            sizes = [a.size for a in self.hierarchy.shapes[node.source]]
            mine, theirs = selected_units(sizes, node.select), selected_units(sizes, wire.select)
            return bool(np.isin(mine, theirs).all())
        return node == wire
