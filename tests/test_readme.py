"""The README's Python examples run as written, and its set-up commands are what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
EXAMPLES = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("source", EXAMPLES, ids=[f"example-{n}" for n in range(len(EXAMPLES))])
def test_readme_example_runs(source: str) -> None:
    """Each ```python block of the README executes without error (its asserts are the checks)."""
    exec(compile(source, str(README), "exec"), {"__name__": "readme_example"})


def test_readme_starts_with_the_demo_and_test_commands() -> None:
    """The first block of the README holds the two set-up commands: run the demo, run the tests."""
    first_block = re.search(r"```bash\n(.*?)```", README.read_text(), flags=re.DOTALL)
    assert first_block is not None
    lines = first_block.group(1).strip().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("otel-runtime demo")
    assert "pytest" in lines[1]
