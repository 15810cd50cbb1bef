"""The C. elegans data of the `cect` package: datasets by name, cell lists, neurotransmitters, views.

cect is imported lazily, always loads its shipped data (the JSON cache, or for the transmitter table the
shipped spreadsheet), never writes, and its prints and warnings are kept off our stdout.  Everything is read
once per process, and what was read is kept in the per-user cache (circuitdsl/cache.py) under cect's version:
JSON for the lists and tables, NPZ for a dataset's matrices (no pickles).  A later process reads those files and
does not import cect at all (importing it and its spreadsheet readers costs more than the rest of a compile); a
cache file that cannot be read is read from cect again and rewritten.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import warnings
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Final, TypeVar

import numpy as np

from circuitdsl import cache
from circuitdsl.errors import Problem, did_you_mean

T = TypeVar("T")

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
    """A dataset by name, from cect's shipped cache (or ours)."""
    check_name(name)
    return _cached(f"{name}.npz", _read_dataset, lambda: _dataset(name), _save_dataset)


def _dataset(name: str) -> Dataset:
    with quiet():
        module = _reader(name)
        data = module.get_instance(from_cache=True)
    n = len(data.nodes)
    empty = np.zeros((n, n))
    matrices = {kind: np.asarray(data.connections.get(kind, empty), dtype=np.float64) for kind in (CHEMICAL,
                                                                                                   ELECTRICAL)}
    return Dataset(name, tuple(data.nodes), matrices[CHEMICAL], matrices[ELECTRICAL],
                   " ".join(str(getattr(module, "WEIGHTS", "synapse counts")).split()))


def _save_dataset(path: Path, data: Dataset) -> None:
    np.savez_compressed(path, name=np.array(data.name), nodes=np.array(data.nodes, dtype=str), chemical=data.chemical,
             electrical=data.electrical, weights=np.array(data.weights))


def _read_dataset(path: Path) -> Dataset:
    with path.open("rb") as handle, np.load(handle, allow_pickle=False) as stored:  # closed also when unreadable
        nodes = tuple(str(n) for n in stored["nodes"])
        chemical, electrical = stored["chemical"], stored["electrical"]
        if chemical.shape != (len(nodes), len(nodes)) or electrical.shape != chemical.shape:
            raise ValueError("the matrices do not match the cells")
        return Dataset(str(stored["name"]), nodes, chemical, electrical, str(stored["weights"]))


def _cached(name: str, read: Callable[[Path], T], compute: Callable[[], T], save: Callable[[Path, T], None]) -> T:
    """`read` from our cache file for cect's version and `name`, or `compute` from cect and store it there."""
    path = cache.file(f"cect-{version()}-{name}")
    if path is not None and path.is_file():
        try:
            return read(path)
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
            pass  # damaged or from another layout: read cect again, write it anew
    value = compute()
    if path is not None:
        cache.write(path, lambda temporary: save(temporary, value))
    return value


def _strings(value: Any) -> tuple[str, ...]:
    """A JSON list of strings as a tuple; anything else is a damaged cache file."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError("not a list of names")
    return tuple(value)


def _string_lists(value: Any) -> dict[str, tuple[str, ...]]:
    """A JSON table of name lists (never empty: cect's tables are not); anything else is a damaged cache file."""
    if not isinstance(value, dict) or not value:
        raise TypeError("not a table of names")
    return {str(k): _strings(v) for k, v in value.items()}


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _save_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


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


@dataclass(frozen=True)
class Cells:
    """cect's cell lists (its `cect.Cells` module), as far as circuitdsl reads them."""

    herm_neurons: tuple[str, ...]  # PREFERRED_HERM_NEURON_NAMES, alphabetical
    male_neurons: tuple[str, ...]  # MALE_SPECIFIC_NEURONS
    muscles: tuple[str, ...]  # PREFERRED_MUSCLE_NAMES
    male_muscles: tuple[str, ...]  # MALE_SPECIFIC_MUSCLES
    pharyngeal: tuple[str, ...]  # PHARYNGEAL_NEURONS
    sim_class: dict[str, str]  # each hermaphrodite neuron's SIM class: Sensory, Interneuron, Motorneuron, Other


@functools.cache
def cells() -> Cells:
    """cect's cell lists and classifications."""
    def read(path: Path) -> Cells:
        stored = _read_json(path)
        lists = {key: _strings(stored[key]) for key in ("herm_neurons", "male_neurons", "muscles", "male_muscles",
                                                        "pharyngeal")}
        classes = stored["sim_class"]
        if not isinstance(classes, dict) or not all(isinstance(v, str) for v in classes.values()):
            raise TypeError("not a table of classes")
        return Cells(**lists, sim_class=classes)

    return _cached("cells.json", read, _cells, lambda path, value: _save_json(path, asdict(value)))


def _cells() -> Cells:
    with quiet():
        import cect.Cells as lists

    herm = tuple(lists.PREFERRED_HERM_NEURON_NAMES)
    return Cells(herm, tuple(lists.MALE_SPECIFIC_NEURONS), tuple(lists.PREFERRED_MUSCLE_NAMES),
                 tuple(lists.MALE_SPECIFIC_MUSCLES), tuple(lists.PHARYNGEAL_NEURONS),
                 {name: lists.get_SIM_class(name) for name in herm})


@functools.cache
def views() -> dict[str, tuple[str, ...]]:
    """cect's named sub-circuits (Escape, Loco1, Pharynx, ...): view id -> the cells of its node sets."""
    return _cached("views.json", lambda path: _string_lists(_read_json(path)), _views, _save_json)


def _views() -> dict[str, tuple[str, ...]]:
    with quiet():
        from cect.ConnectomeView import ALL_VIEWS
    return {view.id: tuple(dict.fromkeys(c for node_set in view.node_sets for c in node_set.cells))
            for view in ALL_VIEWS}


@functools.cache
def transmitters() -> dict[str, tuple[str, ...]]:
    """Each hermaphrodite neuron's neurotransmitters (Wang et al. 2024, read from cect's shipped table)."""
    return _cached("transmitters.json", lambda path: _string_lists(_read_json(path)), _transmitters, _save_json)


def _transmitters() -> dict[str, tuple[str, ...]]:
    with quiet():
        from cect.readers import Wang2024HermReader

        table = Wang2024HermReader.get_instance(from_cache=False).all_neurotransmitters
    return {name: tuple(t for t in found if t) for name, found in table.items()}
