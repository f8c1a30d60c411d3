"""`otel-runtime demo` runs the example flow and says where its telemetry went."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import iter_spans, read_records


def test_demo_writes_its_trace_to_the_embedded_default_and_prints_the_trace_id(tmp_path: Path) -> None:
    """The demo prints the trace id and file; the file holds the flow, subflow, retried and mapped tasks."""
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, "-m", "otel_runtime.cli", "demo"], cwd=tmp_path, env=environment,
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    trace_id = re.search(r"trace id: ([0-9a-f]{32})", result.stdout)
    assert trace_id is not None, result.stdout
    telemetry_file = tmp_path / ".otel_runtime" / "telemetry.jsonl"
    assert str(telemetry_file) in result.stdout
    spans = [span for record in read_records(telemetry_file) for span in iter_spans(record)]
    assert {span["trace_id"] for span in spans} == {trace_id.group(1)}
    by_name = {span["name"]: span for span in spans}
    assert set(by_name) == {"flow demo-etl", "flow report", "task extract", "task square"}
    assert by_name["task extract"]["attributes"][_keys.TASK_RUN_RUN_COUNT] == 2
    assert [event["name"] for event in by_name["task extract"]["events"]] == ["exception", "retry"]
    assert by_name["flow report"]["parent_span_id"] == by_name["flow demo-etl"]["span_id"]
    assert all(span["attributes"][_keys.DEPLOYMENT_NAME] == "demo" for span in spans)
