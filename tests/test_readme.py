"""The README's code runs as written: each ```python block on its own in a fresh interpreter, each line of the
```sh blocks as a shell command, and its ```circuit block is in `circuitdsl fmt`'s layout.

Commands run in a scratch folder where `models/` is the repository's, so the files they write land there;
`circuitdsl` and `python` are this interpreter with this checkout on PYTHONPATH.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuitdsl.fmt import format_source
from tests.test_docs import README, blocks

ROOT = Path(__file__).resolve().parent.parent
BLOCKS = blocks(README)
PYTHON = [b for b in BLOCKS if b.kind == "python"]
SHELL = [b for b in BLOCKS if b.kind == "sh"]


def command_environment(folder: Path) -> dict[str, str]:
    """PATH with `circuitdsl` and `python` meaning this interpreter and this checkout."""
    bin_dir = folder / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, command in (("circuitdsl", f'"{sys.executable}" -m circuitdsl'), ("python", f'"{sys.executable}"')):
        script = bin_dir / name
        script.write_text(f'#!/bin/sh\nexec {command} "$@"\n', encoding="utf-8")
        script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT),
            "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}


def test_the_readme_has_code_to_run() -> None:
    assert len(PYTHON) >= 3 and len(SHELL) >= 2
    assert sum(1 for b in BLOCKS if b.kind == "circuit") == 1


def test_the_circuit_block_is_formatted() -> None:
    [block] = [b for b in BLOCKS if b.kind == "circuit"]
    assert format_source(block.text) == block.text


@pytest.mark.parametrize("block", PYTHON, ids=lambda b: b.id)
def test_python_block_runs_on_its_own(block: object, tmp_path: Path) -> None:
    text = block.text  # type: ignore[attr-defined]
    (tmp_path / "models").symlink_to(ROOT / "models")
    done = subprocess.run([sys.executable, "-"], input=text, capture_output=True, text=True, check=False,
                          cwd=tmp_path, env=command_environment(tmp_path), timeout=600)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("block", SHELL, ids=lambda b: b.id)
def test_shell_block_runs_line_by_line(block: object, tmp_path: Path) -> None:
    if shutil.which("dot") is None:
        pytest.skip("graphviz's dot is not installed (make installs it)")
    (tmp_path / "models").symlink_to(ROOT / "models")
    env = command_environment(tmp_path)
    for line in block.text.splitlines():  # type: ignore[attr-defined]
        command = line.split("  #")[0].strip()
        if not command:
            continue
        done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                              check=False, cwd=tmp_path, env=env, timeout=600)
        assert done.returncode == 0, f"{command}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        for written in re.findall(r"(?:-o|>|--plot|--save) (\S+)", command):
            assert (tmp_path / written).stat().st_size > 0, f"{command} did not write {written}"
