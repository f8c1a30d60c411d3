"""Build the exporters ``configure()`` chose: the console, the local file, OTLP over gRPC or HTTP, or
any exporter installed under the SDK's entry points (see ``exporter_names``).

One generic builder serves both signals; a :class:`SignalExporters` table per signal names the SDK
classes that differ. The OTLP exporters are imported when one is built, so that a process exporting
to the local file never loads gRPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Generic, TypeVar

from opentelemetry.sdk._logs.export import ConsoleLogRecordExporter, LogRecordExporter
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from otel_runtime._sdk.exporter_names import OTLP_PROTOCOLS, load_exporter
from otel_runtime._sdk.file_export import JsonLinesLogExporter, JsonLinesSpanExporter
from otel_runtime._sdk.options import Destination, check_endpoint, resolve_protocol
from otel_runtime._sdk.signals import Signal

__all__ = ["LOG_EXPORTERS", "SPAN_EXPORTERS", "SignalExporters", "build_exporter", "otlp_span_exporter"]

_ExporterT = TypeVar("_ExporterT")


@dataclass(frozen=True, slots=True)
class SignalExporters(Generic[_ExporterT]):
    """The exporter classes of one signal; the OTLP ones take the exporter's keyword arguments."""

    signal: Signal
    base: type[Any]
    """The SDK's abstract exporter class of the signal, which an entry point's class must extend."""
    console: Callable[[], _ExporterT]
    file: Callable[[Path], _ExporterT]
    otlp_grpc: Callable[..., _ExporterT]
    otlp_http: Callable[..., _ExporterT]


def _grpc_span_exporter(**options: Any) -> SpanExporter:
    from otel_runtime._sdk.grpc_span_exporter import GrpcSpanExporter

    return GrpcSpanExporter(**options)


def _http_span_exporter(**options: Any) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(**options)


def _grpc_log_exporter(**options: Any) -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    return OTLPLogExporter(**options)


def _http_log_exporter(**options: Any) -> LogRecordExporter:
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter

    return OTLPLogExporter(**options)


SPAN_EXPORTERS: Final[SignalExporters[SpanExporter]] = SignalExporters(
    "traces",
    SpanExporter,
    ConsoleSpanExporter,
    JsonLinesSpanExporter,
    _grpc_span_exporter,
    _http_span_exporter,
)
LOG_EXPORTERS: Final[SignalExporters[LogRecordExporter]] = SignalExporters(
    "logs",
    LogRecordExporter,
    ConsoleLogRecordExporter,
    JsonLinesLogExporter,
    _grpc_log_exporter,
    _http_log_exporter,
)


def build_exporter(
    exporters: SignalExporters[_ExporterT], name: str, protocol: str, destination: Destination
) -> _ExporterT:
    """The exporter called ``name`` of one signal: ``console``, ``file``, ``otlp`` (over ``protocol``),
    ``otlp_proto_grpc`` / ``otlp_proto_http``, or any other installed entry point's, made as the SDK
    makes it (no arguments: it reads its own ``OTEL_*`` variables)."""
    if name == "console":
        return exporters.console()
    if name == "file":
        return exporters.file(destination.file_path)
    if name == "otlp" or name in OTLP_PROTOCOLS:
        chosen = OTLP_PROTOCOLS.get(name, protocol)
        return _otlp_exporter(
            exporters, chosen, destination.endpoint, destination.headers, destination.timeout
        )
    made: _ExporterT = load_exporter(exporters.signal, name, exporters.base)
    return made


def _otlp_exporter(
    exporters: SignalExporters[_ExporterT],
    protocol: str,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
) -> _ExporterT:
    """An OTLP exporter; arguments left ``None`` fall back to the exporter's own ``OTEL_*`` variables.

    ``endpoint`` is the base URL, as ``OTEL_EXPORTER_OTLP_ENDPOINT`` is: for HTTP the signal's path
    (``/v1/traces``, ``/v1/logs``) is appended. A per-signal endpoint variable is used as it is.
    """
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if protocol == "grpc":
        if headers is not None:  # gRPC metadata keys must be lowercase
            options["headers"] = {key.lower(): value for key, value in headers.items()}
        if endpoint is not None:
            options["endpoint"] = endpoint
        return exporters.otlp_grpc(**options)
    if headers is not None:
        options["headers"] = dict(headers)
    if endpoint is not None:
        options["endpoint"] = f"{endpoint.rstrip('/')}/v1/{exporters.signal}"
    return exporters.otlp_http(**options)


def otlp_span_exporter(
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> SpanExporter:
    """The OTLP span exporter ``configure()`` would build from these arguments and the environment."""
    if endpoint is not None:
        endpoint = check_endpoint(endpoint)
    return _otlp_exporter(SPAN_EXPORTERS, resolve_protocol("traces", protocol), endpoint, headers, timeout)
