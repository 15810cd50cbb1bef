"""Connectome circuits at scale: the whole worm, and a synthetic circuit the size of flyvis's optic lobe.

(a) `.circuit` -> torch module for models/celegans_whole.circuit, the cect data already loaded (best of 5);
(b) a 1000-step rollout of the compiled whole worm at batch 1 against a hand-written dense torch version of the
    same network (checked equal first), and the jitted JAX rollout against torch;
(c) a synthetic flyvis-scale circuit (65 cell types, about 45,000 cells and 1.5 million edges, written to an
    NPZ file that the circuit imports with `connectome("fly.npz", ...)`): elaboration and compile time, peak
    Python memory, IR size, and one step at batch 4 against a gather/scatter (index_add_) baseline and a CSR
    sparse-matmul baseline, all in this process.
Both frameworks run on one CPU thread, as the other benchmarks.

Run: `python -m benchmarks.connectome` (prints a table; about a minute).
"""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
import warnings
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # after XLA_FLAGS, which jax reads on import
import numpy as np
import torch

import circuitdsl
from benchmarks.timing import best_seconds
from circuitdsl.backends.interface import param_key

WORM = Path("models/celegans_whole.circuit")
STEPS = 1000
FLY = """
neuron FlyCell(tau: time = 50 ms, dt: time = 20 ms) {
  \"\"\"flyvis's unit: leaky voltage, rectified output.\"\"\"
  state v = 0
  dv/dt = (-v + in) / tau
  out = relu(v)
}

circuit Fly {
  net = connectome("fly.npz", sign = data, weight = count, share = class, strength = 0.01 / mean_count)
  population cells : FlyCell from net
}
"""


# ---- (a) and (b): the whole worm --------------------------------------------------------------------------
def combined_matrix(module: torch.nn.Module, ir: circuitdsl.CircuitIR) -> torch.Tensor:
    """The whole worm's chemical and gap-junction (Laplacian) matrices as one [post, pre] matrix, from the IR's
    synapses and the module's strengths."""
    n = ir.units
    params = {k: v.detach() for k, v in module.params.items()}
    matrices = {}
    for p in ir.projections:
        if p.source.source != "N":  # type: ignore[union-attr]
            continue
        strength = params[param_key(p.weight.param)].reshape(-1).clamp(min=0)
        w = torch.from_numpy((p.weight.sign.data * p.weight.scale.data).astype(np.float32)) * strength
        m = torch.zeros(n, n)
        m.index_put_((torch.tensor(p.connectivity.post.data), torch.tensor(p.connectivity.pre.data)), w,
                     accumulate=True)
        matrices[p.kind] = m
    gap = matrices["electrical"] + matrices["electrical"].T
    return matrices["chemical"] + gap - torch.diag(gap.sum(1))


WORM_OUTPUTS = {"reverse": ("AVAL", "AVAR"), "forward": ("AVBL", "AVBR")}
"""The whole worm's outputs (models/celegans_whole.circuit): each the sum of two neurons' outputs."""


def worm_readout(ir: circuitdsl.CircuitIR) -> np.ndarray:
    """The outputs as one [neurons, outputs] matrix of 0s and 1s, in WORM_OUTPUTS' order: one product a step."""
    labels = ir.population("N").shape[0].labels
    readout = np.zeros((ir.units, len(WORM_OUTPUTS)), np.float32)
    for j, pair in enumerate(WORM_OUTPUTS.values()):
        readout[[labels.index(a) for a in pair], j] = 1
    return readout


def dense_worm(module: torch.nn.Module, ir: circuitdsl.CircuitIR, csr: bool = False,
               device: torch.device | str = "cpu") -> Callable[[torch.Tensor], dict[str, torch.Tensor]]:
    """The whole worm written by hand: the chemical and gap-junction (Laplacian) matrices as one matrix, dense or
    CSR (`csr`), the rate unit's Euler step and both outputs (WORM_OUTPUTS, [batch, time] each), on `device`
    (built from a module on the CPU)."""
    n = ir.units
    params = {k: v.detach() for k, v in module.params.items()}
    combined = combined_matrix(module, ir)
    if csr:
        with warnings.catch_warnings():  # torch: "sparse CSR support is in beta"
            warnings.simplefilter("ignore")
            combined = combined.to_sparse_csr()
    else:
        combined = combined.T.contiguous()
    drive = next(p for p in ir.projections if p.source.source == "sensory_drive")  # type: ignore[union-attr]
    into = torch.zeros(n)  # one input unit fanning out to six neurons, a weight each
    into[torch.tensor(drive.target_select[0].indices.data)] = params[param_key(drive.weight.param)].reshape(-1)
    rate = 10.0 / 50.0  # dt / tau of celegans.Rate
    readout = torch.from_numpy(worm_readout(ir)).to(device)
    combined, into = combined.to(device), into.to(device)

    def rollout(x: torch.Tensor) -> dict[str, torch.Tensor]:
        v = torch.zeros(x.shape[0], n, device=x.device)
        out = torch.zeros(x.shape[0], n, device=x.device)
        outs = []
        for t in range(x.shape[1]):
            total = ((combined @ out.T).T if csr else out @ combined) + x[:, t, None] * into
            v = v + rate * (-v + total)
            out = torch.tanh(v)
            outs.append(out @ readout)
        stacked = torch.stack(outs, 1)
        return {name: stacked[..., j] for j, name in enumerate(WORM_OUTPUTS)}

    return rollout


def worm_rows() -> list[tuple[str, str]]:
    circuitdsl.load(WORM)  # the cect load, excluded from (a)
    to_module = best_seconds(lambda: circuitdsl.compile(WORM), repeat=5)
    ir = circuitdsl.load(WORM)
    module = circuitdsl.compile(ir)
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (1, STEPS)).astype(np.float32))
    reference = dense_worm(module, ir)
    with torch.no_grad():
        compiled, by_hand = module.rollout({"sensory_drive": x})[0], reference(x)
        for name in WORM_OUTPUTS:
            np.testing.assert_allclose(compiled[name].numpy(), by_hand[name].numpy(), rtol=1e-4, atol=1e-5)
        torch_time = best_seconds(lambda: module.rollout({"sensory_drive": x}), repeat=3)
        dense_time = best_seconds(lambda: reference(x), repeat=3)
    circuit = circuitdsl.compile(ir, backend="jax")
    params = circuit.init()
    rollout = jax.jit(lambda p, inputs: circuit.rollout(p, inputs)[0])
    inputs = {"sensory_drive": jax.numpy.asarray(x.numpy())}
    start = time.perf_counter()
    jax.block_until_ready(rollout(params, inputs))
    jax_compile = time.perf_counter() - start
    jax_time = best_seconds(lambda: jax.block_until_ready(rollout(params, inputs)), repeat=3)
    return [
        ("(a) whole worm .circuit -> torch module (cect loaded)", f"{to_module * 1e3:.1f} ms"),
        (f"(b) whole worm, {STEPS} steps, compiled torch", f"{torch_time * 1e3:.0f} ms"),
        (f"(b) whole worm, {STEPS} steps, hand-written dense torch",
         f"{dense_time * 1e3:.0f} ms (compiled / dense = {torch_time / dense_time:.2f})"),
        (f"(b) whole worm, {STEPS} steps, jitted JAX",
         f"{jax_time * 1e3:.0f} ms (JAX / torch = {jax_time / torch_time:.2f}; jit {jax_compile:.1f} s)"),
    ]


# ---- (c) a flyvis-scale synthetic circuit ---------------------------------------------------------------------
def fly_data(folder: Path, seed: int = 0) -> tuple[int, int]:
    """65 cell types of 700 cells, 605 type pairs with a fixed sign each, 2500 random edges per pair (duplicates
    merged into counts): about 45,500 cells and 1.5 million edges, written as fly.npz."""
    rng = np.random.default_rng(seed)
    types, per_type, pairs, per_pair = 65, 700, 605, 2500
    cells = types * per_type
    chosen = rng.choice(types * types, pairs, replace=False)
    pre_type, post_type = np.divmod(chosen, types)
    pair_sign = np.where(rng.random(pairs) < 377 / 605, 1, -1)
    pre = (np.repeat(pre_type, per_pair) * per_type + rng.integers(0, per_type, pairs * per_pair)).astype(np.int64)
    post = (np.repeat(post_type, per_pair) * per_type + rng.integers(0, per_type, pairs * per_pair)).astype(np.int64)
    keys, count = np.unique(pre * cells + post, return_counts=True)
    pre, post = np.divmod(keys, cells)
    order = np.argsort(chosen)
    sign = pair_sign[order][np.searchsorted(chosen[order], (pre // per_type) * types + post // per_type)]
    np.savez(folder / "fly.npz", pre=pre, post=post, count=count.astype(np.float64), sign=sign,
             classes=np.repeat([f"T{i}" for i in range(types)], per_type))
    (folder / "fly.circuit").write_text(FLY)
    return cells, len(pre)


def fly_rows() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as folder:
        cells, edges = fly_data(Path(folder))
        path = Path(folder) / "fly.circuit"
        tracemalloc.start()
        start = time.perf_counter()
        ir = circuitdsl.load(path)
        elaborate = time.perf_counter() - start
        start = time.perf_counter()
        module = circuitdsl.compile(ir)
        compile_time = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        json_size = len(ir.to_json(indent=None))
    projection = ir.projections[0]
    n, batch = ir.units, 4
    state = module.initial_state(batch)
    state["cells:out"] = torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (batch, n)).astype(np.float32))
    pre = torch.tensor(projection.connectivity.pre.data)
    post = torch.tensor(projection.connectivity.post.data)
    with torch.no_grad():
        strength = module.params[param_key(projection.weight.param)].reshape(-1)
        w = (torch.from_numpy((projection.weight.sign.data * projection.weight.scale.data).astype(np.float32))
             * strength[torch.tensor(projection.weight.index.data)])
        rate = 20.0 / 50.0

        def gather_scatter() -> torch.Tensor:
            out = state["cells:out"]
            total = torch.zeros(batch, n).index_add_(1, post, out[:, pre] * w)
            v = state["cells.v"] + rate * (-state["cells.v"] + total)
            return torch.relu(v)

        order = torch.argsort(post * n + pre)
        with warnings.catch_warnings():  # torch: "sparse CSR support is in beta"
            warnings.simplefilter("ignore")
            csr = torch.sparse_coo_tensor(torch.stack([post[order], pre[order]]), w[order], (n, n),
                                          check_invariants=True).to_sparse_csr()

        def sparse_matmul() -> torch.Tensor:
            out = state["cells:out"]
            total = (csr @ out.T).T
            v = state["cells.v"] + rate * (-state["cells.v"] + total)
            return torch.relu(v)

        compiled = module({}, state)[1]["cells:out"]
        np.testing.assert_allclose(compiled.numpy(), gather_scatter().numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(sparse_matmul().numpy(), gather_scatter().numpy(), rtol=1e-4, atol=1e-5)
        step = best_seconds(lambda: module({}, state), repeat=5)
        baseline = best_seconds(gather_scatter, repeat=5)
        csr_time = best_seconds(sparse_matmul, repeat=5)
    return [
        ("(c) synthetic fly: cells, edges, strength groups",
         f"{cells}, {edges}, {ir.parameter('cells.chemical').size}"),
        ("(c) elaborate (NPZ -> IR) / compile (IR -> torch)", f"{elaborate:.2f} s / {compile_time:.2f} s"),
        ("(c) peak Python memory of both; IR as JSON", f"{peak / 2**20:.0f} MiB; {json_size / 2**20:.0f} MiB"),
        ("(c) one step, batch 4: compiled torch", f"{step * 1e3:.1f} ms"),
        ("(c) one step, batch 4: gather/scatter baseline", f"{baseline * 1e3:.1f} ms"),
        ("(c) one step, batch 4: CSR sparse-matmul baseline", f"{csr_time * 1e3:.1f} ms"),
    ]


def main() -> None:
    torch.set_num_threads(1)
    rows = worm_rows() + fly_rows()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure':<{width}}  result")
    for name, value in rows:
        print(f"{name:<{width}}  {value}")


if __name__ == "__main__":
    main()
