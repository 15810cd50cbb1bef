"""The stateful ONNX step: (inputs, state) -> (outputs, new state), named tensors, a dynamic batch axis, run for
1000 steps in onnxruntime against the torch module."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

import circuitdsl
from circuitdsl.interop import api


@pytest.mark.parametrize("model", ["models/ncap_swimmer.circuit", "models/celegans_whole.circuit"])
def test_the_step_runs_1000_steps_in_onnxruntime_equal_to_torch(tmp_path: Path, model: str) -> None:
    report = api.export(model, tmp_path / "step.onnx")
    assert report.comparison.startswith("1000 steps")
    errors = [e.max_error for e in report.entries]
    assert errors and all(e is not None and e <= 1e-6 for e in errors), report.render()
    assert all(e.status == "exact" for e in report.entries)
    assert (tmp_path / "step.onnx.fidelity.txt").exists()


def test_named_tensors_and_a_dynamic_batch(tmp_path: Path) -> None:
    api.export("models/ncap_swimmer.circuit", tmp_path / "step.onnx")
    graph = onnx.load(tmp_path / "step.onnx").graph
    inputs = {i.name: i for i in graph.input}
    assert set(inputs) == {"q", "state/osc_d.t"}  # the state: what the step reads
    assert {o.name for o in graph.output} == {"torque", "next_state/osc_d.t"}
    assert inputs["q"].type.tensor_type.shape.dim[0].dim_param == "batch"
    session = onnxruntime.InferenceSession(str(tmp_path / "step.onnx"), providers=["CPUExecutionProvider"])
    module = circuitdsl.compile("models/ncap_swimmer.circuit")
    for batch in (1, 7):
        state = module.initial_state(batch)
        q = np.random.default_rng(batch).uniform(-1, 1, (batch, 5)).astype(np.float32)
        feeds = {"q": q, **{f"state/{k}": v.numpy() for k, v in state.items() if f"state/{k}" in inputs}}
        torque, t = session.run(["torque", "next_state/osc_d.t"], feeds)
        with torch.no_grad():
            expected, new_state = module(torch.as_tensor(q), state)
        np.testing.assert_array_equal(torque, expected["torque"].numpy())
        np.testing.assert_array_equal(t, new_state["osc_d.t"].numpy())


def test_a_spectral_operator_is_refused(tmp_path: Path) -> None:
    with pytest.raises(circuitdsl.CircuitError) as info:
        api.export("models/operator_burgers.circuit", tmp_path / "step.onnx")
    assert info.value.code == "E953" and "no complex tensors" in str(info.value)
    with pytest.raises(circuitdsl.CircuitError) as info:  # allowed, the exporter still cannot write it: it says so
        api.export("models/operator_burgers.circuit", tmp_path / "step.onnx", allow_lossy=True)
    assert info.value.code == "E953" and "aten::complex" in str(info.value)
