"""C. elegans cell names: the canonical order, neuron classes, categories and views a selection may name.

`AVA` names the class {AVAL, AVAR}, `VB` the class {VB1, ..., VB11}; `sensory`, `inter`, `motor`
(cect's SIM classes), `pharyngeal`, `somatic` and `muscles` are categories; `Escape`, `Loco1`, ... are cect's
views (their neurons).  Muscles are never part of a selection unless named (by `muscles` or a muscle's name).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import re2

from circuitdsl.connectome import cect_data
from circuitdsl.errors import Problem, did_you_mean

_PATTERN_MEMORY: Final = 8 << 20  # bytes RE2 may use to compile one selection pattern
_NUMBERED = re.compile(r"^(AS|DA|DB|DD|VA|VB|VC|VD)\d+$")  # ventral-cord motor neurons, numbered along the body
_CLASS_EXCEPTIONS: Final = {"SABD": "SAB", "RID": "RID"}  # SABD/SABVL/SABVR form SAB; RID is not RIV's partner
_SIM: Final = {"sensory": "Sensory", "inter": "Interneuron", "motor": "Motorneuron"}
CATEGORIES: Final = ("all", "sensory", "inter", "motor", "pharyngeal", "somatic", "muscles")


@dataclass(frozen=True)
class Worm:
    """Every cell name a selection may use, in canonical order: hermaphrodite neurons (alphabetical, as
    cect lists them), then male-specific neurons, then muscles."""

    neurons: tuple[str, ...]
    muscles: tuple[str, ...]
    classes: dict[str, tuple[str, ...]]  # class -> members, canonical order

    @functools.cached_property
    def order(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.neurons + self.muscles)}

    @functools.cached_property
    def class_of(self) -> dict[str, str]:
        found = {member: name for name, members in self.classes.items() for member in members}
        return {**{m: m for m in self.muscles}, **found}


def neuron_class(name: str, known: frozenset[str]) -> str:
    """A neuron's class: AVAL -> AVA, VB3 -> VB, RMDDL -> RMD, IL1VR -> IL1, RMED -> RME; singletons are their own."""
    if name in _CLASS_EXCEPTIONS:
        return _CLASS_EXCEPTIONS[name]
    numbered = _NUMBERED.match(name)
    if numbered:
        return numbered.group(1)
    base, side = name, ""
    if name[-1] in "LR" and name[:-1] + ("R" if name[-1] == "L" else "L") in known:
        base, side = name[:-1], name[-1]
    if len(base) > 2 and base[-1] in "DV":
        other = base[:-1] + ("V" if base[-1] == "D" else "D")
        if (other + side in known) if side else (other in known):
            return base[:-1]
    return base


@functools.cache
def worm() -> Worm:
    """The worm's cells, from cect's lists."""
    cells = cect_data.cells()
    herm = list(cells.herm_neurons)
    male = sorted(set(cells.male_neurons) - set(herm))
    muscles = list(dict.fromkeys([*cells.muscles, *cells.male_muscles]))
    known = frozenset(herm + male)
    classes: dict[str, list[str]] = {}
    for name in herm + male:
        classes.setdefault(neuron_class(name, known), []).append(name)
    return Worm(tuple(herm + male), tuple(m for m in muscles if m not in known),
                {k: tuple(v) for k, v in classes.items()})


def category(name: str) -> tuple[str, ...]:
    """The neurons (or muscles) of a category other than `all`, in canonical order."""
    w, cells = worm(), cect_data.cells()
    if name in _SIM:
        return tuple(n for n in cells.herm_neurons if cells.sim_class[n] == _SIM[name])
    pharyngeal = set(cells.pharyngeal)
    if name == "pharyngeal":
        return tuple(n for n in w.neurons if n in pharyngeal)
    if name == "somatic":
        return tuple(n for n in cells.herm_neurons if n not in pharyngeal)
    return w.muscles


def layer(name: str) -> str:
    """A cell's layer for drawing: sensory, inter or motor (cect's classification), muscle, or other."""
    w, cells = worm(), cect_data.cells()
    if name in w.muscles:
        return "muscle"
    if name not in cells.sim_class:
        return "other"
    return {v: k for k, v in _SIM.items()}.get(cells.sim_class[name], "other")


def resolve(symbol: str) -> tuple[str, ...]:
    """What a bare name in a selection means: a cell, a class, a category or a cect view."""
    w = worm()
    if symbol in w.order:
        return (symbol,)
    if symbol in w.classes:
        return w.classes[symbol]
    if symbol in CATEGORIES and symbol != "all":
        return category(symbol)
    views = cect_data.views()
    if symbol in views:
        neurons = set(w.neurons)
        return tuple(c for c in views[symbol] if c in neurons)
    pool = [*w.order, *w.classes, *CATEGORIES, *views]
    raise Problem("E902", f"'{symbol}' is no C. elegans neuron, class, category or view",
                  tuple(n for n in (did_you_mean(symbol, pool),
                                    "e.g. AVAL (a neuron), AVA (its class), motor (a category), Escape (a view)")
                        if n))


def matching(pattern: str, names: Iterable[str] | None = None) -> tuple[str, ...]:
    """The names (by default the worm's neurons) an anchored regular expression (`^VB\\d+$`) matches in full.

    Patterns run on RE2 (linear time in the name, no backtracking: `^(a+)+$` cannot hang) with its program
    memory capped; RE2 has no backreferences or lookaround."""
    options = re2.Options()
    options.max_mem, options.log_errors = _PATTERN_MEMORY, False
    try:
        compiled = re2.compile(pattern, options)
    except re2.error as error:
        reason = error.args[0].decode() if error.args and isinstance(error.args[0], bytes) else str(error)
        if "too large" in reason or "too big" in reason:
            raise Problem("E711", f"the pattern '{pattern}' compiles to more than {_PATTERN_MEMORY >> 20} MiB",
                          ("write a simpler pattern, or select by names and classes",)) from None
        raise Problem("E801", f"'{pattern}' is not a regular expression: {reason}",
                      ("patterns use RE2 syntax: no backreferences (\\1) or lookaround (?=...)",)) from None
    found = tuple(n for n in (worm().neurons if names is None else names) if compiled.fullmatch(n))
    if not found:
        raise Problem("E902", f"the pattern '{pattern}' matches no {'C. elegans neuron' if names is None else 'cell'}")
    return found
