"""configure()'s meter provider: OTEL_METRICS_EXPORTER, the Prometheus endpoint, OTLP, a provider kept."""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
from opentelemetry import metrics
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_runtime import configure, deployment, flow
from otel_runtime._base import keys as _keys
from otel_runtime._sdk.metrics_setup import metric_exporter_names, stop_metrics
from otel_runtime.testing import use_logger_provider, use_meter_provider


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No metrics variable from the outside, no global meter provider; readers stopped afterwards."""
    for name in ("OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_RUNTIME_PROMETHEUS_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    with use_meter_provider(None), use_logger_provider(None):
        try:
            yield
        finally:
            stop_metrics(2)


@flow
def counted() -> None:
    pass


def scrape(address: tuple[str, int] | None) -> str:
    assert address is not None
    with urllib.request.urlopen(f"http://{address[0]}:{address[1]}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_metrics_are_off_without_an_endpoint_and_otlp_with_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """Default: no metrics exporter without an OTLP endpoint, otlp with one; an unknown name is an error."""
    assert metric_exporter_names(None, None) == ()
    assert metric_exporter_names(None, "http://127.0.0.1:4317") == ("otlp",)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    assert metric_exporter_names(None, None) == ("otlp",)
    assert metric_exporter_names("none", None) == ()
    assert metric_exporter_names("console,otlp_proto_http", None) == ("console", "otlp_proto_http")
    with pytest.raises(ValueError, match="unknown metrics exporter 'statsd'"):
        configure(metrics_exporter="statsd")


def test_the_prometheus_address_variable_turns_the_endpoint_on_and_is_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_RUNTIME_PROMETHEUS_ADDRESS adds the prometheus reader; a malformed address fails configure()."""
    monkeypatch.setenv("OTEL_RUNTIME_PROMETHEUS_ADDRESS", "127.0.0.1:0")
    assert metric_exporter_names(None, None) == ("prometheus",)
    monkeypatch.setenv("OTEL_RUNTIME_PROMETHEUS_ADDRESS", "nowhere")
    with pytest.raises(ValueError, match="OTEL_RUNTIME_PROMETHEUS_ADDRESS"):
        configure(traces_exporter="none", logs_exporter="none")


def test_the_prometheus_endpoint_serves_the_run_metrics_and_stops_with_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """metrics_exporter="prometheus" serves /metrics with the run metrics of the runs so far; shutdown()
    closes the endpoint."""
    monkeypatch.setenv("OTEL_RUNTIME_PROMETHEUS_ADDRESS", "127.0.0.1:0")
    telemetry = configure(traces_exporter="none", logs_exporter="none", metrics_exporter="prometheus")
    assert telemetry.metrics_exporters == ("prometheus",)
    assert metrics.get_meter_provider() is telemetry.meter_provider
    address = telemetry._metrics.prometheus_address
    with deployment("nightly"):
        counted()
    page = scrape(address)
    assert f'{_keys.PROMETHEUS_RUNS_FINISHED}{{deployment_name="nightly",flow_name="counted"' in page
    assert f"{_keys.PROMETHEUS_RUN_DURATION}_bucket" in page
    telemetry.shutdown()
    with pytest.raises(urllib.error.URLError):
        scrape(address)


def test_configure_again_swaps_the_readers_and_keeps_the_global_provider(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A second configure() replaces the endpoint (the old one closes) without a second global provider."""
    monkeypatch.setenv("OTEL_RUNTIME_PROMETHEUS_ADDRESS", "127.0.0.1:0")
    first = configure(traces_exporter="none", logs_exporter="none")
    second = configure(traces_exporter="none", logs_exporter="none")
    assert second.meter_provider is first.meter_provider is metrics.get_meter_provider()
    counted()
    assert _keys.PROMETHEUS_RUNS_FINISHED in scrape(second._metrics.prometheus_address)
    with pytest.raises(urllib.error.URLError):
        scrape(first._metrics.prometheus_address)
    monkeypatch.delenv("OTEL_RUNTIME_PROMETHEUS_ADDRESS")  # it adds the endpoint whatever the exporters
    off = configure(traces_exporter="none", logs_exporter="none", metrics_exporter="none")
    assert off.meter_provider is None
    with pytest.raises(urllib.error.URLError):
        scrape(second._metrics.prometheus_address)


def test_a_meter_provider_set_before_is_kept_and_gets_the_run_metrics(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An SDK MeterProvider installed before configure() keeps its readers: run metrics go there, and
    asking for exporters says (once) that they are not added."""
    reader = InMemoryMetricReader()
    with use_meter_provider(MeterProvider(metric_readers=[reader], shutdown_on_exit=False)) as theirs:
        with caplog.at_level(logging.WARNING, logger="otel_runtime"):
            telemetry = configure(traces_exporter="none", logs_exporter="none", metrics_exporter="console")
        assert telemetry.meter_provider is theirs
        counted()
        data = reader.get_metrics_data()
        assert data is not None
        names = {m.name for r in data.resource_metrics for s in r.scope_metrics for m in s.metrics}
        assert set(_keys.METRIC_NAMES) <= names
    assert "keeps its own readers" in caplog.text


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[ExportMetricsServiceRequest]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.path == "/v1/metrics":
            type(self).received.append(ExportMetricsServiceRequest.FromString(body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_otlp_metrics_reach_an_otlp_http_endpoint_with_exemplars() -> None:
    """With an endpoint, the run metrics go over OTLP/HTTP to <endpoint>/v1/metrics, the duration points
    with exemplars that carry a trace id."""
    _Collector.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        telemetry = configure(
            endpoint=f"http://127.0.0.1:{server.server_port}",
            protocol="http/protobuf",
            traces_exporter="none",
            logs_exporter="none",
        )
        assert telemetry.metrics_exporters == ("otlp",)
        counted()
        assert telemetry.force_flush()
    finally:
        stop_metrics(2)
        server.shutdown()
        server.server_close()
    metrics_sent = [
        metric
        for request in _Collector.received
        for resource in request.resource_metrics
        for scope in resource.scope_metrics
        for metric in scope.metrics
    ]
    assert set(_keys.METRIC_NAMES) <= {metric.name for metric in metrics_sent}
    (duration,) = [m for m in metrics_sent if m.name == _keys.METRIC_RUN_DURATION][:1]
    exemplars = [exemplar for point in duration.histogram.data_points for exemplar in point.exemplars]
    assert exemplars
    assert all(len(exemplar.trace_id) == 16 for exemplar in exemplars)
