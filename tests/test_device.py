"""Any device: on a GPU every model runs with its state, parameters and outputs there, equal to its CPU run in
float64; inputs and state from the CPU are moved; gradients, the forced lowerings and `module.compile()` work there.

CI has no GPU: these tests are skipped where torch sees no CUDA device, and run in the device checks
(`benchmarks/device_check.sh`) when a GPU is lent."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

import circuitdsl
from circuitdsl.ir.model import CircuitIR
from tests.model_files import MODELS, small_args

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

GPU = torch.device("cuda")


def _inputs(ir: CircuitIR, batch: int, time: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random float64 CPU inputs [batch, time, *port shape] in [-1, 1] for every input port."""
    rng = np.random.default_rng(seed)
    return {p.name: torch.from_numpy(rng.uniform(-1, 1, (batch, time, *[a.size for a in p.shape])))
            for p in ir.inputs}


def _on(values: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: v.to(device) for k, v in values.items()}


def _same(gpu: dict[str, torch.Tensor], cpu: dict[str, torch.Tensor], tolerance: float) -> None:
    """Every GPU tensor is on the GPU and equals the CPU one."""
    assert gpu.keys() == cpu.keys()
    for name, value in gpu.items():
        assert value.device.type == "cuda", name
        torch.testing.assert_close(value.cpu(), cpu[name], rtol=tolerance, atol=tolerance, msg=name)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: p.name)
def test_every_model_runs_on_the_gpu_and_equals_its_cpu_run_in_float64(path: Path) -> None:
    ir = circuitdsl.load(path, **small_args(path))
    cpu = circuitdsl.compile(ir, dtype="float64")
    gpu = circuitdsl.compile(ir, dtype="float64").to(GPU)  # the same seed: the same parameters
    assert all(p.device.type == "cuda" for p in gpu.parameters())
    assert all(v.device.type == "cuda" for v in gpu.initial_state(2).values())
    inputs = _inputs(ir, batch=2, time=3)
    outputs, state = cpu.rollout(inputs or None, steps=3)
    gpu_outputs, gpu_state = gpu.rollout(_on(inputs, GPU) or None, steps=3)
    _same(gpu_outputs, outputs, 1e-12)
    _same(gpu_state, state, 1e-12)
    step_outputs, _ = gpu({k: v[:, 0] for k, v in inputs.items()} or None, gpu_state)  # CPU inputs: moved
    assert all(v.device.type == "cuda" for v in step_outputs.values())


def test_a_float32_module_moved_to_the_gpu_takes_cpu_state_and_follows_later_moves() -> None:
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    x = torch.rand(3, 6, 5) * 2 - 1
    reference, state = module.rollout(x)
    module.to(GPU)
    outputs, gpu_state = module.rollout(x.to(GPU))
    torch.testing.assert_close(outputs["torque"].cpu(), reference["torque"])
    _, moved = module(x[:, 0], state)  # the CPU state of an earlier run continues on the GPU
    assert all(v.device.type == "cuda" for v in moved.values())
    module.double()
    assert all(v.dtype == torch.float64 and v.device.type == "cuda" for v in module(x[:, 0], gpu_state)[1].values())
    module.cpu()
    assert module(x[:, 0])[0]["torque"].device.type == "cpu"


def test_gradients_on_the_gpu_equal_those_on_the_cpu() -> None:
    ir = circuitdsl.load("models/ncap_swimmer.circuit", joints=3)
    x = _inputs(ir, batch=2, time=5, seed=1)
    grads = []
    for device in (torch.device("cpu"), GPU):
        module = circuitdsl.compile(ir, dtype="float64", seed=2).to(device)
        outputs, _ = module.rollout(_on(x, device))
        (outputs["torque"] ** 2).sum().backward()
        grads.append({k: p.grad for k, p in module.params.items() if p.grad is not None})
    assert grads[0]
    _same(grads[1], grads[0], 1e-10)


@pytest.mark.parametrize("lowering", ["dense", "sparse"])
def test_the_whole_worm_runs_on_the_gpu_in_each_lowering(lowering: str) -> None:
    ir = circuitdsl.load("models/celegans_whole.circuit")
    inputs = _inputs(ir, batch=4, time=20, seed=3)
    cpu = circuitdsl.compile(ir, dtype="float64", lowering=lowering)
    gpu = circuitdsl.compile(ir, dtype="float64", lowering=lowering).to(GPU)
    outputs, state = cpu.rollout(inputs)
    gpu_outputs, gpu_state = gpu.rollout(_on(inputs, GPU))
    _same(gpu_outputs, outputs, 1e-12)
    _same(gpu_state, state, 1e-12)


# dynamo warns about its own doings while tracing (see test_torch_backend.py)
@pytest.mark.filterwarnings("ignore:.*should not be instantiated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
def test_module_compile_on_the_gpu_equals_eager() -> None:
    module = circuitdsl.compile("models/ncap_swimmer.circuit").to(GPU)
    x = torch.rand(8, 5, device=GPU) * 2 - 1
    state = module.initial_state(8)
    eager = [module(x, state)]
    module.compile()
    compiled = [module(x, state) for _ in range(2)]  # the second call runs the cached graph
    for outputs, new_state in compiled:
        _same(outputs, {k: v.cpu() for k, v in eager[0][0].items()}, 1e-6)
        _same(new_state, {k: v.cpu() for k, v in eager[0][1].items()}, 1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_an_inference_step_on_the_gpu_never_waits_for_the_device(causal: bool) -> None:
    # the CPU reuses prepared parameters after comparing them by value with the last call's; on a GPU that
    # comparison would wait for the device once per parameter per step, so a GPU module prepares afresh; a
    # causal mask is on the GPU from the start (a copy per step would wait)
    module = circuitdsl.compile(circuitdsl.load("models/transformer_block.circuit", causal=causal)).to(GPU)
    module.nonfinite = "ignore"  # "warn" reads one boolean back per input
    inputs = {p.name: torch.rand(2, *[a.size for a in p.shape], device=GPU) for p in module.ir.inputs}
    state = module.initial_state(2)
    with torch.inference_mode():
        reference, _ = module(inputs, state)  # the first call builds the program (copies to the GPU)
        try:
            with warnings.catch_warnings():  # torch warns that the mode is a prototype
                warnings.simplefilter("ignore", UserWarning)
                torch.cuda.set_sync_debug_mode("error")
            outputs, state = module(inputs, state)
            module(inputs, state)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    _same(outputs, {k: v.cpu() for k, v in reference.items()}, 0)
