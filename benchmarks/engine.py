"""The engine against hand-written code of the same networks, in one process (issue 13's acceptance numbers).

Every row times the compiled circuit and a hand-written version of the same network in interleaved rounds (ours,
theirs, ours, theirs, ...), each round `repeat` calls, and prints the ratio of the fastest rounds (min) and of the
median rounds; a ratio below 1 means the compiled circuit is faster.  One CPU thread for both frameworks.

- NCAP swimmer step: torch eager at batch 1 and 256, compiled (with --compile: `module.compile()`, and
  `torch.compile(module)`), the jitted JAX step, and a jitted 1000-step JAX scan at batch 1; a 1000-step torch
  rollout (eager, and with --compile `torch.compile(module.rollout)` with the module's `compile_options()`)
  against HandNCAP stepped in a loop.
- 1000 dm-control swim steps: the compiled policy's cost over physics alone (torch, and JAX with its step jitted),
  against a numpy NCAP's.
- Whole worm (302 neurons), 1000 steps: torch at batch 1 (hand: one dense matrix) and 64 (hand: the better of
  dense and CSR), and a jitted JAX scan against a hand JAX scan.
- A fly-scale random graph (about 45,500 cells, 1.5 M synapses, from an edge-list NPZ), one step at batch 4 against
  a hand CSR step in torch and a hand segment-sum step in JAX (JAX stepped on prepared parameters, and on raw ones).

Run: `python -m benchmarks.engine [--compile] [--rounds 7]` (a few minutes; more with --compile).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import jax  # after XLA_FLAGS, which jax reads on import
import jax.numpy as jnp
import numpy as np
import torch

import circuitdsl
from benchmarks.connectome import WORM, WORM_OUTPUTS, dense_worm, fly_data, worm_readout
from benchmarks.ncap_step import HandNCAP
from circuitdsl.backends.interface import param_key

Row = tuple[str, float, float]


@dataclass(frozen=True)
class Run:
    """How the rows are timed: interleaved rounds per row, and the device of the torch rows (`--device`; JAX runs on
    its default device, which JAX_PLATFORMS chooses, and the swim task's physics on the CPU)."""

    rounds: int
    device: torch.device

    def sync(self) -> None:
        """Wait for the work queued on the device (a GPU runs asynchronously), so that a round times its calls."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


def ratio(ours: Callable[[], object], theirs: Callable[[], object], rounds: int, repeat: int,
          sync: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """(min ratio, median ratio) of seconds per call, ours over theirs, from interleaved rounds after a warm-up;
    `sync` waits for a device's queued work at the end of each round."""
    for fn in (ours, theirs):
        for _ in range(max(2, repeat // 10)):
            fn()
    sync()
    times: dict[int, list[float]] = {0: [], 1: []}
    for _ in range(rounds):
        for i, fn in enumerate((ours, theirs)):
            start = time.perf_counter()
            for _ in range(repeat):
                fn()
            sync()
            times[i].append((time.perf_counter() - start) / repeat)
    return min(times[0]) / min(times[1]), statistics.median(times[0]) / statistics.median(times[1])


def timed(ours: Callable[[], object], theirs: Callable[[], object], run: Run, repeat: int) -> tuple[float, float]:
    """`ratio` for torch rows on the run's device."""
    return ratio(ours, theirs, run.rounds, repeat, run.sync)


def _ncap(run: Run) -> tuple[torch.nn.Module, HandNCAP]:
    """The compiled NCAP swimmer and HandNCAP, on the run's device."""
    return circuitdsl.compile("models/ncap_swimmer.circuit").to(run.device), HandNCAP().to(run.device)


# ---- NCAP ------------------------------------------------------------------------------------------------------


def ncap_torch(run: Run, compiled: bool) -> list[Row]:
    """Eager, or compiled in place (`module.compile()`, PyTorch's API, which for a circuit module leaves out the
    guards on its lowered program and inductor's size asserts) against the hand-written module compiled in place
    by its own `.compile()`, and against it also without size asserts; then compiled by `torch.compile(module)`
    (every guard kept; HandNCAP alike), at batch 1 with no guard checked, and the floors."""
    rows = [_ncap_torch_row(batch, "module" if compiled else "eager", run) for batch in (1, 256)]
    if not compiled:
        return [*rows, _ncap_rollout_row(False, run)]
    return rows + [_ncap_torch_row(batch, how, run) for how in ("alike", "torch") for batch in (1, 256)] + [
        _ncap_unguarded_row(run), *_ncap_floor_rows(run), _ncap_rollout_row(True, run)]


def _ncap_rollout_row(compiled: bool, run: Run) -> Row:
    """A 1000-step NCAP rollout at batch 1 (`rollout`, or `torch.compile(module.rollout)` with the module's
    `compile_options()`, which compiles the step once and keeps the time loop in Python) against HandNCAP stepped
    in a Python loop (compiled by `torch.compile(hand)`)."""
    module, hand = _ncap(run)
    x = torch.rand(1, 1000, 5, device=run.device) * 2 - 1
    torch._dynamo.reset()
    ours = torch.compile(module.rollout, options=module.compile_options()) if compiled else module.rollout
    step = torch.compile(hand) if compiled else hand

    def theirs() -> list[torch.Tensor]:
        clock, torques = torch.zeros(1, 1, device=run.device), []
        for q in x.unbind(1):
            torque, clock = step(q, clock)
            torques.append(torque)
        return torques

    with torch.no_grad():
        torch.testing.assert_close(ours({"q": x})[0]["torque"], torch.stack(theirs(), 1))
        found = timed(lambda: ours({"q": x}), theirs, run, 3)
    return (f"NCAP 1000-step rollout, {'torch.compile(.rollout)' if compiled else 'torch eager'}, batch 1", *found)


class InterfaceNCAP(torch.nn.Module):
    """HandNCAP's equations behind circuitdsl's interface: a dict of inputs in, the outputs and the state dict (the
    clock: what the next step reads) out.  Compiled, the floor under the compiled circuit's ratio: what the
    interface costs a hand-written step (more graph inputs, outputs and guards)."""

    def __init__(self, period: int = 60) -> None:
        super().__init__()
        self.hand, self.period = HandNCAP(period=period), period

    def forward(self, inputs: dict[str, torch.Tensor],
                state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        h, q, half = self.hand, inputs["q"], self.period / 2
        osc, prop, ipsi, contra = h.osc.clamp(min=0), h.prop.clamp(min=0), h.ipsi.clamp(min=0), h.contra.clamp(max=0)
        dorsal = ((state["osc_d.t"] % self.period) < half).to(q.dtype)
        bd = torch.cat([osc * dorsal, prop * q[:, :-1].clamp(0, 1)], 1).clamp(0, 1)
        bv = torch.cat([osc * (1 - dorsal), prop * (-q[:, :-1]).clamp(0, 1)], 1).clamp(0, 1)
        md, mv = (ipsi * bd + contra * bv).clamp(0, 1), (ipsi * bv + contra * bd).clamp(0, 1)
        return {"torque": md - mv}, {"osc_d.t": state["osc_d.t"] + 1}


def _ncap_floor_rows(run: Run) -> list[Row]:
    """InterfaceNCAP against HandNCAP, both compiled in place (`.compile()`, as the module.compile() rows: torch's
    wrapper costs ~15 Python calls more) and both by `torch.compile(...)` (as the torch.compile(module) rows),
    batch 1 and 256."""
    return [(f"  its floor: HandNCAP behind our interface, {how}, batch {batch}",
             *_ncap_floor(batch, run, how == "torch.compile"))
            for how in (".compile()", "torch.compile") for batch in (1, 256)]


def _ncap_floor(batch: int, run: Run, wrapped: bool) -> tuple[float, float]:
    (module, hand), floor = _ncap(run), InterfaceNCAP().to(run.device)
    q = torch.rand(batch, 5, device=run.device) * 2 - 1
    state, clock = module.initial_state(batch), torch.zeros(batch, 1, device=run.device)
    with torch.no_grad():
        ours, theirs = module({"q": q}, state), floor({"q": q}, state)
        assert all(torch.equal(ours[i][k], theirs[i][k]) for i in (0, 1) for k in ours[i] | theirs[i])
        torch._dynamo.reset()  # as in _ncap_torch_row
        if wrapped:
            step, theirs_step = torch.compile(floor), torch.compile(hand)
        else:
            floor.compile()
            hand.compile()
            step, theirs_step = floor, hand
        return timed(lambda: step({"q": q}, state), lambda: theirs_step(q, clock), run, 200)


def _ncap_unguarded_row(run: Run) -> Row:
    """Both compiled steps at batch 1 with dynamo's guards not evaluated (`skip_guard_eval_unsafe`, sound here
    where nothing changes between calls): what the compiled circuit costs besides checking its guards."""
    return _ncap_torch_row(1, "torch", run, unguarded=True)


NCAP_ROWS = {"eager": "NCAP step, torch eager, batch {}", "module": "NCAP step, torch module.compile(), batch {}",
             "alike": "  the same, HandNCAP also without size asserts, batch {}",
             "torch": "  the same by torch.compile(module), every guard kept, batch {}"}


def _ncap_torch_row(batch: int, how: str, run: Run, unguarded: bool = False) -> Row:
    """Our NCAP step over the hand-written one at `batch`: eager, compiled in place (`module`, the hand-written
    module by its own `.compile()`; `alike`: the hand-written one also with the inductor option the module's
    `compile_options()` sets, no size asserts) or wrapped by torch.compile (`torch`, both)."""
    module, hand = _ncap(run)
    q = torch.rand(batch, 5, device=run.device) * 2 - 1
    state, clock = module.initial_state(batch), torch.zeros(batch, 1, device=run.device)
    with torch.no_grad():
        assert torch.allclose(module({"q": q}, state)[0]["torque"], hand(q, clock)[0])
        ours: Callable[..., object] = module
        theirs: Callable[..., object] = hand
        torch._dynamo.reset()  # no compiled code of an earlier row: each call's cache holds only this row's entry
        if how in ("module", "alike"):
            module.compile()
            hand.compile(options={"size_asserts": False} if how == "alike" else None)
        elif how == "torch":
            ours, theirs = torch.compile(module), torch.compile(hand)
        ours({"q": q}, state), theirs(q, clock)  # compiled here (the unsafe stance refuses to compile)
        with torch.compiler.set_stance("default", skip_guard_eval_unsafe=unguarded):
            found = timed(lambda: ours({"q": q}, state), lambda: theirs(q, clock), run, 200)
    name = "  the same, batch 1, guards not checked (unsafe stance)" if unguarded else NCAP_ROWS[how].format(batch)
    return (name, *found)


def _hand_ncap_jax(w: dict[str, jax.Array], period: int = 60) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """NCAP's step by hand in jax.numpy (the same equations as HandNCAP), for a jitted step and a scan."""
    def step(t: jax.Array, q: jax.Array) -> tuple[jax.Array, jax.Array]:
        osc, prop, ipsi = (jnp.maximum(w[k], 0) for k in ("osc", "prop", "ipsi"))
        contra = jnp.minimum(w["contra"], 0)
        dorsal = ((t % period) < period / 2).astype(q.dtype)
        bd = jnp.clip(jnp.concatenate([osc * dorsal, prop * jnp.clip(q[:, :-1], 0, 1)], 1), 0, 1)
        bv = jnp.clip(jnp.concatenate([osc * (1 - dorsal), prop * jnp.clip(-q[:, :-1], 0, 1)], 1), 0, 1)
        md, mv = jnp.clip(ipsi * bd + contra * bv, 0, 1), jnp.clip(ipsi * bv + contra * bd, 0, 1)
        return t + 1, md - mv
    return step


def ncap_jax(rounds: int) -> list[Row]:
    """The jitted step and a 1000-step scan; the hand version also takes the weights as arguments (as training
    would), so neither side has them folded into its program as constants."""
    circuit = circuitdsl.compile("models/ncap_swimmer.circuit", backend="jax")
    params = circuit.init()
    q = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (1, 5)), jnp.float32)
    state, clock = circuit.initial_state(1), jnp.zeros((1, 1))
    ours = jax.jit(lambda p, s, x: circuit.step(p, s, {"q": x}))
    theirs = jax.jit(lambda w, t, x: _hand_ncap_jax(w)(t, x))
    np.testing.assert_allclose(ours(params, state, q)[0]["torque"], theirs(params, clock, q)[1], atol=1e-6)
    step = ratio(lambda: jax.block_until_ready(ours(params, state, q)),
                 lambda: jax.block_until_ready(theirs(params, clock, q)), rounds, 200)
    # the floor under the step's ratio: a program that only adds 1 to each array the step returns (the output and
    # the packed state's one buffer, as the hand step's 2), from the same arguments; a jitted call on a CPU costs
    # about 1 us per array it takes or returns (the state as a dict of its 8 entries: a floor of 2.3)
    floor = jax.jit(lambda p, s, x: ({"torque": x + 1}, jax.tree_util.tree_map(lambda v: v + 1, s)))
    empty = ratio(lambda: jax.block_until_ready(floor(params, state, q)),
                  lambda: jax.block_until_ready(theirs(params, clock, q)), rounds, 200)
    x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (1, 1000, 5)), jnp.float32)
    our_scan = jax.jit(lambda p, x: circuit.rollout(p, {"q": x})[0]["torque"])
    their_scan = jax.jit(lambda w, x: jax.lax.scan(_hand_ncap_jax(w), jnp.zeros((1, 1)), jnp.swapaxes(x, 0, 1))[1])
    np.testing.assert_allclose(our_scan(params, x), jnp.swapaxes(their_scan(params, x), 0, 1), atol=1e-6)
    scan = ratio(lambda: jax.block_until_ready(our_scan(params, x)),
                 lambda: jax.block_until_ready(their_scan(params, x)), rounds, 5)
    return [("NCAP step, JAX jit, batch 1", *step), ("  its floor: the same arguments and results, no work", *empty),
            ("NCAP 1000-step JAX scan, batch 1", *scan)]


class NumpyNCAP:
    """NCAP's swimmer policy in numpy (the paper's equations, the module's initial weights), for the swim row."""

    def __init__(self, joints: int = 5, period: int = 60) -> None:
        from circuitdsl.envs.swim import normalise_joints  # dm-control: imported by the swim rows alone

        self.joints, self.period, self.t, self.normalise = joints, period, 0, normalise_joints

    def reset(self, batch: int) -> None:
        self.t = 0

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        q = self.normalise(observation["joints"], self.joints)
        dorsal = float((self.t % self.period) < self.period / 2)
        self.t += 1
        bd = np.clip(np.concatenate([[dorsal], np.clip(q[0, :-1], 0, 1)]), 0, 1)
        bv = np.clip(np.concatenate([[1 - dorsal], np.clip(-q[0, :-1], 0, 1)]), 0, 1)
        return (np.clip(bd - bv, 0, 1) - np.clip(bv - bd, 0, 1))[None]


class Still:
    """No policy at all (zero torques): a swim run with it times the physics and the loop alone."""

    def reset(self, batch: int) -> None:
        pass

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        return np.zeros((1, 5))


class Replay:
    """Actions recorded beforehand, played back: a swim run with it times the physics of that episode (the swimmer
    moving, its joints at their limits) and the loop, with no policy."""

    def __init__(self, actions: list[np.ndarray]) -> None:
        self.actions, self.t = actions, 0

    def reset(self, batch: int) -> None:
        self.t = 0

    def act(self, observation: dict[str, np.ndarray]) -> np.ndarray:
        self.t += 1
        return self.actions[self.t - 1]


def swim(backend: str, rounds: int, steps: int = 1000) -> list[Row]:
    """Seconds of policy per swim step over physics alone, the compiled policy (torch, or JAX with its step jitted)
    against the numpy NCAP; each round times the physics alone (zero torques), ours and the numpy NCAP, one after
    the other.  The acceptance number is that difference, which counts a slowdown of the physics step the policy
    causes (a JAX call leaves the caches colder for it: docs/engine.md, "Acting in the swim task").  Beside it: the
    same difference over the physics of the episode itself (the numpy NCAP's actions replayed; a moving swimmer's
    physics costs more than a still one's, and the acceptance number counts that in both policies' costs), and the
    `act` calls alone, timed in the same runs."""
    from circuitdsl.envs.swim import CircuitPolicy, make_env  # dm-control: imported by these rows alone

    def run(policy: object) -> tuple[float, float]:
        env = make_env(5, seed=0)
        observation = env.reset().observation
        policy.reset(1)  # type: ignore[attr-defined]
        acting, start = 0.0, time.perf_counter()
        for _ in range(steps):
            called = time.perf_counter()
            action = policy.act({k: v[None] for k, v in observation.items()})  # type: ignore[attr-defined]
            acting += time.perf_counter() - called
            observation = env.step(action[0]).observation
        return time.perf_counter() - start, acting

    policy = CircuitPolicy(circuitdsl.compile("models/ncap_swimmer.circuit", backend=backend))
    run(policy)  # warm-up: the JAX step compiles on its first call
    episode = Replay(_actions(NumpyNCAP(), steps))
    times: dict[str, list[float]] = {name: [] for name in ("ours", "theirs", "ours'", "theirs'", "acts", "hand acts")}
    for _ in range(rounds):
        physics, moving = run(Still())[0], run(episode)[0]
        (total, acting), (hand_total, hand_acting) = run(policy), run(NumpyNCAP())
        for name, value in zip(times, (total - physics, hand_total - physics, total - moving, hand_total - moving,
                                       acting, hand_acting), strict=True):
            times[name].append(value)
    return [(f"1000 swim steps: policy cost over physics, {backend} vs numpy NCAP", *_ratios(times, "ours", "theirs")),
            ("  the same over the episode's own physics (actions replayed)", *_ratios(times, "ours'", "theirs'")),
            ("  its act calls alone, timed in the same runs", *_ratios(times, "acts", "hand acts"))]


def _actions(policy: NumpyNCAP, steps: int) -> list[np.ndarray]:
    """The actions of one swim episode (seed 0) under `policy`, for `Replay`."""
    from circuitdsl.envs.swim import make_env

    env, actions = make_env(5, seed=0), []
    observation = env.reset().observation
    policy.reset(1)
    for _ in range(steps):
        actions.append(policy.act({k: v[None] for k, v in observation.items()}))
        observation = env.step(actions[-1][0]).observation
    return actions


def _ratios(times: dict[str, list[float]], ours: str, theirs: str) -> tuple[float, float]:
    """(min ratio, median ratio) of two lists of timings; NaN where theirs is not above 0 (a difference of two runs
    that the machine's noise outweighed)."""
    def ratio(a: float, b: float) -> float:
        return a / b if b > 0 else math.nan

    return (ratio(min(times[ours]), min(times[theirs])),
            ratio(statistics.median(times[ours]), statistics.median(times[theirs])))


# ---- the whole worm ----------------------------------------------------------------------------------------------


def worm(run: Run) -> list[Row]:
    ir = circuitdsl.load(WORM)
    module = circuitdsl.compile(ir)  # on the CPU: the hand versions are built from its weights
    rows = [_worm_torch_row(module, ir, batch, run) for batch in (1, 64)]
    circuit = circuitdsl.compile(ir, backend="jax")
    hand = _hand_worm_jax(module, ir)
    return rows + [_worm_jax_row(circuit, hand, batch, run.rounds) for batch in (1, 64)]


def _worm_torch_row(cpu: torch.nn.Module, ir: circuitdsl.CircuitIR, batch: int, run: Run) -> Row:
    module = circuitdsl.compile(ir).to(run.device)  # the same seed: the same weights
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (batch, 1000)).astype(np.float32)).to(run.device)
    candidates = {"dense": dense_worm(cpu, ir, device=run.device)}
    if batch > 1:
        candidates["CSR"] = dense_worm(cpu, ir, csr=True, device=run.device)
    with torch.no_grad():
        ours, theirs = module.rollout({"sensory_drive": x})[0], candidates["dense"](x)
        for name in WORM_OUTPUTS:
            np.testing.assert_allclose(ours[name].cpu().numpy(), theirs[name].cpu().numpy(), rtol=1e-4, atol=1e-5)
        name, best = min(candidates.items(), key=lambda kv: _seconds(kv[1], x, run))
        found = timed(lambda: module.rollout({"sensory_drive": x}), lambda: best(x), run, 1)
    return (f"whole worm 1000 steps, torch, batch {batch} (hand: {name})", *found)


def _worm_jax_row(circuit: object, hand: Callable[[jax.Array], jax.Array], batch: int, rounds: int) -> Row:
    params = circuit.init()  # type: ignore[attr-defined]
    x = jnp.asarray(np.random.default_rng(0).uniform(0, 1, (batch, 1000)), jnp.float32)
    ours = jax.jit(lambda p, x: circuit.rollout(p, {"sensory_drive": x})[0])  # type: ignore[attr-defined]
    found, expected = ours(params, x), hand(x)
    for j, name in enumerate(WORM_OUTPUTS):
        np.testing.assert_allclose(found[name], expected[..., j], rtol=1e-4, atol=1e-5)
    found = ratio(lambda: jax.block_until_ready(ours(params, x)), lambda: jax.block_until_ready(hand(x)), rounds, 1)
    return (f"whole worm 1000 steps, JAX scan, batch {batch}", *found)


def _seconds(fn: Callable[[torch.Tensor], object], x: torch.Tensor, run: Run) -> float:
    fn(x)
    run.sync()
    start = time.perf_counter()
    fn(x)
    run.sync()
    return time.perf_counter() - start


def _hand_worm_jax(module: torch.nn.Module, ir: circuitdsl.CircuitIR) -> Callable[[jax.Array], jax.Array]:
    """The whole worm by hand in JAX: the torch hand version's matrices, one combined matrix, a scan; both outputs
    as [batch, time, 2] (WORM_OUTPUTS' order)."""
    matrix, into, rate, readout = (jnp.asarray(a) for a in _worm_matrices(module, ir))
    # full float32 products, as the compiled circuit's (a GPU's default would be TF32: 11 significant bits)
    dot = partial(jnp.matmul, precision=jax.lax.Precision.HIGHEST)

    @jax.jit
    def rollout(x: jax.Array) -> jax.Array:
        def step(carry: tuple[jax.Array, jax.Array], drive: jax.Array) -> tuple[tuple[jax.Array, jax.Array],
                                                                                 jax.Array]:
            v, out = carry
            v = v + rate * (-v + dot(out, matrix) + drive[:, None] * into)
            out = jnp.tanh(v)
            return (v, out), dot(out, readout)
        zeros = jnp.zeros((x.shape[0], matrix.shape[0]))
        return jnp.swapaxes(jax.lax.scan(step, (zeros, zeros), jnp.swapaxes(x, 0, 1))[1], 0, 1)
    return rollout


def _worm_matrices(module: torch.nn.Module, ir: circuitdsl.CircuitIR) -> tuple[np.ndarray, ...]:
    """(chemical + Laplacian, transposed; the drive's fan-out; dt / tau; the outputs' read-out matrix)."""
    params = {k: v.detach().numpy() for k, v in module.params.items()}
    n = ir.units
    total = np.zeros((n, n), np.float32)
    for p in ir.projections:
        if p.source.source != "N":  # type: ignore[union-attr]
            continue
        strength = np.maximum(params[param_key(p.weight.param)].reshape(-1), 0)
        w = (p.weight.sign.data * p.weight.scale.data).astype(np.float32) * strength
        m = np.zeros((n, n), np.float32)
        np.add.at(m, (p.connectivity.post.data, p.connectivity.pre.data), w)
        total += m if p.kind == "chemical" else (m + m.T) - np.diag((m + m.T).sum(1))
    drive = next(p for p in ir.projections if p.source.source == "sensory_drive")  # type: ignore[union-attr]
    into = np.zeros(n, np.float32)
    into[drive.target_select[0].indices.data] = params[param_key(drive.weight.param)].reshape(-1)
    return total.T.copy(), into, np.float32(10.0 / 50.0), worm_readout(ir)


# ---- a fly-scale graph -------------------------------------------------------------------------------------------


def fly(run: Run) -> list[Row]:
    with tempfile.TemporaryDirectory() as folder:
        fly_data(Path(folder))
        ir = circuitdsl.load(Path(folder) / "fly.circuit")
    module = circuitdsl.compile(ir).to(run.device)
    projection, n, batch, rate = ir.projections[0], ir.units, 4, 20.0 / 50.0
    state = module.initial_state(batch)
    state["cells:out"] = torch.from_numpy(np.random.default_rng(1).uniform(0, 1, (batch, n)).astype(np.float32)).to(
        run.device)
    pre, post = projection.connectivity.pre.data, projection.connectivity.post.data
    with torch.no_grad():
        strength = module.params[param_key(projection.weight.param)].reshape(-1).cpu().numpy()
    w = (projection.weight.sign.data * projection.weight.scale.data * strength[projection.weight.index.data])
    order = np.lexsort((pre, post))
    with warnings.catch_warnings():  # torch: "sparse CSR support is in beta"
        warnings.simplefilter("ignore")
        csr = torch.sparse_coo_tensor(torch.from_numpy(np.stack([post[order], pre[order]])),
                                      torch.from_numpy(w[order].astype(np.float32)), (n, n)).coalesce().to_sparse_csr()
        csr = csr.to(run.device)

    def hand_torch() -> torch.Tensor:
        v = state["cells.v"] + rate * (-state["cells.v"] + (csr @ state["cells:out"].T).T)
        return torch.relu(v)

    with torch.no_grad():
        np.testing.assert_allclose(module({}, state)[1]["cells:out"].cpu().numpy(), hand_torch().cpu().numpy(),
                                   rtol=1e-4, atol=1e-5)
        rows = [("fly-scale graph one step, torch, batch 4 (hand: CSR)",
                 *timed(lambda: module({}, state), hand_torch, run, 5))]
    circuit = circuitdsl.compile(ir, backend="jax")
    params = circuit.init()
    jstate = {k: jnp.asarray(v.cpu().numpy()) for k, v in state.items()}
    rows_sorted, cols, values = (jnp.asarray(a) for a in (post[order].astype(np.int32), pre[order].astype(np.int32),
                                                          w[order].astype(np.float32)))

    @jax.jit
    def hand_jax(s: dict[str, jax.Array]) -> jax.Array:
        total = jax.ops.segment_sum((s["cells:out"][:, cols] * values).T, rows_sorted, n, indices_are_sorted=True).T
        return jax.nn.relu(s["cells.v"] + rate * (-s["cells.v"] + total))

    # stepped with prepared parameters (`JaxCircuit.prepare`, once), as the torch module reuses its prepared
    # operator between inference calls and the hand step its weights; then on the raw parameters, each call
    # gathering the 1.5 M synapses' weights from the 605 shared strengths
    ours = jax.jit(lambda p, s: circuit.step(p, s)[1]["cells:out"])
    prepared = jax.jit(circuit.prepare)(params)
    for given, name in ((prepared, "fly-scale graph one step, JAX jit, batch 4, prepared (hand: segment sum)"),
                        (params, "  the same on the raw parameters (weights gathered per call)")):
        np.testing.assert_allclose(ours(given, jstate), hand_jax(jstate), rtol=1e-4, atol=1e-5)
        rows.append((name, *ratio(partial(_ready, ours, given, jstate), partial(_ready, hand_jax, jstate),
                                  run.rounds, 5)))
    return rows


def _ready(fn: Callable[..., jax.Array], *args: object) -> jax.Array:
    """fn(*args), waited for."""
    return jax.block_until_ready(fn(*args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds per row")
    parser.add_argument("--compile", action="store_true", help="also time NCAP under torch.compile (slow)")
    parser.add_argument("--only", default="", help="comma-separated row groups: ncap,jax,swim,worm,fly")
    parser.add_argument("--device", default="cpu",
                        help="the torch rows' device (cuda: a GPU); JAX runs on its default device")
    options = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    run = Run(options.rounds, torch.device(options.device))
    torch.backends.cuda.matmul.allow_tf32 = False  # float32 products in IEEE float32 on both sides (on a GPU)
    groups: dict[str, Callable[[], list[Row]]] = {
        "ncap": lambda: ncap_torch(run, False) + (ncap_torch(run, True) if options.compile else []),
        "jax": lambda: ncap_jax(options.rounds),
        "swim": lambda: swim("torch", options.rounds) + swim("jax", options.rounds),
        "worm": lambda: worm(run), "fly": lambda: fly(run)}
    chosen = [g for g in groups if not options.only or g in options.only.split(",")]
    print(f"torch {torch.__version__} on {run.device}, jax {jax.__version__} on {jax.default_backend()}, "
          "1 CPU thread; "
          "ratio = circuitdsl / hand-written")
    print(f"{'workload':<66}{'min':>8}{'median':>9}")
    for group in chosen:
        for name, low, middle in groups[group]():
            print(f"{name:<66}{low:>8.2f}{middle:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
