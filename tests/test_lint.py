"""The linter (ruff, configured in pyproject.toml) is clean on the package, the tests and the
benchmarks."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINTED = ("lightgcn_helpers", "tests", "benchmarks", "tools")


def _ruff() -> str | None:
    """The ruff next to this Python (a virtual environment's bin/), else the one on PATH."""
    here = Path(sys.executable).parent / "ruff"
    return str(here) if here.is_file() else shutil.which("ruff")


def test_ruff_is_clean():
    ruff = _ruff()
    if ruff is None:
        pytest.skip("ruff is not installed (pip install -r requirements.txt pins it)")
    proc = subprocess.run([ruff, "check", "--no-cache", "--output-format", "concise", *LINTED],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
