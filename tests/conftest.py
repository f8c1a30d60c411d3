"""Shared fixtures: every test gets a fresh SDK tracer provider that records spans in memory, and
leaves structlog and the root logger as it found them."""

from __future__ import annotations

import logging
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog
from opentelemetry import propagate

from otel_runtime.testing import CapturedSpans, OtlpReceiver, capture_spans

ExportWorkersTo = Callable[[pytest.MonkeyPatch, OtlpReceiver, str], None]


@pytest.fixture(scope="session")
def export_workers_to() -> ExportWorkersTo:
    """Sets, on ``env``, the variables that make worker processes started after it (pools, Dask)
    configure() themselves to export spans to ``receiver`` over OTLP/HTTP as ``service_name``."""

    def export(env: pytest.MonkeyPatch, receiver: OtlpReceiver, service_name: str) -> None:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint)
        env.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        env.setenv("OTEL_TRACES_EXPORTER", "otlp")
        env.setenv("OTEL_LOGS_EXPORTER", "none")
        env.setenv("OTEL_SERVICE_NAME", service_name)

    return export


@pytest.fixture(autouse=True)
def spans() -> Iterator[CapturedSpans]:
    """A real SDK tracer provider, global for the test, with an in-memory exporter; reset afterwards."""
    with capture_spans() as captured:
        yield captured


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """structlog defaults, the root logger's handlers and level, and the run logger's level (which
    configure_logging sets) are restored after every test."""
    root = logging.getLogger()
    run_logger = logging.getLogger("otel_runtime.run")
    handlers, level, run_level = list(root.handlers), root.level, run_logger.level
    try:
        yield
    finally:
        run_logger.setLevel(run_level)
        structlog.reset_defaults()
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture(autouse=True)
def no_run_events_or_metrics_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run events (two log records per run) and default OTLP metrics are newer than the tests that count
    the log records and requests configure() sends: off by default here. The run event and metric tests
    (test_run_*, test_metrics_setup, integration/test_prometheus, ...) turn them on themselves."""
    monkeypatch.setenv("OTEL_RUNTIME_RUN_EVENTS", "false")
    monkeypatch.setenv("OTEL_METRICS_EXPORTER", "none")


@pytest.fixture(autouse=True)
def restore_propagators() -> Iterator[None]:
    """The global propagators (which configure() may swap) are restored after every test."""
    before = propagate.get_global_textmap()
    try:
        yield
    finally:
        propagate.set_global_textmap(before)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def rotel_collector(receiver: OtlpReceiver, tmp_path: Path) -> Iterator[str]:
    """rotel (a Rust OpenTelemetry collector from PyPI) on loopback, forwarding OTLP to ``receiver``;
    yields its OTLP/gRPC endpoint."""
    rotel = pytest.importorskip("rotel")
    agent = Path(rotel.__file__).with_name("rotel-agent")
    grpc_port, http_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [str(agent), "start", "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
         "--otlp-http-endpoint", f"127.0.0.1:{http_port}", "--exporter", "otlp",
         "--otlp-exporter-endpoint", receiver.grpc_endpoint, "--otlp-exporter-protocol", "grpc",
         "--pid-file", str(tmp_path / "rotel.pid"), "--log-file", str(tmp_path / "rotel.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            assert process.poll() is None, "rotel exited"
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", grpc_port)) == 0:
                    break
            assert time.monotonic() < deadline, "rotel did not listen"
            time.sleep(0.05)
        yield f"http://127.0.0.1:{grpc_port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
