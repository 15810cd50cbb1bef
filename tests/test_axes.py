"""Operations over named axes against real references: models/attention.circuit is torch.nn.MultiheadAttention
with the same weights (outputs and gradients, with and without a causal mask), models/transformer_block.circuit a
hand-written torch pre-norm block, models/mlp_mixer.circuit a hand-written torch MLP-Mixer block; torch and JAX
agree in float64; the numpy reference evaluator agrees with torch; and every misuse is one CircuitError at its
place, naming the axes on both sides."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np
import pytest
import torch
from torch import nn

import circuitdsl
from circuitdsl.errors import CircuitError
from circuitdsl.ir.expr import evaluate
from tests import backend_harness as harness

ROOT = Path(__file__).resolve().parent.parent
ATTENTION, BLOCK, MIXER = (str(ROOT / "models" / f"{name}.circuit")
                           for name in ("attention", "transformer_block", "mlp_mixer"))
T, E, H, HIDDEN, TOKEN_HIDDEN = 4, 8, 2, 16, 6  # the models' defaults
Slot = tuple[nn.Parameter, slice]  # a torch parameter, and the rows of it that one of our params holds
ALL = slice(None)


# ---- the torch references ------------------------------------------------------------------------------


def attention_slots(mha: nn.MultiheadAttention, prefix: str = "", source: str = "x") -> dict[str, Slot]:
    """Our attention's params (keys as the torch backend names them) in the torch module: in_proj's thirds are
    the q, k and v maps, out_proj the last one."""
    at = f"{prefix}/" if prefix else ""
    slots: dict[str, Slot] = {}
    for i, name in enumerate("qkv"):
        rows = slice(i * E, (i + 1) * E)
        slots[f"{source} -> {at}{name}/weight"] = (mha.in_proj_weight, rows)
        slots[f"{source} -> {at}{name}/bias"] = (mha.in_proj_bias, rows)
    heads = "+".join(f"{at}{name}" for name in "qkv")
    slots[f"{heads} -> {at}out/weight"] = (mha.out_proj.weight, ALL)
    slots[f"{heads} -> {at}out/bias"] = (mha.out_proj.bias, ALL)
    return slots


class Reference(nn.Module):
    """A torch module of x (and an optional attention mask) whose params map onto ours."""

    def slots(self) -> dict[str, Slot]:
        """Our param keys (as the torch backend names them), each with its torch tensor and rows."""
        raise NotImplementedError


class PreNormBlock(Reference):
    """x + attention(norm1(x)), then + down(gelu(up(norm2(.)))): the pre-norm transformer block."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(E), nn.LayerNorm(E)
        self.attention = nn.MultiheadAttention(E, H, batch_first=True)
        self.up, self.gelu, self.down = nn.Linear(E, HIDDEN), nn.GELU(), nn.Linear(HIDDEN, E)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        h = self.norm1(x)
        x = x + self.attention(h, h, h, attn_mask=mask, need_weights=False)[0]
        return x + self.down(self.gelu(self.up(self.norm2(x))))

    def slots(self) -> dict[str, Slot]:
        return {"x -> norm1/weight": (self.norm1.weight, ALL), "x -> norm1/bias": (self.norm1.bias, ALL),
                **attention_slots(self.attention, "attention", "norm1"),
                "x+attention/out -> norm2/weight": (self.norm2.weight, ALL),
                "x+attention/out -> norm2/bias": (self.norm2.bias, ALL),
                "norm2 -> up/weight": (self.up.weight, ALL), "norm2 -> up/bias": (self.up.bias, ALL),
                "up -> down/weight": (self.down.weight, ALL), "up -> down/bias": (self.down.bias, ALL)}


class MixerBlock(Reference):
    """MLP-Mixer: x + token MLP (over tokens, per feature) of norm1(x), then + channel MLP of norm2(.)."""

    def __init__(self) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(E), nn.LayerNorm(E)
        self.token_up, self.token_down = nn.Linear(T, TOKEN_HIDDEN), nn.Linear(TOKEN_HIDDEN, T)
        self.channel_up, self.channel_down = nn.Linear(E, HIDDEN), nn.Linear(HIDDEN, E)
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        tokens = self.norm1(x).transpose(1, 2)  # [batch, feature, token]
        x = x + self.token_down(self.gelu(self.token_up(tokens))).transpose(1, 2)
        return x + self.channel_down(self.gelu(self.channel_up(self.norm2(x))))

    def slots(self) -> dict[str, Slot]:
        linear = {"norm1 -> token_up": self.token_up, "token_up -> token_down": self.token_down,
                  "norm2 -> channel_up": self.channel_up, "channel_up -> channel_down": self.channel_down}
        return {"x -> norm1/weight": (self.norm1.weight, ALL), "x -> norm1/bias": (self.norm1.bias, ALL),
                "x+token_down -> norm2/weight": (self.norm2.weight, ALL),
                "x+token_down -> norm2/bias": (self.norm2.bias, ALL),
                **{f"{key}/{part}": (getattr(layer, part), ALL) for key, layer in linear.items()
                   for part in ("weight", "bias")}}


class Attention(Reference):
    """nn.MultiheadAttention as a module of x alone."""

    def __init__(self) -> None:
        super().__init__()
        self.mha = nn.MultiheadAttention(E, H, batch_first=True)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.mha(x, x, x, attn_mask=mask, need_weights=False)[0]

    def slots(self) -> dict[str, Slot]:
        return attention_slots(self.mha)


REFERENCES: dict[str, tuple[str, Callable[[], Reference]]] = {
    "attention": (ATTENTION, Attention), "block": (BLOCK, PreNormBlock), "mixer": (MIXER, MixerBlock)}


def reference(name: str, seed: int = 0) -> Reference:
    """The torch module, its parameters (biases and norms included) drawn at random, so none is trivially 0 or 1."""
    torch.manual_seed(seed)
    module = REFERENCES[name][1]()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
    return module


def our_params(module: Reference) -> dict[str, np.ndarray]:
    return {key: p.detach()[rows].numpy().reshape(-1) for key, (p, rows) in module.slots().items()}


def mask(causal: bool) -> torch.Tensor | None:
    return torch.triu(torch.ones(T, T, dtype=torch.bool), 1) if causal else None


def inputs(seed: int = 1, batch: int = 3) -> np.ndarray:
    """[batch, time 1, token, feature] float32."""
    return np.random.default_rng(seed).standard_normal((batch, 1, T, E)).astype(np.float32)


CASES = [("attention", False), ("attention", True), ("block", False), ("block", True), ("mixer", False)]


@pytest.mark.parametrize("backend", harness.BACKENDS)
@pytest.mark.parametrize(("name", "causal"), CASES)
def test_models_equal_their_torch_references_in_outputs_and_gradients(backend: str, name: str, causal: bool) -> None:
    """The same weights give the same outputs (1e-5) and the same gradient of sum(y * w) for every param (1e-4)."""
    module = reference(name)
    args = {} if name == "mixer" else {"causal": causal}
    handle = harness.build(circuitdsl.load(REFERENCES[name][0], **args), backend)
    slots = module.slots()
    assert set(slots) == set(harness.params(handle)), "every param of ours has its torch counterpart"
    harness.set_params(handle, our_params(module))
    x = inputs()
    w = np.random.default_rng(2).standard_normal(x.shape).astype(np.float32)
    outputs, grads = harness.grad(handle, {"x": x}, {"y": w})
    theirs = module(torch.from_numpy(x[:, 0]), mask(causal))
    (theirs * torch.from_numpy(w[:, 0])).sum().backward()
    np.testing.assert_allclose(outputs["y"][:, 0], theirs.detach().numpy(), rtol=0, atol=1e-5)
    for key, (p, rows) in slots.items():
        assert p.grad is not None
        np.testing.assert_allclose(grads[key].reshape(-1), p.grad[rows].numpy().reshape(-1), rtol=0, atol=1e-4,
                                   err_msg=key)


@pytest.mark.parametrize(("name", "causal"), CASES)
def test_torch_and_jax_agree_in_float64(name: str, causal: bool) -> None:
    """Both backends in float64 on float32-exact params and inputs: equal to 1e-12."""
    ir = circuitdsl.load(REFERENCES[name][0], **({} if name == "mixer" else {"causal": causal}))
    params = {k: v.astype(np.float64) for k, v in our_params(reference(name, seed=5)).items()}
    x = inputs(seed=6)
    module = circuitdsl.compile(ir, dtype="float64")
    with torch.no_grad():
        for key, value in params.items():
            module.params[key].copy_(torch.from_numpy(value))
        ours = module.rollout({"x": torch.from_numpy(x.astype(np.float64))})[0]["y"].numpy()
    with jax.enable_x64(True):
        circuit = circuitdsl.compile(ir, backend="jax", dtype="float64")
        theirs = np.asarray(circuit.rollout({**circuit.init(), **params}, {"x": x.astype(np.float64)})[0]["y"])
    assert ours.dtype == theirs.dtype == np.float64
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)


def test_the_numpy_reference_evaluator_is_scaled_dot_product_attention() -> None:
    """circuitdsl/ir/expr.py's evaluate, on the signal the attention's last map reads, is torch's causal
    scaled_dot_product_attention of the same q, k, v (heads split out of the features)."""
    ir = circuitdsl.load(ATTENTION, causal=True)
    (last,) = [p for p in ir.projections if p.target == "out"]
    qkv = {name: np.random.default_rng(i).standard_normal((2, T * E)) for i, name in enumerate("qkv")}
    ours = evaluate(last.source, lambda ref: qkv[ref.source], ir.shared)
    q, k, v = (torch.from_numpy(qkv[n]).reshape(2, T, H, E // H).transpose(1, 2) for n in "qkv")
    theirs = nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(2, -1)
    np.testing.assert_allclose(ours, theirs.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("path", [ATTENTION, BLOCK, MIXER], ids=lambda p: Path(p).stem)
def test_models_are_short_loop_free_and_draw(path: str) -> None:
    """At most 30 lines, docstring included; no `for`, no grid axis; both views draw."""
    text = Path(path).read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 30 and not any(re.match(r"\s*for ", line) for line in lines) and "grid(" not in text
    ir = circuitdsl.load(path)
    assert circuitdsl.draw(ir).source.startswith("digraph")
    assert circuitdsl.draw(ir, view="unrolled").source.startswith("digraph")


# ---- every construct, and every misuse ------------------------------------------------------------------


AXES = """
circuit Axes {
  input s[query = 3, key = 3], q[token = 3, feature = 4]
  output total[key = 3], top[query = 3], norm[query = 3, key = 3], moved[key = 3, query = 3]
  output halves[token = 3, head = 2, part = 2], again[token = 3, feature = 4], named[position = 3, feature = 4]
  output gram[token = 3, other = 3]
  total = sum(s over query)
  top = max(s over key) + 0 * mean(s over key)
  norm = softmax(s over key, causal = query)
  moved = transpose(s over key, query)
  let split_q = split(q over feature, head = 2, part = 2)
  halves = split_q
  again = merge(split_q over head, part, feature = 4)
  named = rename(q, token = position)
  gram = q · rename(q, token = other) over feature
}"""


@pytest.mark.parametrize("backend", [*harness.BACKENDS, "reference"])
def test_each_axis_operation_matches_numpy(backend: str) -> None:
    """Each construct on its own, on both backends and in the reference evaluator, against numpy written out
    by hand."""
    rng = np.random.default_rng(3)
    given = {"s": rng.standard_normal((2, 1, 3, 3)), "q": rng.standard_normal((2, 1, 3, 4))}
    if backend == "reference":
        ir = circuitdsl.loads(AXES)
        flat = {k: v.reshape(2, -1) for k, v in given.items()}
        out = {o.name: evaluate(o.pieces[0].expr, lambda ref: flat[ref.source], ir.shared).reshape(
            2, *[a.size for a in o.shape]) for o in ir.outputs}
    else:
        out = {k: v[:, 0] for k, v in harness.run(harness.build(AXES, backend), given).items()}
    s, q = given["s"][:, 0], given["q"][:, 0]
    masked = np.where(np.tril(np.ones((3, 3), bool)), s, -np.inf)
    expected = {"total": s.sum(1), "top": s.max(2), "norm": np.exp(masked) / np.exp(masked).sum(2, keepdims=True),
                "moved": s.transpose(0, 2, 1), "halves": q.reshape(2, 3, 2, 2), "again": q, "named": q,
                "gram": np.einsum("btf,bof->bto", q, q)}
    for name, value in expected.items():
        np.testing.assert_allclose(out[name], value, rtol=0, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("backend", harness.BACKENDS)
def test_learned_maps_over_an_axis_that_is_not_last_match_numpy(backend: str) -> None:
    """`layer_norm over token` and `dense over token` on [token, feature] units (the channel not the last axis:
    the other layout than the models'), against numpy written out by hand with the same parameters."""
    source = ("circuit C {\n  input x[token = 3, feature = 4]\n  output n[token = 3, feature = 4], d[token = 2, "
              "feature = 4]\n  population norm[token = 3, feature = 4] : Identity\n  population mix[token = 2, "
              "feature = 4] : Identity\n  x -> norm : layer_norm over token\n  x -> mix : dense over token, bias = "
              "true\n  n = norm\n  d = mix\n}")
    handle = harness.build(source, backend)
    rng = np.random.default_rng(4)
    params = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in harness.params(handle).items()}
    harness.set_params(handle, params)
    x = rng.standard_normal((2, 1, 3, 4)).astype(np.float32)
    out = harness.run(handle, {"x": x})
    a = x[:, 0]  # [batch, token, feature]
    centred = a - a.mean(1, keepdims=True)
    normal = centred / np.sqrt((centred ** 2).mean(1, keepdims=True) + 1e-5)
    expected_n = normal * params["x -> norm/weight"][:, None] + params["x -> norm/bias"][:, None]
    matrix = params["x -> mix/weight"].reshape(2, 3)
    expected_d = np.einsum("ot,btf->bof", matrix, a) + params["x -> mix/bias"][:, None]
    np.testing.assert_allclose(out["n"][:, 0], expected_n, rtol=0, atol=1e-5)
    np.testing.assert_allclose(out["d"][:, 0], expected_d, rtol=0, atol=1e-5)


def fail(source: str) -> CircuitError:
    with pytest.raises(CircuitError) as caught:
        circuitdsl.loads(source, file="bad.circuit")
    return caught.value


HEAD = "circuit C {\n  input q[query = 3, head_dim = 4], k[key = 3, head = 4], x[token = 3, feature = 8]\n"
MISTAKES = [  # (what, line, code, line, column, words the message or its notes must hold)
    ("contract over an axis one side lacks", "  output s[query = 3, key = 3] = q · k over head_dim",
     "E309", 3, 45, ["right side [key=3, head=4] lacks it", "[query=3, head_dim=4]", "did you mean 'head'"]),
    ("softmax over a missing axis", "  output s[query = 3, head_dim = 4] = softmax(q over key)",
     "E308", 3, 54, ["[query=3, head_dim=4] has no axis 'key'"]),
    ("unknown axis, did you mean", "  output s[query = 3] = sum(q over head_dimm)",
     "E308", 3, 36, ["has no axis 'head_dimm'", "did you mean 'head_dim'"]),
    ("split into sizes that do not multiply",
     "  output s[token = 3, head = 3, part = 3] = split(x over feature, head = 3, part = 3)",
     "E310", 3, 45, ["'feature' (8 units)", "head=3 × part=3 = 9 units"]),
    ("merge into the wrong size", "  output s[token = 24] = merge(x over token, feature, token = 12)",
     "E310", 3, 55, ["token=3 × feature=8 makes 24 units, not token = 12"]),
    ("a bias that does not match the target",
     "  population h[token = 3, feature = 4] : Identity\n  x -> h : layer_norm over feature",
     "E311", 4, 12, ["scale and shift are [feature=8]", "[feature=4]"]),
    ("dense whose other axes differ",
     "  population h[token = 2, feature = 8] : Identity\n  x -> h : dense over feature, bias = true",
     "E311", 4, 12, ["[token=3, feature=8] to [token=2, feature=8]"]),
    ("dense over an axis the target lacks",
     "  population h[token = 3, feature = 8] : Identity\n  x -> h : dense over channel",
     "E308", 4, 23, ["has no axis 'channel'"]),
    ("contracted axes of different sizes",
     "  output s[query = 3] = q · rename(x, token = query, feature = head_dim) over head_dim",
     "E309", 3, 79, ["'head_dim' is contracted but its sizes differ", "[query=3, head_dim=8]"]),
]


@pytest.mark.parametrize(("line", "code", "row", "column", "words"), [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_misuse_is_one_error_at_its_place_naming_the_axes(line: str, code: str, row: int, column: int,
                                                         words: list[str]) -> None:
    error = fail(HEAD + line + "\n}\n")
    assert error.span is not None
    assert (error.code, error.span.line, error.span.column) == (code, row, column), error.render()
    rendered = error.render()
    assert "Traceback" not in rendered and "^" in rendered
    for word in words:
        assert word in rendered, rendered
