"""Every example of docs/language.md (and README.md) is checked against the implementation.

How the fenced blocks of docs/language.md are read:

- ```circuit          a complete file that must work: it is parsed with `circuitdsl.parse`, and, when it
                      defines a circuit, elaborated with `circuitdsl.loads(text, file="docs.circuit")`
                      (the last circuit of the block, with its default arguments).  A block that only
                      defines neurons is parsed only.
- ```circuit-error    a complete file with an intentional mistake: parsing and elaborating it must raise
                      `circuitdsl.CircuitError` (a syntax error counts).
- ```circuit-fragment shown only, never run (a statement out of its context).
- other fences (```json, ```sh, ```python, ```text, plain ```) are not circuit code and are not run.

Files that import files: a ```circuit or ```circuit-error block whose first line is `# file: NAME.circuit`
is a file called NAME.circuit (a relative path; folders are created).  Before such a block is checked,
every `# file:` block of the same section (the text between two `## ` headings) is written under pytest's
tmp_path, so the blocks of a section can import each other; the block is then checked as above, but
loaded from its path with `circuitdsl.load` so that its imports resolve relative to it.

README.md: each of its ```circuit blocks must elaborate the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import circuitdsl
from circuitdsl import ast

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = ROOT / "docs" / "language.md"
README = ROOT / "README.md"

KINDS = {"circuit", "circuit-error", "circuit-fragment"}
OTHER_FENCES = {"", "json", "sh", "shell", "console", "python", "text"}
_FILE_HEADER = re.compile(r"#\s*file:\s*(\S+)\s*$")


@dataclass(frozen=True)
class Block:
    kind: str  # the fence's info string
    text: str
    line: int  # line of the opening fence, 1-based
    section: str  # the `## ` heading above it ("" before the first)
    source: str  # the markdown file's name, for test ids

    @property
    def file(self) -> str | None:
        """The name given by a first line `# file: NAME.circuit`, if any."""
        first = self.text.split("\n", 1)[0]
        match = _FILE_HEADER.match(first.strip())
        return match.group(1) if match else None

    @property
    def id(self) -> str:
        return f"{self.source}:{self.line}"


def blocks(path: Path) -> list[Block]:
    """Every fenced block of a markdown file, with its info string and section."""
    found: list[Block] = []
    section = ""
    fence: tuple[str, int] | None = None
    body: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if fence is None:
            if line.startswith("```"):
                fence = (line[3:].strip(), number)
                body = []
            elif line.startswith("## "):
                section = line[3:].strip()
        elif line.startswith("```"):
            found.append(Block(fence[0], "\n".join(body) + "\n", fence[1], section, path.name))
            fence = None
        else:
            body.append(line)
    assert fence is None, f"{path.name}:{fence[1]}: unclosed code fence"
    return found


def defines_circuit(module: ast.Module) -> bool:
    return any(isinstance(item, ast.Definition) and item.keyword == "circuit" for item in module.items)


def write_section_files(block: Block, all_blocks: list[Block], folder: Path) -> Path:
    """Write every `# file:` block of the block's section under `folder`; return the block's own path."""
    names: dict[str, int] = {}
    for other in all_blocks:
        if other.section == block.section and other.kind in ("circuit", "circuit-error") and other.file:
            assert other.file not in names, (f"{other.id}: file {other.file} is also written at line "
                                              f"{names[other.file]} of the same section")
            names[other.file] = other.line
            target = folder / other.file
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(other.text, encoding="utf-8")
    assert block.file is not None
    return folder / block.file


def check_works(block: Block, all_blocks: list[Block], folder: Path) -> None:
    if block.file is None:
        module = circuitdsl.parse(block.text, "docs.circuit")
        if defines_circuit(module):
            circuitdsl.loads(block.text, file="docs.circuit")
        return
    path = write_section_files(block, all_blocks, folder)
    module = circuitdsl.parse(block.text, str(path))
    if defines_circuit(module):
        circuitdsl.load(path)


def check_fails(block: Block, all_blocks: list[Block], folder: Path) -> None:
    with pytest.raises(circuitdsl.CircuitError):
        if block.file is None:
            circuitdsl.parse(block.text, "docs.circuit")
            circuitdsl.loads(block.text, file="docs.circuit")
        else:
            path = write_section_files(block, all_blocks, folder)
            circuitdsl.parse(block.text, str(path))
            circuitdsl.load(path)


LANGUAGE_BLOCKS = blocks(LANGUAGE)
WORKING = [b for b in LANGUAGE_BLOCKS if b.kind == "circuit"]
FAILING = [b for b in LANGUAGE_BLOCKS if b.kind == "circuit-error"]


@pytest.mark.parametrize("block", WORKING, ids=[b.id for b in WORKING])
def test_language_example_works(block: Block, tmp_path: Path) -> None:
    check_works(block, LANGUAGE_BLOCKS, tmp_path)


@pytest.mark.parametrize("block", FAILING, ids=[b.id for b in FAILING])
def test_language_error_example_raises(block: Block, tmp_path: Path) -> None:
    check_fails(block, LANGUAGE_BLOCKS, tmp_path)


def test_fences_are_known() -> None:
    """A misspelt fence (```circuits, ```circuit_error) would silently skip an example."""
    unknown = [f"{b.id}: ```{b.kind}" for b in LANGUAGE_BLOCKS if b.kind not in KINDS | OTHER_FENCES]
    assert not unknown, "unknown code fences: " + ", ".join(unknown)


def test_every_section_has_a_checked_example() -> None:
    sections = dict.fromkeys(b.section for b in LANGUAGE_BLOCKS)
    headings = [line[3:].strip() for line in LANGUAGE.read_text(encoding="utf-8").splitlines()
                if line.startswith("## ")]
    checked = {b.section for b in WORKING + FAILING}
    missing = [h for h in headings if h not in checked]
    assert headings and sections, "docs/language.md has no sections"
    assert not missing, "sections without a ```circuit or ```circuit-error example: " + ", ".join(missing)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_internal_links_resolve() -> None:
    text = LANGUAGE.read_text(encoding="utf-8")
    outside_code = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    anchors = {_slug(line.lstrip("#")) for line in outside_code.splitlines() if line.startswith("#")}
    broken = sorted(set(re.findall(r"\]\(#([^)]+)\)", outside_code)) - anchors)
    assert not broken, "links to no heading: " + ", ".join(broken)


def test_fragments_are_few() -> None:
    fragments = [b for b in LANGUAGE_BLOCKS if b.kind == "circuit-fragment"]
    assert len(fragments) <= len(WORKING) // 5, "prefer complete, tested examples to fragments"


README_BLOCKS = [b for b in blocks(README) if b.kind == "circuit"] if README.exists() else []


def test_readme_examples_elaborate(tmp_path: Path) -> None:
    """Each ```circuit block of README.md parses and elaborates (skipped while README marks none so)."""
    if not README_BLOCKS:
        pytest.skip("README.md has no ```circuit block to check")
    for block in README_BLOCKS:
        check_works(block, README_BLOCKS, tmp_path)
