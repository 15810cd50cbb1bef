"""What circuitdsl reads from cect is kept in the per-user cache (circuitdsl/connectome/cect_data.py): a later
process reads it there and never imports cect; a damaged file is read from cect again; no cache, no files."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from circuitdsl.connectome import cect_data, worm

ROOT = Path(__file__).parent.parent
CIRCUIT = ('import celegans\ncircuit C {\n  net = celegans.connectome("Varshney", neurons = {AVA, AVB, DD, VD, motor}, missing = drop, '
           'synapses = {chemical, electrical}, sign = c302, self_junctions = drop)\n  population N : Leaky from net\n}\n')
SCRIPT = ("import sys, circuitdsl; ir = circuitdsl.loads(sys.argv[1]); "
          "print(ir.to_json()); print('cect' in sys.modules)")
CACHED = (cect_data.load, cect_data.cells, cect_data.views, cect_data.transmitters, worm.worm)


@pytest.fixture
def fresh_data() -> Iterator[None]:
    """Each test reads the data itself; the process's own copies are read again afterwards."""
    for fn in CACHED:
        fn.cache_clear()
    yield
    for fn in CACHED:
        fn.cache_clear()


def test_a_second_process_reads_the_cache_and_does_not_import_cect(tmp_path: Path) -> None:
    env = {**os.environ, "CIRCUITDSL_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT)}
    first = subprocess.run([sys.executable, "-c", SCRIPT, CIRCUIT], env=env, capture_output=True, text=True,
                           check=True)
    stored = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("cect-"))
    version = cect_data.version()
    assert stored == [f"cect-{version}-{name}" for name in ("Varshney.npz", "cells.json", "transmitters.json")]
    second = subprocess.run([sys.executable, "-c", SCRIPT, CIRCUIT], env=env, capture_output=True, text=True,
                            check=True)
    assert first.stdout.splitlines()[-1] == "True" and second.stdout.splitlines()[-1] == "False"
    assert first.stdout.splitlines()[:-1] == second.stdout.splitlines()[:-1]  # the same IR, to the byte
    assert first.stderr == second.stderr == ""


def test_cached_data_equals_what_cect_gives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_data: None) -> None:
    monkeypatch.setenv("CIRCUITDSL_CACHE", str(tmp_path))
    direct = {"load": cect_data._dataset("Varshney"), "cells": cect_data._cells(),
              "views": cect_data._views(), "transmitters": cect_data._transmitters()}
    for _ in range(2):  # written, then read back
        for fn in CACHED:
            fn.cache_clear()
        data = cect_data.load("Varshney")
        assert data.nodes == direct["load"].nodes and data.weights == direct["load"].weights
        np.testing.assert_array_equal(data.chemical, direct["load"].chemical)
        np.testing.assert_array_equal(data.electrical, direct["load"].electrical)
        assert cect_data.cells() == direct["cells"]
        assert cect_data.views() == direct["views"]
        assert cect_data.transmitters() == direct["transmitters"]
    assert len(list(tmp_path.glob("cect-*"))) == 4


def test_a_damaged_cache_file_is_read_from_cect_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     fresh_data: None) -> None:
    monkeypatch.setenv("CIRCUITDSL_CACHE", str(tmp_path))
    want = (cect_data.load("Varshney"), cect_data.cells(), cect_data.transmitters())
    files = sorted(tmp_path.glob("cect-*"))  # the npz, cells, transmitters
    assert len(files) == 3
    for damage in ([b"", b"not json {", b'{"AVAL": 3}'], [b"PK\x03\x04 truncated", b"[1, 2]", b"{}"]):
        for path, text in zip(files, damage, strict=True):
            path.write_bytes(text)
        for fn in CACHED:
            fn.cache_clear()
        got = (cect_data.load("Varshney"), cect_data.cells(), cect_data.transmitters())
        np.testing.assert_array_equal(got[0].chemical, want[0].chemical)
        assert got[0].nodes == want[0].nodes and got[1:] == want[1:]
        assert all(path.read_bytes() not in damage for path in files)  # written anew


def test_without_a_cache_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fresh_data: None) -> None:
    monkeypatch.setenv("CIRCUITDSL_CACHE", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert "AVAL" in cect_data.load("Varshney").position
    assert "GABA" in cect_data.transmitters()["DD1"]
    assert list(tmp_path.iterdir()) == []
