"""Zero-code instrumentation: ``opentelemetry-instrument python app.py`` (opentelemetry-distro) where
app.py calls ``otel_runtime.configure()``. The distro's providers already export per the OTEL_*
variables; configure() keeps them and adds no second exporter to the same destination, so each span
and log record reaches the collector (a real OTLP receiver on 127.0.0.1) exactly once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime.testing import OtlpReceiver

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")

APP = textwrap.dedent(
    """
    import logging, sys
    import otel_runtime
    from otel_runtime import flow, task

    @task
    def step(x: int) -> int:
        logging.getLogger("app").warning("step %s", x)
        return x + 1

    @flow
    def pipeline() -> int:
        return step(step(1))

    telemetry = otel_runtime.configure(**eval(sys.argv[1]))
    print("added", telemetry.traces_exporters, telemetry.logs_exporters)
    pipeline()
    """
)

pytestmark = pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-distro is not installed")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


def run_instrumented(
    tmp_path: Path, receiver: OtlpReceiver, protocol: str, arguments: str = "{}", **extra: str
) -> subprocess.CompletedProcess[str]:
    """app.py under opentelemetry-instrument, the distro exporting to ``receiver`` over ``protocol``."""
    receiver.clear()
    (tmp_path / "app.py").write_text(APP)
    environ = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    environ |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_SERVICE_NAME": "zero-code",
        "OTEL_METRICS_EXPORTER": "none",  # the test receiver takes traces and logs only
        "OTEL_RUNTIME_RUN_EVENTS": "false",
        "PYTHONWARNINGS": "error::DeprecationWarning",
        **extra,
    }
    result = subprocess.run(
        [str(INSTRUMENT), sys.executable, "app.py", arguments],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def settle(receiver: OtlpReceiver, spans: int, logs: int) -> None:
    """Wait for what should arrive, then a moment for anything that should not."""
    receiver.wait_for_spans(spans, timeout=10)
    receiver.wait_for_logs(logs, timeout=10)
    time.sleep(0.3)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_each_span_and_log_record_arrives_once_under_opentelemetry_instrument(
    protocol: str, tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """The distro's provider exports per the OTEL_* variables; configure() adds nothing to the same
    destination: three spans and two log records arrive, each once, from the distro's resource, and
    nothing warns."""
    result = run_instrumented(tmp_path, receiver, protocol)
    settle(receiver, 3, 2)
    spans = receiver.spans()
    assert sorted(span["name"] for span in spans) == ["flow pipeline", "task step", "task step"]
    assert len({span["span_id"] for span in spans}) == 3
    logs = receiver.logs()
    assert sorted(log["body"] for log in logs) == ["step 1", "step 2"]
    assert all(log["span_id"] for log in logs)  # the run fields and trace context are there
    assert {span["resource"]["service.name"] for span in spans} == {"zero-code"}
    assert "added () ()" in result.stdout  # configure() added no exporter
    assert "WARNING" not in result.stderr.replace("step", "")
    assert "Warning" not in result.stderr


def test_exporters_passed_explicitly_are_added_beside_the_distros(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    """configure(traces_exporter="file") adds the file exporter to the distro's provider: spans go to
    the file and, once, to the collector."""
    run_instrumented(
        tmp_path, receiver, "grpc", "{'traces_exporter': 'file', 'telemetry_file': 'spans.jsonl'}"
    )
    settle(receiver, 3, 2)
    assert len(receiver.spans()) == 3
    records = read_records(tmp_path / "spans.jsonl")
    in_file = [span["name"] for record in records for span in iter_spans(record)]
    assert Counter(in_file) == Counter({"task step": 2, "flow pipeline": 1})


def test_a_different_destination_is_still_added(tmp_path: Path, receiver: OtlpReceiver) -> None:
    """configure(endpoint=...) naming another collector than the distro's: that one gets every span too."""
    with OtlpReceiver() as other:
        run_instrumented(tmp_path, receiver, "grpc", f"{{'endpoint': {other.grpc_endpoint!r}}}")
        settle(receiver, 3, 2)
        assert len(other.wait_for_spans(3, timeout=10)) == 3
        assert len(receiver.spans()) == 3


def test_through_a_real_collector_each_span_and_log_record_arrives_once(
    tmp_path: Path, receiver: OtlpReceiver, rotel_collector: str
) -> None:
    """The distro exporting to rotel, which forwards to the receiver: still three spans and two log
    records, each once."""
    run_instrumented(tmp_path, receiver, "grpc", OTEL_EXPORTER_OTLP_ENDPOINT=rotel_collector)
    settle(receiver, 3, 2)
    spans = receiver.spans()
    assert sorted(span["name"] for span in spans) == ["flow pipeline", "task step", "task step"]
    assert len({span["span_id"] for span in spans}) == 3
    assert sorted(log["body"] for log in receiver.logs()) == ["step 1", "step 2"]
