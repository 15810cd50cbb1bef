"""Where a fused group should run dense and where as CSR: the thresholds of circuitdsl/backends/fusion.py.

For square groups of n units at several densities, one product with the [n, n] matrix (dense: `x @ m`; CSR:
torch.sparse_csr_tensor) at batch 1 and 4, on one CPU thread, each the best of a few rounds.  A group runs dense
when it has at most SMALL_CELLS cells, or at most DENSE_CELLS cells and a density above DENSE_ABOVE.

Run: `python -m benchmarks.lowerings` (under a minute).
"""

from __future__ import annotations

import warnings

import torch

from benchmarks.timing import per_call
from circuitdsl.backends.fusion import DENSE_CELLS, SMALL_CELLS
from circuitdsl.backends.plan import DENSE_ABOVE


def main() -> None:
    torch.set_num_threads(1)
    generator = torch.Generator().manual_seed(0)
    print(f"thresholds: SMALL_CELLS {SMALL_CELLS}, DENSE_CELLS {DENSE_CELLS}, DENSE_ABOVE {DENSE_ABOVE}")
    print(f"{'units':>6}{'density':>9}{'batch':>6}{'dense us':>11}{'csr us':>10}{'faster':>8}")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "sparse CSR support is in beta"
        for n in (64, 128, 512, 2000):
            for density in (0.01, 0.05, 0.1, 0.3):
                mask = torch.rand(n, n, generator=generator) < density
                dense = torch.randn(n, n, generator=generator) * mask
                csr = dense.to_sparse_csr()
                for batch in (1, 4):
                    x = torch.randn(batch, n, generator=generator)
                    d = per_call(lambda x=x, m=dense: x @ m.T, 20)
                    c = per_call(lambda x=x, m=csr: (m @ x.T).T, 20)
                    print(f"{n:>6}{density:>9.2f}{batch:>6}{d * 1e6:>11.1f}{c * 1e6:>10.1f}"
                          f"{'dense' if d < c else 'csr':>8}", flush=True)


if __name__ == "__main__":
    main()
