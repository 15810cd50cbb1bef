"""The documentation site (mkdocs.yml) builds with --strict, its API reference generated from the docstrings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_without_warnings_and_documents_the_api(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          capture_output=True, text=True, check=False, cwd=ROOT, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr, done.stderr
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    for documented in ("circuitdsl.api.load", "circuitdsl.backends.compile_circuit", "circuitdsl.fmt.format_source",
                       "circuitdsl.errors.CircuitError", "circuitdsl.report.ir_schema"):
        assert f'id="{documented}"' in api, documented
    assert "Elaborate a circuit of a file" in api  # load's docstring
    for page in ("tutorial/5-train-torch", "language", "errors"):
        assert (tmp_path / "site" / page / "index.html").is_file()
