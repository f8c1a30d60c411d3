"""Every script in examples/ runs as a user would run it and prints what its docstring promises."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def _run(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script)], cwd=cwd, env=environment,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def test_prefect_port_prints_the_same_answers_as_prefect(tmp_path: Path) -> None:
    """The ported Prefect script logs its flow run name, deployment None, task run name and parameters,
    as Prefect does: run logger lines on stderr, ``| INFO    | Flow run '<name>' - <message>``."""
    output = _run("prefect_port.py", tmp_path).stderr
    line = r"^\d\d:\d\d:\d\d\.\d{3} \| INFO    \| Flow run '[a-z]+-[a-z]+' - My name is "
    assert re.search(line, output, re.MULTILINE)
    assert "I belong to deployment None" in output
    assert "Flow run parameters: {'x': 1}" in output
    assert "My name is my_task-" in output


def test_nightly_deployment_writes_a_deployment_trace_to_the_embedded_file(tmp_path: Path) -> None:
    """The deployment example prints its summary and writes spans of its runs to the JSON-lines file."""
    output = _run("nightly_deployment.py", tmp_path).stdout
    assert output.startswith("nightly-etl: 9 rows (subflow of ")
    lines = (tmp_path / ".otel_runtime" / "telemetry.jsonl").read_text().splitlines()
    names = {
        span["name"]
        for line in lines
        for resource in json.loads(line).get("resourceSpans", [])
        for scope in resource["scopeSpans"]
        for span in scope["spans"]
    }
    assert names == {"flow nightly", "flow summarize", "task load"}
