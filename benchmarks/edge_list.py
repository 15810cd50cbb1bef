"""A CSV edge list at fly scale: `.circuit` -> IR against pandas reading the same file into a CSR matrix.

A synthetic list of about 1.5 million edges among 45,500 named cells (with a count column) is written once;
then, interleaved in this process, (a) pandas reads it, numbers the names and builds a scipy CSR matrix, and
(b) circuitdsl elaborates `population N : Graded from connectome("edges.csv", ...)` to its IR (selection,
signs, weights and the IR arrays included).  Prints min and median of each and their ratio, in CPU seconds of the
process (steadier on a loaded machine) and in wall seconds.

Run: `python -m benchmarks.edge_list` (about half a minute).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

import circuitdsl

CELLS, EDGES, ROUNDS = 45_500, 1_500_000, 5
CIRCUIT = """circuit Fly {
  net = connectome("edges.csv", sign = excitatory, weight = count * 0.01)
  population N : Graded from net
}
"""


def write(folder: Path) -> int:
    """The edge list (self-loops left out) and the circuit reading it; returns the number of edges."""
    rng = np.random.default_rng(0)
    names = np.array([f"cell{i}" for i in range(CELLS)])
    pre, post = rng.integers(0, CELLS, EDGES), rng.integers(0, CELLS, EDGES)
    keep = pre != post
    table = pd.DataFrame({"pre": names[pre[keep]], "post": names[post[keep]],
                          "count": rng.integers(1, 9, int(keep.sum()))})
    table.to_csv(folder / "edges.csv", index=False)
    (folder / "main.circuit").write_text(CIRCUIT)
    return len(table)


def by_hand(folder: Path) -> sp.csr_matrix:
    """What a user would write: read, number the names in order of appearance, build [post, pre] CSR."""
    table = pd.read_csv(folder / "edges.csv")
    codes, names = pd.factorize(np.column_stack([table["pre"].to_numpy(), table["post"].to_numpy()]).ravel())
    return sp.csr_matrix((table["count"].to_numpy(np.float64), (codes[1::2], codes[0::2])),
                         shape=(len(names), len(names)))


def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        edges = write(folder)
        dsl = lambda: circuitdsl.load(folder / "main.circuit")
        ir, matrix = dsl(), by_hand(folder)  # warm: imports, the grammar, the standard library
        assert ir.synapses == edges and ir.units == matrix.shape[0]
        times: dict[str, dict[str, list[float]]] = {label: {"cpu": [], "wall": []}
                                                     for label in ("pandas + CSR", "circuitdsl -> IR")}
        for _ in range(ROUNDS):
            for label, fn in (("pandas + CSR", lambda: by_hand(folder)), ("circuitdsl -> IR", dsl)):
                cpu, wall = time.process_time(), time.perf_counter()
                fn()
                times[label]["wall"].append(time.perf_counter() - wall)
                times[label]["cpu"].append(time.process_time() - cpu)
    print(f"{edges} edges among {CELLS} cells, {ROUNDS} interleaved rounds (CPU seconds of this process, and wall; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())})")
    for clock in ("cpu", "wall"):
        for label, measured in times.items():
            values = measured[clock]
            print(f"  {clock:4} {label:18} min {min(values):.2f} s   median {statistics.median(values):.2f} s")
        hand, ours = times["pandas + CSR"][clock], times["circuitdsl -> IR"][clock]
        print(f"  {clock:4} ratio: {min(ours) / min(hand):.2f}x (min), "
              f"{statistics.median(ours) / statistics.median(hand):.2f}x (median)")


if __name__ == "__main__":
    main()
