"""From a fresh process to a compiled whole worm, against a hand-written script building the same matrices.

Both run as fresh `python -c` processes, in interleaved rounds (so that the load of a shared machine hits both
alike), and each is timed as CPU seconds of the child (user + system: what the process itself costs) and wall
seconds:

- circuitdsl: `import circuitdsl; circuitdsl.compile("models/celegans_whole.circuit")` (torch), with the
  per-user caches warm as any second run finds them (the parser tables, the cect data);
- by hand: import torch and cect, load Cook2019Herm from cect's cache, take the 302 hermaphrodite neurons,
  sign chemical synapses by presynaptic GABA (c302's rule; the GABAergic neurons written into the script, as a
  hand-written model would), weigh them count / total_in, make the gap junctions one reading per pair
  weighed count / the larger junction total, make per-synapse trainable strengths, and build the combined
  chemical + gap-junction (Laplacian) matrix, dense and CSR.

circuitdsl's byte code is compiled first, as an installed package has it.  Before timing, the hand script's
matrix is checked equal to the one benchmarks/connectome.py builds from the
compiled module's IR (so the two do the same work).  The closing lines print min and median of each and the
ratios, and the load average.

Run: python -m benchmarks.startup [rounds]   (the reference note: 7 rounds).
"""

from __future__ import annotations

import compileall
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.timing import fresh, load_average, report

WORM = "models/celegans_whole.circuit"
COMPILE = f"import circuitdsl; circuitdsl.compile({WORM!r})"
BY_HAND = '''
import sys, warnings
import numpy as np
import torch
from cect.Cells import PREFERRED_HERM_NEURON_NAMES
from cect.readers import Cook2019HermReader

GABA = set(sys.argv[1].split(","))
data = Cook2019HermReader.get_instance(from_cache=True)
names = list(PREFERRED_HERM_NEURON_NAMES)
at = [data.nodes.index(name) for name in names]
chemical = np.asarray(data.connections["Generic_CS"], dtype=np.float64)[np.ix_(at, at)]  # [pre, post] counts
gap = np.asarray(data.connections["Generic_GJ"], dtype=np.float64)[np.ix_(at, at)]
np.fill_diagonal(gap, 0.0)
gap = np.triu(np.maximum(gap, gap.T))  # one reading per pair (the larger), lo < hi
sign = np.where([name in GABA for name in names], -1.0, 1.0)
pre, post = np.nonzero(chemical)
chem_scale = sign[pre] * chemical[pre, post] / chemical.sum(0)[post]
lo, hi = np.nonzero(gap)
junctions = gap.sum(0) + gap.sum(1)
gap_scale = gap[lo, hi] / np.maximum(junctions[lo], junctions[hi])
n = len(names)
chem_strength = torch.nn.Parameter(torch.ones(len(pre)))
gap_strength = torch.nn.Parameter(torch.ones(len(lo)))
with torch.no_grad():
    combined = torch.zeros(n, n)
    combined.index_put_((torch.from_numpy(post), torch.from_numpy(pre)),
                        torch.from_numpy(chem_scale).float() * chem_strength.clamp(min=0), accumulate=True)
    g = torch.zeros(n, n)
    g.index_put_((torch.from_numpy(hi), torch.from_numpy(lo)),
                 torch.from_numpy(gap_scale).float() * gap_strength.clamp(min=0), accumulate=True)
    g = g + g.T
    combined = combined + g - torch.diag(g.sum(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        csr = combined.to_sparse_csr()
    dense = combined.T.contiguous()
if len(sys.argv) > 2:
    np.save(sys.argv[2], combined.numpy())
'''


def gabaergic() -> list[str]:
    """The GABAergic hermaphrodite neurons, as circuitdsl's c302 signs read them (from cect's transmitter table)."""
    from circuitdsl.connectome import cect_data

    return sorted(name for name, found in cect_data.transmitters().items() if "GABA" in found)


def check_equal(gaba: str, python: str, env: dict[str, str]) -> None:
    """The hand script's combined matrix against the compiled module's (built from its IR, by connectome.py)."""
    import cect.Cells

    import circuitdsl
    from benchmarks.connectome import combined_matrix

    ir = circuitdsl.load(WORM)
    assert list(ir.population("N").shape[0].labels or ()) == list(cect.Cells.PREFERRED_HERM_NEURON_NAMES)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "combined.npy"
        subprocess.run([python, "-c", BY_HAND, gaba, str(path)], env=env, check=True)
        theirs = np.load(path)
    ours = combined_matrix(circuitdsl.compile(ir), ir).numpy()
    np.testing.assert_allclose(theirs, ours, rtol=1e-5, atol=1e-7)


def main(repeat: int = 7) -> None:
    python = sys.executable
    env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    # byte code for circuitdsl as an installed package has it (torch and cect, installed, have theirs); without
    # it each process compiles circuitdsl's sources again (under PYTHONDONTWRITEBYTECODE, say)
    compileall.compile_dir(Path(__file__).parent.parent / "circuitdsl", quiet=1)
    gaba = ",".join(gabaergic())
    check_equal(gaba, python, env)  # also warms the caches
    print(f"load average before: {load_average()}")
    times = fresh({"by hand (torch + cect, matrices)": ([python, "-c", BY_HAND, gaba], env),
                   "circuitdsl compile (torch)": ([python, "-c", COMPILE], env)}, repeat)
    print(f"whole worm, fresh process to a compiled module, {repeat} interleaved rounds:")
    report(times, {"by hand": "by hand (torch + cect, matrices)"})
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:2]))
