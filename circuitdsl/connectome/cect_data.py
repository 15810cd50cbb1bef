"""The C. elegans data of the `cect` package: datasets by name, cell lists, neurotransmitters.

cect is imported lazily, always loads its shipped data (the JSON cache, or for the transmitter table the
shipped spreadsheet), never writes, and its prints and warnings are kept off our stdout.  Everything is read
once per process.
"""

from __future__ import annotations

import contextlib
import functools
import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Final

import numpy as np

from circuitdsl.errors import Problem, did_you_mean

# the datasets by cect's own names (`NAME`); `_reader` imports each one's module
DATASETS: Final = ("White_whole", "Varshney", "Cook2019Herm", "Cook2019Male", "WhiteN2U", "WhiteJSH",
                   *(f"Witvliet{i}" for i in range(1, 9)), "Cook2020", "Yim2024", "OpenWormUnified")

CHEMICAL: Final = "Generic_CS"
ELECTRICAL: Final = "Generic_GJ"


@dataclass(frozen=True)
class Dataset:
    """One cect dataset: its cells in cect's order and dense [pre, post] count matrices per synapse kind."""

    name: str
    nodes: tuple[str, ...]
    chemical: np.ndarray
    electrical: np.ndarray
    weights: str  # what a count means (cect's WEIGHTS text)

    @functools.cached_property
    def position(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.nodes)}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """cect prints to stdout and its spreadsheet readers warn: keep both away from the user's output."""
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def version() -> str:
    return metadata.version("cect")


def check_name(name: str) -> None:
    """An unknown dataset name is a Problem with the closest known name."""
    if name not in DATASETS:
        raise Problem("E901", f"unknown connectome dataset '{name}'",
                      tuple(n for n in (did_you_mean(name, DATASETS), f"datasets: {', '.join(DATASETS)}") if n))


@functools.cache
def load(name: str) -> Dataset:
    """A dataset by name, from cect's shipped cache."""
    check_name(name)
    with quiet():
        module = _reader(name)
        data = module.get_instance(from_cache=True)
    n = len(data.nodes)
    empty = np.zeros((n, n))
    matrices = {kind: np.asarray(data.connections.get(kind, empty), dtype=np.float64) for kind in (CHEMICAL,
                                                                                                   ELECTRICAL)}
    return Dataset(name, tuple(data.nodes), matrices[CHEMICAL], matrices[ELECTRICAL],
                   " ".join(str(getattr(module, "WEIGHTS", "synapse counts")).split()))


def _reader(name: str) -> Any:
    """A dataset's cect reader module, each imported by a name written here (some build an instance on import)."""
    if name.startswith("Witvliet"):
        return _witvliet(int(name.removeprefix("Witvliet")))
    if name == "White_whole":
        from cect.readers import White_whole as module
    elif name == "Varshney":
        from cect.readers import VarshneyDataReader as module
    elif name == "Cook2019Herm":
        from cect.readers import Cook2019HermReader as module
    elif name == "Cook2019Male":
        from cect.readers import Cook2019MaleReader as module
    elif name == "WhiteN2U":
        from cect.readers import DurbinN2UDataReader as module
    elif name == "WhiteJSH":
        from cect.readers import DurbinJSHDataReader as module
    elif name == "Cook2020":
        from cect.readers import Cook2020DataReader as module
    elif name == "Yim2024":
        from cect.readers import Yim2024DataReader as module
    else:
        from cect.readers import OpenWormUnifiedReader as module
    return module


def _witvliet(stage: int) -> Any:
    """Witvliet et al. 2021's eight developmental stages, one reader module each."""
    if stage <= 4:
        from cect.readers import WitvlietDataReader1, WitvlietDataReader2, WitvlietDataReader3, WitvlietDataReader4

        return (WitvlietDataReader1, WitvlietDataReader2, WitvlietDataReader3, WitvlietDataReader4)[stage - 1]
    from cect.readers import WitvlietDataReader5, WitvlietDataReader6, WitvlietDataReader7, WitvlietDataReader8

    return (WitvlietDataReader5, WitvlietDataReader6, WitvlietDataReader7, WitvlietDataReader8)[stage - 5]


@functools.cache
def cells() -> Any:
    """cect's cell lists and classifications (the `cect.Cells` module)."""
    with quiet():
        import cect.Cells

    return cect.Cells


@functools.cache
def views() -> dict[str, tuple[str, ...]]:
    """cect's named sub-circuits (Escape, Loco1, Pharynx, ...): view id -> the cells of its node sets."""
    with quiet():
        from cect.ConnectomeView import ALL_VIEWS
    return {view.id: tuple(dict.fromkeys(c for node_set in view.node_sets for c in node_set.cells))
            for view in ALL_VIEWS}


@functools.cache
def transmitters() -> dict[str, tuple[str, ...]]:
    """Each hermaphrodite neuron's neurotransmitters (Wang et al. 2024, read from cect's shipped table)."""
    with quiet():
        from cect.readers import Wang2024HermReader

        table = Wang2024HermReader.get_instance(from_cache=False).all_neurotransmitters
    return {name: tuple(t for t in found if t) for name, found in table.items()}
