"""The composite functions (circuitdsl/ir/composite.py): written once, the same values and gradients over numpy,
torch and JAX."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from circuitdsl.backends.jax_backend import JaxOps
from circuitdsl.backends.torch_backend import TorchOps
from circuitdsl.ir import composite
from circuitdsl.ir.expr import NUMPY_FUNCTIONS
from circuitdsl.ir.primitives import NUMPY

RNG = np.random.default_rng(3)
ARGS: dict[str, tuple[Any, ...]] = {
    "reduce_sum": (RNG.normal(size=(2, 12)), 4.0),
    "reduce_max": (RNG.normal(size=(2, 12)), 3.0),
    "reduce_absmax": (RNG.normal(size=(2, 12)), 6.0),
    "kwta": (RNG.normal(size=(2, 5, 1)), 2.0),
    "matvec": (RNG.normal(size=(3, 4, 6)), RNG.normal(size=(2, 3, 6))),
    "push": (RNG.normal(size=(2, 5)), 7.0),
}
TABLES: dict[str, tuple[Mapping[str, Callable[..., Any]], Callable[[np.ndarray], Any]]] = {
    "torch": (TorchOps.functions, torch.tensor),
    "jax": (JaxOps.functions, jnp.asarray),
}


def test_every_backend_takes_its_composites_from_the_one_definition() -> None:
    for functions, primitives in ((NUMPY_FUNCTIONS, NUMPY), (TorchOps.functions, TorchOps.primitives),
                                  (JaxOps.functions, JaxOps.primitives)):
        for name, fn in composite.COMPOSITES.items():
            bound = functions[name]
            assert isinstance(bound, partial) and bound.func is fn, name
            assert bound.args == (primitives,), name  # the table the axis operations use too


@pytest.mark.parametrize("backend", sorted(TABLES))
@pytest.mark.parametrize("name", sorted(composite.COMPOSITES))
def test_backends_agree_with_the_numpy_reference(backend: str, name: str) -> None:
    functions, array = TABLES[backend]
    args = ARGS[name]
    want = NUMPY_FUNCTIONS[name](*args)
    got = functions[name](*(array(a) if isinstance(a, np.ndarray) else a for a in args))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-6)
    assert np.asarray(got).shape == want.shape


def test_kwta_keeps_the_winners_and_sends_gradient_to_them_only() -> None:
    x = np.array([[3.0, -1.0, 2.0, 0.5]])
    np.testing.assert_array_equal(NUMPY_FUNCTIONS["kwta"](x, 2.0), [[3.0, 0.0, 2.0, 0.0]])
    t = torch.tensor(x, requires_grad=True)
    TorchOps.functions["kwta"](t, 2.0).sum().backward()
    assert t.grad is not None
    np.testing.assert_array_equal(t.grad.numpy(), [[1.0, 0.0, 1.0, 0.0]])
    grad = jax.grad(lambda v: JaxOps.functions["kwta"](v, 2.0).sum())(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(grad), [[1.0, 0.0, 1.0, 0.0]])


def test_kwta_keeps_every_value_tied_with_the_kth_on_every_backend() -> None:
    x = np.array([[1.0, 2.0, 2.0, 0.5, 2.0]])
    expected = [[0.0, 2.0, 2.0, 0.0, 2.0]]  # k = 2, three values tie at the 2nd largest: all kept
    np.testing.assert_array_equal(NUMPY_FUNCTIONS["kwta"](x, 2.0), expected)
    np.testing.assert_array_equal(TorchOps.functions["kwta"](torch.tensor(x), 2.0).numpy(), expected)
    np.testing.assert_array_equal(np.asarray(JaxOps.functions["kwta"](jnp.asarray(x), 2.0)), expected)


def test_absmax_sends_gradient_to_the_chosen_element() -> None:
    x = np.array([[1.0, -4.0, 2.0, 3.0]])
    t = torch.tensor(x, requires_grad=True)
    got = TorchOps.functions["reduce_absmax"](t, 2.0)
    np.testing.assert_array_equal(got.detach().numpy(), [[-4.0, 3.0]])
    got.sum().backward()
    assert t.grad is not None
    np.testing.assert_array_equal(t.grad.numpy(), [[0.0, 1.0, 0.0, 1.0]])
    grad = jax.grad(lambda v: JaxOps.functions["reduce_absmax"](v, 2.0).sum())(jnp.asarray(x))
    np.testing.assert_array_equal(np.asarray(grad), [[0.0, 1.0, 0.0, 1.0]])
