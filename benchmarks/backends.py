"""JAX against torch: a jitted JAX rollout's time over the torch rollout's, and JAX's one-off compile time.

For NCAP (models/ncap_swimmer.circuit) and the largest model in models/ (most units, then synapses, then
populations), 1000 steps at batch 1 and 64 on the same random inputs, forward only; compile time is excluded
from the rollout times and printed on its own.  Both frameworks run on one CPU thread, as benchmarks/ncap_step.py.

Run: `python -m benchmarks.backends` (prints a table; about a minute).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # after XLA_FLAGS, which jax reads on import
import numpy as np
import torch

import circuitdsl
from benchmarks.timing import best_seconds

NCAP = Path("models/ncap_swimmer.circuit")
STEPS = 1000


def largest_model() -> Path:
    """The model file whose (last) circuit has the most units, then synapses, then populations."""
    def size(path: Path) -> tuple[int, int, int]:
        ir = circuitdsl.load(path)
        return ir.units, ir.synapses, len(ir.populations)

    return max(sorted(Path("models").glob("*.circuit")), key=size)


def measure(path: Path, batch: int, repeat: int) -> tuple[float, float, float]:
    """(torch rollout seconds, jitted JAX rollout seconds, JAX compile seconds) for one model and batch size."""
    ir = circuitdsl.load(path)
    module, circuit = circuitdsl.compile(ir), circuitdsl.compile(ir, backend="jax")
    rng = np.random.default_rng(0)
    inputs = {p.name: rng.uniform(-1, 1, (batch, STEPS, *[a.size for a in p.shape])).astype(np.float32)
              for p in ir.inputs}
    tensors = {k: torch.from_numpy(v) for k, v in inputs.items()}
    params = circuit.init()
    start = time.perf_counter()
    rollout = jax.jit(lambda p, x: circuit.rollout(p, x, steps=STEPS)[0]).lower(params, inputs).compile()
    compile_seconds = time.perf_counter() - start
    with torch.no_grad():
        expected = module.rollout(tensors, steps=STEPS)[0]
        got = rollout(params, inputs)
        for name, value in expected.items():  # the same numbers, or the timing compares different work
            np.testing.assert_allclose(np.asarray(got[name]), value.numpy(), atol=1e-5)
        torch_seconds = best_seconds(lambda: module.rollout(tensors, steps=STEPS), repeat)
    jax_seconds = best_seconds(lambda: jax.block_until_ready(rollout(params, inputs)), repeat)
    return torch_seconds, jax_seconds, compile_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timed rollouts per measurement (the best counts)")
    options = parser.parse_args()
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, jax {jax.__version__}, CPU, 1 thread; {STEPS}-step rollouts, forward only")
    print(f"{'model':<28}{'batch':>6}{'torch ms':>10}{'jax ms':>9}{'jax/torch':>11}{'jax compile s':>15}")
    for path in dict.fromkeys([NCAP, largest_model()]):
        for batch in (1, 64):
            torch_seconds, jax_seconds, compile_seconds = measure(path, batch, options.repeat)
            print(f"{path.name:<28}{batch:>6}{torch_seconds * 1e3:>10.1f}{jax_seconds * 1e3:>9.2f}"
                  f"{jax_seconds / torch_seconds:>11.4f}{compile_seconds:>15.2f}")


if __name__ == "__main__":
    main()
