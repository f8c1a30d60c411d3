"""Exporter names resolve as the OpenTelemetry SDK resolves them: ``otlp_proto_grpc``, ``otlp_proto_http``,
``console`` and any name an installed package registers (here ``zipkin_json``, from
opentelemetry-exporter-zipkin-json) work in OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER, besides our
``otlp`` and ``file``; an unknown name is a clear error listing what is installed."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import _logs

from otel_runtime import Telemetry, configure, flow, task
from otel_runtime.testing import OtlpReceiver, use_logger_provider

Configure = Callable[..., Telemetry]


@task
def step() -> int:
    return 1


@flow
def pipeline() -> int:
    return step()


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: OtlpReceiver) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_") and name not in ("OTEL_RUNTIME_RUN_EVENTS", "OTEL_METRICS_EXPORTER"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    receiver.clear()


@pytest.fixture(autouse=True)
def fresh_logger_provider() -> Iterator[None]:
    with use_logger_provider(None):
        yield
        installed = _logs.get_logger_provider()
    shutdown = getattr(installed, "shutdown", None)
    if callable(shutdown):
        shutdown()


@pytest.fixture
def configured() -> Iterator[Configure]:
    made: list[Telemetry] = []

    def call(**options: Any) -> Telemetry:
        made.append(configure(**options))
        return made[-1]

    yield call
    for telemetry in reversed(made):
        telemetry.shutdown(timeout_millis=1_000)


class ZipkinCollector(ThreadingHTTPServer):
    """A loopback HTTP server that takes Zipkin v2 JSON span lists on ``POST /api/v2/spans``."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path == "/api/v2/spans":
                    collector.spans.extend(json.loads(body))
                self.send_response(202)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/v2/spans"


@pytest.fixture
def zipkin() -> Iterator[ZipkinCollector]:
    server = ZipkinCollector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(("name", "transport"), [("otlp_proto_grpc", "grpc"), ("otlp_proto_http", "http")])
def test_the_sdks_protocol_specific_otlp_names_export_over_that_protocol(
    name: str, transport: str, receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_EXPORTER / OTEL_LOGS_EXPORTER=otlp_proto_grpc or otlp_proto_http send over that
    protocol, whatever OTEL_EXPORTER_OTLP_PROTOCOL says, to the endpoint= given."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", name)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", name)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf" if transport == "grpc" else "grpc")
    endpoint = receiver.grpc_endpoint if transport == "grpc" else receiver.http_endpoint
    telemetry = configured(endpoint=endpoint)
    assert telemetry.traces_exporters == (name,)
    pipeline()
    _logs.get_logger("test").emit(body="sent")
    assert telemetry.force_flush()
    assert sorted(span["name"] for span in receiver.wait_for_spans(2)) == ["flow pipeline", "task step"]
    assert [log["body"] for log in receiver.wait_for_logs(1)] == ["sent"]
    assert set(receiver.requests) == {f"{transport}/traces", f"{transport}/logs"}


def test_a_name_registered_by_an_installed_exporter_package_is_used(
    zipkin: ZipkinCollector, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_TRACES_EXPORTER=zipkin_json loads opentelemetry-exporter-zipkin-json's exporter through its
    entry point, as the SDK does; it reads its own OTEL_EXPORTER_ZIPKIN_ENDPOINT."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin_json")
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", zipkin.endpoint)
    telemetry = configured(logs_exporter="none")
    pipeline()
    assert telemetry.force_flush()
    assert sorted(span["name"] for span in zipkin.spans) == ["flow pipeline", "task step"]


def test_console_and_file_mix_with_entry_point_names(
    configured: Configure, tmp_path: Path, zipkin: ZipkinCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``console, zipkin_json,file,console`` in one list: each set up once; zipkin and the file get each
    span once. (The console exporter writes to the ``sys.stdout`` of import time, which pytest holds.)"""
    monkeypatch.setenv("OTEL_EXPORTER_ZIPKIN_ENDPOINT", zipkin.endpoint)
    telemetry = configured(traces_exporter="console, zipkin_json,file,console", logs_exporter="none")
    assert telemetry.traces_exporters == ("console", "zipkin_json", "file")
    pipeline()
    assert telemetry.force_flush()
    assert sorted(span["name"] for span in zipkin.spans) == ["flow pipeline", "task step"]
    assert (tmp_path / ".otel_runtime" / "telemetry.jsonl").read_text().count('"task step"') == 1


@pytest.mark.parametrize("variable", ["OTEL_TRACES_EXPORTER", "OTEL_LOGS_EXPORTER", "OTEL_METRICS_EXPORTER"])
def test_an_unknown_name_is_an_error_that_lists_the_installed_names(
    variable: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A name nobody registered raises ValueError naming it, the variable and every installed choice."""
    monkeypatch.setenv(variable, "statsd")
    with pytest.raises(
        ValueError, match=rf"unknown \w+ exporter 'statsd' \(from {variable}\); installed: "
    ) as error:
        configure()
    installed = str(error.value).split("installed: ")[1]
    assert {"console", "otlp", "otlp_proto_grpc", "otlp_proto_http", "none"} <= set(
        installed.split(" (")[0].split(", ")
    )
    if variable == "OTEL_TRACES_EXPORTER":
        assert "zipkin_json" in installed
        assert "file" in installed
