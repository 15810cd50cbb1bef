"""NCAP by hand, from the paper: the reference the compiled swimmer is tested against."""

from __future__ import annotations

from typing import Any

import numpy as np


def ncap_reference(q: Any, w: dict[str, Any], shared: bool, constrained: bool, period: int = 60,
                   xp: Any = np) -> Any:
    """NCAP written by hand from Bhattasali et al. (see shared/reference/ncap.md): q is [batch, time, joints].

    Written with a Python loop over segments, as the paper's code is, over numpy arrays or torch tensors
    (`xp` = numpy or torch).  Unshared weights are indexed per edge: osc [d, v]; prop [d for joints 1..,
    v for joints 1..]; ipsi and contra [d side for every joint, v side for every joint].
    """
    exc = (lambda x: x.clip(min=0)) if constrained else (lambda x: x)
    inh = (lambda x: x.clip(max=0)) if constrained else (lambda x: x)
    _batch, steps, joints = q.shape

    def pick(name: str, k: int) -> Any:
        return w[name] if shared else w[name][k]

    torques = []
    for t in range(steps):
        o_d = float((t % period) < period / 2)
        o_v = 1.0 - o_d
        q_d, q_v = q[:, t].clip(0, 1), (-q[:, t]).clip(0, 1)
        ones = q[:, t, 0] * 0 + 1  # [batch]: the head's oscillator drive is the same for every batch entry
        segments = []
        for i in range(joints):
            if i == 0:
                b_d, b_v = exc(pick("osc", 0)) * o_d * ones, exc(pick("osc", 1)) * o_v * ones
            else:
                b_d = exc(pick("prop", i - 1)) * q_d[:, i - 1]
                b_v = exc(pick("prop", joints - 1 + i - 1)) * q_v[:, i - 1]
            b_d, b_v = b_d.clip(0, 1), b_v.clip(0, 1)
            m_d = (exc(pick("ipsi", i)) * b_d + inh(pick("contra", joints + i)) * b_v).clip(0, 1)
            m_v = (exc(pick("ipsi", joints + i)) * b_v + inh(pick("contra", i)) * b_d).clip(0, 1)
            segments.append(m_d - m_v)
        torques.append(xp.stack(segments, -1))
    return xp.stack(torques, 1)
