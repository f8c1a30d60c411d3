"""A running run is visible before it ends: its start event reaches a real OTLP receiver and the file."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import iter_logs, iter_spans, read_records
from otel_runtime.testing import OtlpReceiver

SLEEPING_FLOW = """
import sys, time
from otel_runtime import configure, deployment, flow, task

@task
def warm_up() -> int:
    return 1

@flow(flow_run_name="long-run")
def long_etl(seconds: float) -> None:
    warm_up()
    print("running", flush=True)
    time.sleep(seconds)

configure(service_name="live-test")
with deployment("nightly"):
    long_etl(float(sys.argv[1]))
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def start(tmp_path: Path, seconds: float, **env: str) -> subprocess.Popen[str]:
    """The sleeping flow in a child process with the run events on, its logs batched every 100 ms."""
    script = tmp_path / "sleeping.py"
    script.write_text(SLEEPING_FLOW)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment |= {"OTEL_BLRP_SCHEDULE_DELAY": "100", "OTEL_BSP_SCHEDULE_DELAY": "100", **env}
    return subprocess.Popen(
        [sys.executable, str(script), str(seconds)],
        env=environment,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_running_flow_reaches_an_otlp_receiver_as_its_start_event_with_its_ids(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """While the flow still sleeps, the receiver has its start event (and no flow span); when it ends,
    the end event arrives, and both carry the trace and span ids of the flow's span."""
    process = start(
        tmp_path, 3.0, OTEL_EXPORTER_OTLP_ENDPOINT=receiver.grpc_endpoint, OTEL_METRICS_EXPORTER="none"
    )
    try:
        deadline = time.monotonic() + 20
        started = []
        while not started and time.monotonic() < deadline:
            started = [
                log
                for log in receiver.logs()
                if log["event_name"] == _keys.RUN_START_EVENT and log["attributes"][_keys.RUN_TYPE] == "flow"
            ]
            time.sleep(0.05)
        assert process.poll() is None, "the flow ended before its start event was seen"
        assert started, "no start event arrived while the flow ran"
        assert not [span for span in receiver.spans() if span["name"] == "flow long_etl"]
        assert started[0]["attributes"][_keys.LOG_FLOW_RUN_NAME] == "long-run"
        assert started[0]["attributes"][_keys.LOG_DEPLOYMENT_NAME] == "nightly"
    finally:
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    (flow_span,) = [span for span in receiver.wait_for_spans(2) if span["name"] == "flow long_etl"]
    events = [log for log in receiver.logs() if log["event_name"] in _keys.RUN_EVENTS]
    flow_events = [log for log in events if log["span_id"] == flow_span["span_id"]]
    assert [log["event_name"] for log in flow_events] == [_keys.RUN_START_EVENT, _keys.RUN_END_EVENT]
    assert {log["trace_id"] for log in events} == {flow_span["trace_id"]}
    assert flow_events[-1]["attributes"][_keys.RUN_STATE_TYPE] == "COMPLETED"
    assert flow_events[-1]["attributes"][_keys.RUN_DURATION_S] >= 3.0
    task_span = next(span for span in receiver.spans() if span["name"] == "task warm_up")
    assert {log["span_id"] for log in events} == {flow_span["span_id"], task_span["span_id"]}


def test_a_running_flow_is_in_the_telemetry_file_before_it_ends(tmp_path: Path) -> None:
    """With the local file, the start event of a still-running flow is in the file within seconds."""
    telemetry = tmp_path / "telemetry.jsonl"
    process = start(tmp_path, 3.0, OTEL_RUNTIME_TELEMETRY_FILE=str(telemetry))
    try:
        deadline = time.monotonic() + 20
        starts: list[str] = []
        while not starts and time.monotonic() < deadline:
            if telemetry.exists():
                starts = [
                    log["attributes"][_keys.RUN_TYPE]
                    for record in read_records(telemetry)
                    for log in iter_logs(record)
                    if log["event_name"] == _keys.RUN_START_EVENT
                ]
            time.sleep(0.05)
        assert process.poll() is None, "the flow ended before its start event was in the file"
        assert "flow" in starts
        spans = [span["name"] for record in read_records(telemetry) for span in iter_spans(record)]
        assert "flow long_etl" not in spans
    finally:
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
