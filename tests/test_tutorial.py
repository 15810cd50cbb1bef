"""docs/tutorial/ runs as written: each page in a scratch folder, as docs/tutorial/index.md describes.

Its ```circuit `# file:` blocks are written first, then each line of its ```sh blocks runs (with the exit status
its `# exit N` comment names, 0 otherwise; a ```text block after a ```sh block is what its last command
prints), then its ```python blocks run in order as one program.  `circuitdsl` and `python` are this interpreter
with this checkout on PYTHONPATH; the folder holds the tutorial's circuit files and a link to models/.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from circuitdsl.fmt import format_source
from tests.test_docs import Block, blocks
from tests.test_readme import command_environment

ROOT = Path(__file__).resolve().parent.parent
TUTORIAL = ROOT / "docs" / "tutorial"
PAGES = sorted(TUTORIAL.glob("[0-9]-*.md"))
_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def test_the_index_lists_every_page_in_order() -> None:
    index = (TUTORIAL / "index.md").read_text(encoding="utf-8")
    assert re.findall(r"\]\((\d-[a-z-]+\.md)\)", index) == [p.name for p in PAGES] and len(PAGES) == 7


def test_the_first_circuit_is_the_shipped_file_and_formatted() -> None:
    page = blocks(TUTORIAL / "2-first-circuit.md")
    [shown] = [b for b in page if b.kind == "circuit" and b.file == "reflex.circuit"]
    shipped = (TUTORIAL / "reflex.circuit").read_text(encoding="utf-8")
    assert shown.text.split("\n", 1)[1] == shipped == format_source(shipped)


def _run_commands(page: list[Block], folder: Path, env: dict[str, str]) -> None:
    for number, block in enumerate(page):
        if block.kind != "sh":
            continue
        printed = ""
        for line in block.text.splitlines():
            command, _, comment = line.partition("  #")
            if not command.strip():
                continue
            expected = int(_EXIT.search(f"#{comment}")[1]) if _EXIT.search(f"#{comment}") else 0  # type: ignore[index]
            done = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True,
                                  check=False, cwd=folder, env=env, timeout=600)
            assert done.returncode == expected, f"{block.id}: {command}\n{done.stderr}"
            assert "Traceback" not in done.stderr, done.stderr
            printed = done.stdout + done.stderr
        following = page[number + 1] if number + 1 < len(page) else None
        if following is not None and following.kind == "text":
            assert printed.rstrip() == following.text.rstrip(), f"{following.id} is not what `{command}` prints"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_page_runs_as_written(path: Path, tmp_path: Path) -> None:
    if shutil.which("dot") is None and "draw" in path.stem:
        pytest.skip("graphviz's dot is not installed (make installs it)")
    page = blocks(path)
    (tmp_path / "models").symlink_to(ROOT / "models")
    for circuit in TUTORIAL.glob("*.circuit"):
        shutil.copy(circuit, tmp_path / circuit.name)
    for block in page:
        if block.kind == "circuit" and block.file is not None:
            (tmp_path / block.file).write_text(block.text, encoding="utf-8")
    env = command_environment(tmp_path)
    _run_commands(page, tmp_path, env)
    program = "\n\n".join(b.text for b in page if b.kind == "python")
    if program:
        done = subprocess.run([sys.executable, "-"], input=program, capture_output=True, text=True, check=False,
                              cwd=tmp_path, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
