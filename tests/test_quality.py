"""The package passes `ruff check` and `mypy --strict`, as the project promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
LINTED = [name for name in ("otel_runtime", "tests", "examples", "bench") if (ROOT / name).exists()]


@pytest.mark.parametrize(
    "command",
    [[sys.executable, "-m", "ruff", "check", *LINTED], [sys.executable, "-m", "mypy"]],
    ids=["ruff", "mypy"],
)
def test_static_checks_pass(command: list[str]) -> None:
    """ruff finds nothing in the code, and mypy --strict (configured in pyproject.toml) finds no error."""
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
