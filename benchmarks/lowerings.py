"""Where a fused group should run dense, as CSR or (JAX) in ELLPACK form: the thresholds of
circuitdsl/backends/fusion.py and circuitdsl/backends/jax_lowering.py.

torch: for square groups of n units at several densities, one product with the [n, n] matrix (dense: `x @ m`;
CSR: torch.sparse_csr_tensor) at batch 1 and 4, on one CPU thread, each the best of a few rounds.  A group runs
dense when it has at most SMALL_CELLS cells, or at most DENSE_CELLS cells and a density above DENSE_ABOVE.

torch on a GPU (`--device cuda`): larger groups at batch 1, 64 and 256, each a chain of products as a rollout
queues them (x <- tanh(op(x)), 20 a call, then one wait for the device), microseconds a product: where the
module runs dense on an accelerator (ACCELERATOR_DENSE_CELLS).

JAX (`--jax`): the same groups as the JAX backend runs them (a matmul, its CSR segment sum, the ELLPACK layers
of circuitdsl/backends/ell.py), each inside a jitted 100-step scan of x <- tanh(op(x)), microseconds a step at
batch 1 and 64; K is the group's number of layers (the most synapses any unit receives).

Run: `python -m benchmarks.lowerings [--jax | --device cuda]` (under a minute; a few with --jax).
"""

from __future__ import annotations

import argparse
import os
import warnings
from collections.abc import Callable

import numpy as np
import torch

from benchmarks.timing import per_call
from circuitdsl.backends.fusion import ACCELERATOR_DENSE_CELLS, DENSE_CELLS, SMALL_CELLS
from circuitdsl.backends.plan import DENSE_ABOVE


def torch_table() -> None:
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


def accelerator_table(device: str, chain: int = 20) -> None:
    generator = torch.Generator(device).manual_seed(0)
    print(f"{torch.cuda.get_device_name(device)}; ACCELERATOR_DENSE_CELLS {ACCELERATOR_DENSE_CELLS}; "
          f"microseconds a product in a chain of {chain}")
    print(f"{'units':>6}{'density':>9}{'batch':>6}{'dense us':>11}{'csr us':>10}{'faster':>8}")

    def chained(product: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], object]:
        def run() -> object:
            y = x
            for _ in range(chain):
                y = torch.tanh(product(y))
            torch.cuda.synchronize(device)
            return y
        return run

    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "sparse CSR support is in beta"
        for n in (302, 1000, 2000, 4000, 8000):
            for density in (0.01, 0.05, 0.3):
                mask = torch.rand(n, n, generator=generator, device=device) < density
                dense = torch.randn(n, n, generator=generator, device=device) * mask / (density * n) ** 0.5
                csr = dense.to_sparse_csr()
                for batch in (1, 64, 256):
                    x = torch.randn(batch, n, generator=generator, device=device)
                    d = per_call(chained(lambda x, m=dense: x @ m.T, x), 5) / chain
                    c = per_call(chained(lambda x, m=csr: (m @ x.T).T, x), 5) / chain
                    print(f"{n:>6}{density:>9.2f}{batch:>6}{d * 1e6:>11.1f}{c * 1e6:>10.1f}"
                          f"{'dense' if d < c else 'csr':>8}", flush=True)


def jax_table(steps: int = 100) -> None:
    os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")
    import jax
    import jax.numpy as jnp

    from circuitdsl.backends import ell
    from circuitdsl.backends.jax_backend import JaxOps
    from circuitdsl.backends.jax_lowering import DENSE_CELLS as JAX_DENSE_CELLS
    from circuitdsl.backends.jax_lowering import ELL_LAYERS

    ops, rng = JaxOps("float32"), np.random.default_rng(0)
    print(f"thresholds: ELL_LAYERS {ELL_LAYERS}, DENSE_CELLS {JAX_DENSE_CELLS}; microseconds a step")
    print(f"{'units':>6}{'density':>9}{'batch':>6}{'K':>5}{'dense':>10}{'csr':>10}{'ell':>10}")
    for n in (128, 302, 1000):
        for density in (0.01, 0.03, 0.1, 0.3):
            matrix = (rng.random((n, n)) < density) * rng.standard_normal((n, n)).astype(np.float32)
            rows, cols = np.nonzero(matrix)
            values = jnp.asarray(matrix[rows, cols])
            layout = ell.layout(rows, cols, n, n, ops)
            layers = ell.weights(layout, values, ops)
            csr = ops.csr(None, ops.asarray(rows), ops.asarray(cols), values, (n, n))
            transposed = jnp.asarray(matrix.T)
            products = {"dense": lambda x, m=transposed: x @ m,
                        "csr": lambda x, m=csr: ops.csr_matmul(m, x),
                        "ell": lambda x, lay=layout, w=layers: ell.product(lay, w, x, ops)}
            for batch in (1, 64):
                x = jnp.asarray(rng.standard_normal((batch, n)), jnp.float32)
                times = []
                for product in products.values():
                    run = jax.jit(lambda x, f=product: jax.lax.scan(lambda c, _: (jnp.tanh(f(c)), None), x, None,
                                                                    length=steps)[0])
                    times.append(per_call(lambda r=run, x=x: jax.block_until_ready(r(x)), 5) / steps * 1e6)
                print(f"{n:>6}{density:>9.2f}{batch:>6}{len(layout.columns):>5}"
                      + "".join(f"{t:>10.1f}" for t in times), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jax", action="store_true", help="the JAX backend's lowerings instead of torch's")
    parser.add_argument("--device", default="cpu", help="torch's device: cuda times its products on a GPU")
    options = parser.parse_args()
    if options.jax:
        jax_table()
    elif options.device != "cpu":
        accelerator_table(options.device)
    else:
        torch_table()


if __name__ == "__main__":
    main()
