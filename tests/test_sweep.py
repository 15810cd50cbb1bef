"""Sweeps: a spec checked before anything runs, a CI-sized grid on a local Ray instance that survives a killed
worker and resumes without duplicates, ES that stands still on ties, and a closed-loop run's full reward count."""

from __future__ import annotations

import csv
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import circuitdsl
from circuitdsl.cli import main
from circuitdsl.envs.es import ESConfig, centred_ranks, evolve
from circuitdsl.errors import CircuitError
from circuitdsl.sweep import report, runner, spec

ROOT = Path(__file__).resolve().parents[1]
SWIMMER = ROOT / "models" / "ncap_swimmer.circuit"
CI_SPEC = f"""
[sweep]
name = "CI sweep"
output = "out"
seeds = 2

[task]
joints = 4
episode_steps = 30

[[trainer]]
name = "es"
generations = 1
population = 2
eval_every = 1
backend = "torch"

[[variant]]
name = "NCAP"
model = "{SWIMMER.as_posix()}"
args = {{ init = ["1", "uniform(0, 1)"] }}
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


# ---- the spec -------------------------------------------------------------------------------------------------
def test_spec_expands_the_grid(tmp_path: Path) -> None:
    checked = spec.load(_write(tmp_path, CI_SPEC))
    assert [(u.args["init"], u.seed) for u in checked.units] == [("1", 0), ("uniform(0, 1)", 0), ("1", 1),
                                                                  ("uniform(0, 1)", 1)]
    assert len({u.run_id for u in checked.units}) == 4 and checked.output == tmp_path / "out"


@pytest.mark.parametrize(("change", "code", "line", "words"), [
    (("init = [", "inti = ["), "E203", 21, "did you mean 'init'?"),
    (("uniform(0, 1)", "uniform(1, 0)"), "E801", 21, "high must not be below low"),
    (("generations", "generatons"), "E203", 13, "did you mean 'generations'?"),
    (("joints = 4", 'env = "swimm"\njoints = 4'), "E201", 8, "did you mean 'swim'?"),
    (('name = "es"', 'name = "ess"'), "E201", 12, "did you mean 'es'?"),
    (("ncap_swimmer.circuit", "no_such.circuit"), "E104", 20, "no circuit file"),
])
def test_a_bad_spec_fails_before_anything_runs(tmp_path: Path, change: tuple[str, str], code: str, line: int,
                                               words: str) -> None:
    with pytest.raises(CircuitError) as info:
        spec.load(_write(tmp_path, CI_SPEC.replace(*change)))
    assert info.value.code == code and words in info.value.render()
    assert info.value.span is not None and info.value.span.line == line
    assert not (tmp_path / "out").exists()


def test_dry_run_lists_the_cells(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sweep", "--dry-run", str(_write(tmp_path, CI_SPEC))]) == 0
    out = capsys.readouterr().out
    assert "NCAP [init=uniform(0, 1)] | swim | 4 joints | es | seeds 0, 1 (0/2 done)" in out
    assert out.strip().endswith("2 cells, 4 runs, 0 done")


def test_the_shipped_ncap_study_is_the_whole_grid() -> None:
    study = spec.load(ROOT / "examples" / "ncap_ablations.toml")  # every circuit variant elaborated per body size
    at_init = [u for u in study.units if u.trainer == "none"]
    trained = [u for u in study.units if u.trainer == "es"]
    assert len(study.variants) == 7 and "MLP" in study.variants
    assert {u.joints for u in at_init} == {3, 5, 7, 9, 11, 13} and {u.seed for u in at_init} == set(range(10))
    assert len(at_init) == 7 * 6 * 10 and len(trained) == 7 * 5 and {u.joints for u in trained} == {5}
    assert len({u.run_id for u in study.units}) == len(study.units)


# ---- ES and the closed loop ------------------------------------------------------------------------------------
def test_centred_ranks_share_ties() -> None:
    assert np.array_equal(centred_ranks(np.array([5.0, 5.0, 5.0, 5.0])), np.zeros(4))
    assert np.array_equal(centred_ranks(np.array([3.0, 1.0, 2.0])), np.array([0.5, -0.5, 0.0]))


class _Flat:
    """A controller whose every member scores the same (a signs-off swimmer stuck at zero weights)."""

    def __init__(self) -> None:
        self.theta = np.zeros(4)

    def vector(self) -> np.ndarray:
        return self.theta.copy()

    def set_vector(self, vector: np.ndarray) -> None:
        self.theta = np.asarray(vector, dtype=np.float64)

    def returns(self, vectors: np.ndarray, seeds: list[int], steps: int) -> np.ndarray:
        return np.zeros((len(vectors), len(seeds)))


def test_es_stands_still_when_every_member_ties() -> None:
    flat = _Flat()
    evolve(flat, ESConfig(population=8, weight_decay=0.0), 5, np.random.default_rng(0))  # type: ignore[arg-type]
    assert np.array_equal(flat.vector(), np.zeros(4))


def test_run_with_the_swimmer_counts_every_step(capsys: pytest.CaptureFixture[str]) -> None:
    from circuitdsl.envs.swim import CircuitPolicy, run_episodes

    assert main(["run", str(SWIMMER), "--env", "swim", "--steps", "40"]) == 0
    printed = float(capsys.readouterr().out.split("swim return over 40 steps: ")[1].split()[0])
    expected = run_episodes(CircuitPolicy(circuitdsl.compile(SWIMMER, seed=0)), seeds=[0], steps=40)[0]
    assert printed == pytest.approx(expected, abs=0.05)


# ---- on Ray ---------------------------------------------------------------------------------------------------
# Ray starts its processes by forking; JAX, imported by other tests of the session, warns at every fork
ON_RAY = [pytest.mark.filterwarnings("ignore:os.fork\\(\\) was called:RuntimeWarning"),
          pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")]


@pytest.fixture(scope="session")
def ray_instance() -> Iterator[None]:
    """One local Ray instance with two workers for every test that sweeps (its start-up is the main cost)."""
    ray = pytest.importorskip("ray")
    runner.start(ray, None, 2)
    yield
    ray.shutdown()


_POLL = 0.01  # seconds between the killer's looks for the worker


class _Killer(threading.Thread):
    """Kills (SIGKILL) the worker of one run mid-run, whatever the machine's load.

    The run's marker (`running/<run_id>.pid`, which the worker writes first thing) is made a FIFO whose buffer is
    already full, so the worker blocks in that write; the killer finds it as the process holding the FIFO open,
    removes the FIFO (a retry writes a plain marker) and kills it.  Gives up after about `patience` seconds of looks,
    releasing a blocked writer (its write then fails), so a broken sweep fails the test instead of hanging it."""

    def __init__(self, folder: Path, run_id: str, patience: float = 120.0) -> None:
        super().__init__(daemon=True)
        self.fifo, self.patience, self.killed = folder / "running" / f"{run_id}.pid", patience, list[int]()
        self.fifo.parent.mkdir(parents=True)
        os.mkfifo(self.fifo)
        self.handle = os.open(self.fifo, os.O_RDWR | os.O_NONBLOCK)  # a reader, so the worker's open returns
        try:
            while True:
                os.write(self.handle, b"x" * 4096)
        except BlockingIOError:
            pass

    def run(self) -> None:
        holder = None
        for _ in range(round(self.patience / _POLL)):  # bounded by a count of looks, not by reading a clock
            holder = _holder(self.fifo)
            if holder is not None:
                break
            time.sleep(_POLL)
        self.fifo.unlink()
        if holder is not None:
            os.kill(holder, signal.SIGKILL)
            self.killed.append(holder)
        os.close(self.handle)


def _holder(path: Path) -> int | None:
    """The process, other than this one, that has `path` open (read from /proc)."""
    for link in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(link) == str(path) and int(link.parts[2]) != os.getpid():
                return int(link.parts[2])
        except OSError:  # the process or descriptor went away while we looked
            continue
    return None


def _table(folder: Path) -> list[dict[str, str]]:
    with (folder / "results.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


@ON_RAY[0]
@ON_RAY[1]
def test_a_killed_worker_loses_nothing_and_a_rerun_adds_nothing(tmp_path: Path, ray_instance: None) -> None:
    path = _write(tmp_path, CI_SPEC)
    killer = _Killer(tmp_path / "out", spec.load(path).units[0].run_id)
    killer.start()
    result = circuitdsl.sweep(path, progress=False)
    killer.join()
    assert len(killer.killed) == 1 and result.ran == 4 and not result.failed
    rows = _table(tmp_path / "out")
    keys = [(r["run_id"], r["generation"]) for r in rows]
    assert len(rows) == 4 * 2 and len(set(keys)) == len(keys)  # 4 runs x (init, after generation 1)
    assert {r["args"] for r in rows} == {"init=1", "init=uniform(0, 1)"}
    again = circuitdsl.sweep(path, progress=False)
    assert (again.ran, again.skipped) == (0, 4) and _table(tmp_path / "out") == rows
    elsewhere = runner.plan(spec.load(path, tmp_path / "other"))  # --output: another ledger, nothing done there
    assert len(elsewhere) == 4 and not any(done for _, done in elsewhere)
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "| NCAP [init=1] | swim | 4 |" in summary and (tmp_path / "out" / "learning_curves.png").exists()
    aggregated = report.aggregate(report.pd.read_csv(tmp_path / "out" / "results.csv"))
    assert set(aggregated["n"]) == {2}


@ON_RAY[0]
@ON_RAY[1]
def test_a_run_that_keeps_failing_is_reported_and_retried_next_time(tmp_path: Path, ray_instance: None) -> None:
    path = _write(tmp_path, CI_SPEC.replace("seeds = 2", "seeds = [0]").replace('["1", "uniform(0, 1)"]', '"1"'))
    killer = _Killer(tmp_path / "out", spec.load(path).units[0].run_id)
    killer.start()
    result = circuitdsl.sweep(path, retries=0, progress=False)
    killer.join()
    assert len(killer.killed) == 1
    assert result.ran == 0 and len(result.failed) == 1 and result.failed[0][1] == 0
    assert not (tmp_path / "out" / "results.csv").exists()
    again = circuitdsl.sweep(path, retries=0, progress=False)
    assert again.ran == 1 and not again.failed and len(_table(tmp_path / "out")) == 2
