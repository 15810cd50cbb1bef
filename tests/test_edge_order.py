"""Synapses in canonical (pre, post) order, stably (circuitdsl/connectome/wiring.py `pair_order`): the two-pass
16-bit radix order and the one-key order agree with numpy's lexsort, duplicates kept in file order."""

from __future__ import annotations

import numpy as np
import pytest

from circuitdsl.connectome.wiring import pair_order


@pytest.mark.parametrize("n", [1, 7, 1 << 16, (1 << 16) + 1, 300_000])
def test_pair_order_is_the_stable_lexicographic_order(n: int) -> None:
    rng = np.random.default_rng(n)
    pre, post = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    pre[:50], post[:50] = pre[0], post[0]  # one pair many times: ties keep their order
    order = pair_order(pre, post, n)
    np.testing.assert_array_equal(order, np.lexsort((post, pre)))
    assert sorted(order.tolist()) == list(range(5000))
