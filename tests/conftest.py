"""Shared fixtures: every test gets a fresh SDK tracer provider that records spans in memory, and
leaves structlog and the root logger as it found them."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

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
