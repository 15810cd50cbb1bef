"""The reference runs for tests/test_brian2_agreement.py: the same neurons in Brian2 (numpy target, float64).

Each function returns the spike steps of every cell (a spike at time t is step t / dt, as circuitdsl counts) and
the recorded state at the end of every step, after resets (Brian2's `when="end"`), in mV.
"""

from __future__ import annotations

import functools
import logging
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar

import numpy as np

# (a, b, c in mV, d in mV) of Izhikevich (2003), Fig. 2: regular spiking, intrinsically bursting, chattering,
# fast spiking
IZHIKEVICH_CELLS: Mapping[str, tuple[float, float, float, float]] = {
    "RS": (0.02, 0.2, -65.0, 8.0), "IB": (0.02, 0.2, -55.0, 4.0), "CH": (0.02, 0.2, -50.0, 2.0),
    "FS": (0.1, 0.2, -65.0, 2.0),
}


Run = TypeVar("Run", bound=Callable[..., tuple[list[np.ndarray], np.ndarray]])


def _quiet(run: Run) -> Run:
    """Brian2 and its parser raise deprecation warnings of their own, which pytest would turn into errors."""
    @functools.wraps(run)
    def quietly(*args: object, **kwargs: object) -> tuple[list[np.ndarray], np.ndarray]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return run(*args, **kwargs)
    return quietly  # type: ignore[return-value]


def _brian2():  # type: ignore[no-untyped-def]
    """brian2 in a fresh scope, on the numpy target (no compiler)."""
    import brian2
    brian2.prefs.codegen.target = "numpy"
    brian2.prefs.logging.file_log = False
    logging.getLogger("brian2").setLevel(logging.ERROR)  # namespace notes about our parameter names
    brian2.start_scope()
    return brian2


def _run(b2, group, variables: list[str], duration_ms: float, dt_ms: float) -> tuple[list[np.ndarray], dict]:  # type: ignore[no-untyped-def]
    spikes = b2.SpikeMonitor(group)
    states = b2.StateMonitor(group, variables, record=True, when="end")
    b2.Network(group, spikes, states).run(duration_ms * b2.ms)
    trains = [np.round(np.asarray(t / b2.ms) / dt_ms).astype(int) for t in spikes.spike_trains().values()]
    return trains, {name: np.asarray(getattr(states, name)) for name in variables}


@_quiet
def izhikevich(duration_ms: float, dt_ms: float = 0.5, drive_mv: float = 10.0,
               perturbation: float = 0.0) -> tuple[list[np.ndarray], np.ndarray]:
    """The four cells of IZHIKEVICH_CELLS driven by I (inside the parentheses, in mV), forward Euler; the initial
    membrane -65 mV times (1 + perturbation)."""
    b2 = _brian2()
    b2.defaultclock.dt = dt_ms * b2.ms
    group = b2.NeuronGroup(4, """
        dv/dt = (0.04*v*v/mV + 5*v + 140*mV - u + I)/ms : volt
        du/dt = a*(b*v - u)/ms : volt
        a : 1
        b : 1
        c : volt
        d : volt
        I : volt
    """, threshold="v >= 30*mV", reset="v = c; u += d", method="euler")
    a, b, c, d = (np.array(column) for column in zip(*IZHIKEVICH_CELLS.values(), strict=True))
    group.a, group.b, group.c, group.d = a, b, c * b2.mV, d * b2.mV
    group.I = drive_mv * b2.mV
    group.v = -65 * b2.mV * (1 + perturbation)
    group.u = group.b * group.v
    trains, states = _run(b2, group, ["v"], duration_ms, dt_ms)
    return trains, states["v"] * 1e3


@_quiet
def adex(duration_ms: float, current_na: float, dt_ms: float = 0.1) -> tuple[list[np.ndarray], np.ndarray]:
    """Brette & Gerstner (2005) with the library's defaults, forward Euler."""
    b2 = _brian2()
    b2.defaultclock.dt = dt_ms * b2.ms
    namespace = {"C": 281 * b2.pF, "gL": 30 * b2.nS, "EL": -70.6 * b2.mV, "VT": -50.4 * b2.mV,
                 "DeltaT": 2 * b2.mV, "tauw": 144 * b2.ms, "a": 4 * b2.nS, "b": 0.0805 * b2.nA,
                 "Vr": -70.6 * b2.mV, "peak": -40.4 * b2.mV, "I": current_na * b2.nA}
    group = b2.NeuronGroup(1, """
        dv/dt = (-gL*(v - EL) + gL*DeltaT*exp((v - VT)/DeltaT) - w + I)/C : volt
        dw/dt = (a*(v - EL) - w)/tauw : amp
    """, threshold="v > peak", reset="v = Vr; w += b", method="euler", namespace=namespace)
    group.v = namespace["EL"]
    trains, states = _run(b2, group, ["v"], duration_ms, dt_ms)
    return trains, states["v"] * 1e3


@_quiet
def hodgkin_huxley(duration_ms: float, current_ua_cm2: float, method: str,
                   dt_ms: float = 0.01) -> tuple[list[np.ndarray], np.ndarray]:
    """The library's HodgkinHuxley (same constants and initial gates); one spike per upward crossing of 0 mV."""
    b2 = _brian2()
    b2.defaultclock.dt = dt_ms * b2.ms
    area = b2.cm ** 2
    namespace = {"C": 1 * b2.uF / area, "gNa": 120 * b2.msiemens / area, "gK": 36 * b2.msiemens / area,
                 "gL": 0.3 * b2.msiemens / area, "ENa": 50 * b2.mV, "EK": -77 * b2.mV, "EL": -54.387 * b2.mV,
                 "I": current_ua_cm2 * b2.uA / area}
    group = b2.NeuronGroup(1, """
        dv/dt = (I - gNa*m**3*h*(v - ENa) - gK*n**4*(v - EK) - gL*(v - EL))/C : volt
        dm/dt = alpha_m*(1 - m) - beta_m*m : 1
        dh/dt = alpha_h*(1 - h) - beta_h*h : 1
        dn/dt = alpha_n*(1 - n) - beta_n*n : 1
        alpha_m = 0.1*(v/mV + 40)/(1 - exp(-(v/mV + 40)/10))/ms : Hz
        beta_m = 4*exp(-(v/mV + 65)/18)/ms : Hz
        alpha_h = 0.07*exp(-(v/mV + 65)/20)/ms : Hz
        beta_h = 1/(1 + exp(-(v/mV + 35)/10))/ms : Hz
        alpha_n = 0.01*(v/mV + 55)/(1 - exp(-(v/mV + 55)/10))/ms : Hz
        beta_n = 0.125*exp(-(v/mV + 65)/80)/ms : Hz
    """, threshold="v > 0*mV", refractory="v > 0*mV", method=method, namespace=namespace)
    group.v, group.m, group.h, group.n = -65 * b2.mV, 0.0529325, 0.5961208, 0.3176769
    trains, states = _run(b2, group, ["v"], duration_ms, dt_ms)
    return trains, states["v"] * 1e3
