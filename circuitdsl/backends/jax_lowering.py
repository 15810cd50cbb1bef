"""How the JAX backend runs each fused group, chosen by measurement on one CPU thread (XLA)."""

from __future__ import annotations

from typing import Final

import numpy as np

from circuitdsl.backends import ell
from circuitdsl.backends.fusion import Group

ELL_LAYERS: Final = 8


def choose(g: Group, automatic: str) -> str:
    """ell for a group whose elements receive few synapses each, else the automatic choice."""
    pre, post = g.synapses()
    rows = np.unique(post * g.width + pre) // g.width
    if ell.layers(rows, g.size) <= ELL_LAYERS:
        return "ell"
    return automatic
