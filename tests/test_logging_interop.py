"""configure_logging() beside OpenTelemetry's own log handlers: the SDK's LoggingHandler and
opentelemetry-instrumentation-logging's (with OTEL_PYTHON_LOG_CORRELATION), and during an outage.

Every handler sees each structlog event as an ordinary record: the message is the event text, the
event fields and run fields are record attributes. Each event is exported once, with a text body and
no SDK warning, and printed once whatever the order of set-up; an outage prints one warning.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import structlog
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_runtime import flow, task
from otel_runtime.logging import configure_logging, get_run_logger
from otel_runtime.testing import CapturedSpans, OtlpReceiver

BODIES = ["extracted", "slow source s3", "run logger line"]


def log_three_lines() -> None:
    """Inside a task run: a structlog event, a stdlib record from a library, a run logger line."""

    @task
    def extract() -> None:
        structlog.get_logger("etl").info("extracted", rows=3, filename="in.csv", tags=["a", "b"])
        logging.getLogger("lib").warning("slow source %s", "s3")
        get_run_logger().info("run logger line", step=1)

    @flow
    def etl() -> None:
        extract()

    etl()


def test_the_sdks_logging_handler_exports_structlog_events_as_text_with_attributes(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    """The SDK's LoggingHandler on the root logger beside configure_logging(): one record per line, its
    body the text, event and run fields as attributes, no _logger/_name, and no SDK warning."""
    from opentelemetry.sdk._logs import LoggingHandler

    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    with pytest.warns(DeprecationWarning, match="deprecated"):
        sdk_handler = LoggingHandler(logger_provider=provider)
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger().addHandler(sdk_handler)
    try:
        log_three_lines()
    finally:
        logging.getLogger().removeHandler(sdk_handler)
        provider.shutdown()
    records = [record.log_record for record in exporter.get_finished_logs()]
    assert [record.body for record in records] == BODIES
    extracted = dict(records[0].attributes or {})
    trace_id = trace.format_trace_id(spans.find("task extract").context.trace_id)
    assert (extracted["rows"], extracted["filename_"], extracted["tags"]) == (3, "in.csv", ("a", "b"))
    assert (extracted["trace_id"], extracted["task_run_id"] is not None) == (trace_id, True)
    assert dict(records[2].attributes or {})["step"] == 1
    assert not {"_logger", "_name", "_record", "event"} & {key for r in records for key in r.attributes or {}}
    sdk_warnings = [r for r in caplog.records if r.name.startswith("opentelemetry") and r.levelno >= 30]
    assert sdk_warnings == []
    assert len(stream.getvalue().splitlines()) == 3


_SCRIPT = """
import logging, sys
import structlog
from opentelemetry import trace
from opentelemetry._logs import set_logger_provider
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.instrumentation.logging import LoggingInstrumentor
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.trace import TracerProvider
from otel_runtime.logging import configure_logging
sys.path.insert(0, sys.argv[3])
from test_logging_interop import log_three_lines

trace.set_tracer_provider(TracerProvider())
provider = LoggerProvider()
provider.add_log_record_processor(
    SimpleLogRecordProcessor(OTLPLogExporter(endpoint=sys.argv[1], insecure=True))
)
set_logger_provider(provider)
if sys.argv[2] == "instrument-first":
    LoggingInstrumentor().instrument()
    configure_logging(json=True)
else:
    configure_logging(json=True)
    LoggingInstrumentor().instrument()
log_three_lines()
provider.shutdown()
"""


def run_instrumented(receiver: OtlpReceiver, order: str, tmp_path: Path) -> list[dict[str, Any]]:
    """The script above in a fresh interpreter, OTEL_PYTHON_LOG_CORRELATION=true; its stderr lines."""
    completed = subprocess.run(
        [sys.executable, "-c", _SCRIPT, receiver.grpc_endpoint, order, str(Path(__file__).parent)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OTEL_PYTHON_LOG_CORRELATION": "true", "OTEL_RUNTIME_RUN_EVENTS": "false"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stderr.splitlines()
    assert all(line.startswith("{") for line in lines), completed.stderr  # no SDK warning, no plain line
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("order", ["instrument-first", "configure-first"])
def test_the_logging_instrumentation_exports_each_line_once_and_each_prints_once(
    order: str, tmp_path: Path
) -> None:
    """opentelemetry-instrumentation-logging's handler (and its basicConfig handler, from
    OTEL_PYTHON_LOG_CORRELATION=true) beside configure_logging(), in either order: a real OTLP
    receiver gets each line exactly once with a text body and the fields as attributes; stderr has
    one JSON line per event and nothing else (no "Invalid type", no "recursive logging")."""
    with OtlpReceiver() as receiver:
        printed = run_instrumented(receiver, order, tmp_path)
        logs = receiver.wait_for_logs(3, timeout=10)
    assert [line["event"] for line in printed] == BODIES
    assert all(line["trace_id"] and line["task_run_id"] for line in printed)
    assert sorted(log["body"] for log in logs) == sorted(BODIES)
    assert len(logs) == 3
    by_body = {log["body"]: log for log in logs}
    extracted = by_body["extracted"]["attributes"]
    assert (extracted["rows"], extracted["filename_"]) == (3, "in.csv")
    assert extracted["task_run_id"] == printed[0]["task_run_id"]
    assert by_body["extracted"]["trace_id"] == printed[0]["trace_id"]
    assert by_body["run logger line"]["attributes"]["step"] == 1
    assert not {"_logger", "_name"} & {key for log in logs for key in log["attributes"]}


_OUTAGE_SCRIPT = """
import logging, sys, time
import structlog
import otel_runtime
from otel_runtime import flow, task
from otel_runtime.logging import configure_logging

configure_logging(level=logging.INFO, json=True)
otel_runtime.configure(endpoint=sys.argv[1], protocol=sys.argv[2])

@task
def step(i: int) -> None:
    structlog.get_logger("app").info("working", i=i)

@flow
def job() -> None:
    for i in range(3):
        step(i)

end = time.monotonic() + 4
while time.monotonic() < end:
    job()
    time.sleep(0.25)
print('{"event": "done"}', file=sys.stderr, flush=True)
"""


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_an_outage_under_configure_logging_info_prints_one_warning_not_one_per_retry(
    protocol: str, tmp_path: Path
) -> None:
    """A collector that is down for four seconds of flows, configure_logging(level=INFO): no SDK
    exporter line prints (not even demoted to debug); the logs pipeline warns once."""
    completed = subprocess.run(
        [sys.executable, "-c", _OUTAGE_SCRIPT, f"http://127.0.0.1:{closed_port()}", protocol],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        env={**os.environ, "OTEL_METRICS_EXPORTER": "none", "OTEL_RUNTIME_RUN_EVENTS": "false"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    lines = [json.loads(line) for line in completed.stderr.splitlines()]
    events = [line["event"] for line in lines]
    during = [line for line in lines[: events.index("done")] if line["event"] != "working"]
    assert [line["level"] for line in during] == ["warning"], during
    assert during[0]["logger"] == "otel_runtime"
    assert not [line for line in lines if line.get("logger", "").startswith("opentelemetry")]
    assert "debug" not in {line.get("level") for line in lines}
