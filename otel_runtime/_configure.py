"""``configure()``: set up tracing and log export once, following the standard ``OTEL_*`` variables."""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from opentelemetry import _logs, trace
from opentelemetry.context import Context
from opentelemetry.environment_variables import OTEL_LOGS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

from otel_runtime._file_export import DEFAULT_TELEMETRY_PATH, JsonLinesLogExporter, JsonLinesSpanExporter
from otel_runtime._settings import settings
from otel_runtime.environment_variables import OTEL_RUNTIME_RECORD_PARAMETERS, OTEL_RUNTIME_TELEMETRY_FILE

__all__ = ["Telemetry", "configure"]

DEFAULT_SERVICE_NAME: Final = "otel-runtime"
_EXPORTER_NAMES: Final = frozenset({"otlp", "console", "file", "none"})
Signal = Literal["traces", "logs"]


class _SpanSlot(SpanProcessor):
    """The one processor configure() adds to a tracer provider; a later call swaps what it holds."""

    def __init__(self) -> None:
        self.held: list[SpanProcessor] = []

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.held:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.held:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self.held:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self.held)


class _LogSlot(LogRecordProcessor):
    """The one processor configure() adds to a logger provider; a later call swaps what it holds."""

    def __init__(self) -> None:
        self.held: list[LogRecordProcessor] = []

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        for processor in self.held:
            processor.on_emit(log_record)

    def shutdown(self) -> None:
        for processor in self.held:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self.held)


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What ``configure()`` set up: the providers, the exporters chosen per signal, the local file."""

    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None
    traces_exporters: tuple[str, ...]
    logs_exporters: tuple[str, ...]
    telemetry_file: Path | None

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything buffered so far; ``False`` if that did not finish in time."""
        flushed = True
        if self.tracer_provider is not None:
            flushed = self.tracer_provider.force_flush(timeout_millis) and flushed
        if self.logger_provider is not None:
            flushed = self.logger_provider.force_flush(timeout_millis) and flushed
        return flushed


_lock = threading.Lock()
_span_slots: weakref.WeakKeyDictionary[TracerProvider, _SpanSlot] = weakref.WeakKeyDictionary()
_log_slots: weakref.WeakKeyDictionary[LoggerProvider, _LogSlot] = weakref.WeakKeyDictionary()


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _exporter_names(signal: Signal, given: str | None, endpoint: str | None) -> tuple[str, ...]:
    variable = OTEL_TRACES_EXPORTER if signal == "traces" else OTEL_LOGS_EXPORTER
    per_signal = OTEL_EXPORTER_OTLP_TRACES_ENDPOINT if signal == "traces" else OTEL_EXPORTER_OTLP_LOGS_ENDPOINT
    raw = given or _env(variable)
    if raw is None:
        has_endpoint = endpoint or _env(OTEL_EXPORTER_OTLP_ENDPOINT) or _env(per_signal)
        raw = "otlp" if has_endpoint else "file"
    names = tuple(name.strip().lower() for name in raw.split(",") if name.strip())
    unknown = sorted(set(names) - _EXPORTER_NAMES)
    if unknown:
        raise ValueError(
            f"unknown {signal} exporter {', '.join(unknown)!r} (from {'configure()' if given else variable}); "
            f"choose from {', '.join(sorted(_EXPORTER_NAMES))}"
        )
    return tuple(name for name in names if name != "none")


def _protocol(signal: Signal, given: str | None) -> str:
    per_signal = OTEL_EXPORTER_OTLP_TRACES_PROTOCOL if signal == "traces" else OTEL_EXPORTER_OTLP_LOGS_PROTOCOL
    protocol = (given or _env(per_signal) or _env(OTEL_EXPORTER_OTLP_PROTOCOL) or "grpc").lower()
    if protocol not in ("grpc", "http/protobuf"):
        raise ValueError(f"OTLP protocol must be 'grpc' or 'http/protobuf', got {protocol!r}")
    return protocol


def _otlp_exporter(
    signal: Signal, protocol: str, endpoint: str | None, headers: Mapping[str, str] | None
) -> SpanExporter | LogRecordExporter:
    """An OTLP exporter; arguments left ``None`` fall back to the exporter's own ``OTEL_*`` variables."""
    options: dict[str, Any] = {}
    if headers is not None:
        options["headers"] = dict(headers)
    if protocol == "grpc":
        if endpoint is not None:
            options["endpoint"] = endpoint
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**options)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**options)
    if endpoint is not None:
        options["endpoint"] = f"{endpoint.rstrip('/')}/v1/{signal}"
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

        return HTTPSpanExporter(**options)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HTTPLogExporter

    return HTTPLogExporter(**options)


def _resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    attributes = dict(resource_attributes or {})
    if service_name is not None:
        attributes[SERVICE_NAME] = service_name
    resource = Resource.create(attributes)
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource


def _tracer_provider(resource: Resource) -> TracerProvider:
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):
        return current  # opentelemetry-instrument or the user got there first: add to it
    provider = TracerProvider(resource=resource)
    trace.set_tracer_provider(provider)
    return provider


def _logger_provider(resource: Resource) -> LoggerProvider:
    current = _logs.get_logger_provider()
    if isinstance(current, LoggerProvider):
        return current
    provider = LoggerProvider(resource=resource)
    _logs.set_logger_provider(provider)
    return provider


def configure(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    traces_exporter: str | None = None,
    logs_exporter: str | None = None,
    telemetry_file: str | os.PathLike[str] | None = None,
    record_parameters: bool | None = None,
    disabled: bool | None = None,
) -> Telemetry:
    """Set up span and log export for this process. Safe to call again: the new choice replaces the old.

    Every argument falls back to its standard variable:

    - ``service_name``: ``OTEL_SERVICE_NAME`` (then ``OTEL_RESOURCE_ATTRIBUTES``, then ``otel-runtime``);
    - ``resource_attributes``: merged over ``OTEL_RESOURCE_ATTRIBUTES``;
    - ``endpoint``: ``OTEL_EXPORTER_OTLP_ENDPOINT`` and the per-signal ``..._TRACES_/_LOGS_ENDPOINT``;
    - ``protocol``: ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]PROTOCOL``, ``grpc`` or ``http/protobuf``;
    - ``headers``: ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]HEADERS``;
    - ``traces_exporter`` / ``logs_exporter``: ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER``, a comma
      list of ``otlp``, ``console``, ``file`` and ``none``; default ``otlp`` when an endpoint is set,
      else ``file``;
    - ``telemetry_file``: ``OTEL_RUNTIME_TELEMETRY_FILE``, default ``.otel_runtime/telemetry.jsonl``;
    - ``record_parameters``: ``OTEL_RUNTIME_RECORD_PARAMETERS``, default true;
    - ``disabled``: ``OTEL_SDK_DISABLED``; when true nothing is installed and runs are not exported.

    The batch processors follow ``OTEL_BSP_*`` / ``OTEL_BLRP_*``. An SDK ``TracerProvider`` already set
    (for example by ``opentelemetry-instrument``) is kept and added to. Raises ``ValueError`` for an
    unknown exporter or protocol.
    """
    if record_parameters is None:
        record_parameters = (_env(OTEL_RUNTIME_RECORD_PARAMETERS) or "true").lower() != "false"
    settings.record_parameters = record_parameters
    if disabled is None:
        disabled = (_env(OTEL_SDK_DISABLED) or "").lower() == "true"
    traces = _exporter_names("traces", traces_exporter, endpoint)
    logs = _exporter_names("logs", logs_exporter, endpoint)
    trace_protocol = _protocol("traces", protocol) if "otlp" in traces else None
    log_protocol = _protocol("logs", protocol) if "otlp" in logs else None
    if disabled:
        return Telemetry(None, None, (), (), None)
    file_path = Path(telemetry_file or _env(OTEL_RUNTIME_TELEMETRY_FILE) or DEFAULT_TELEMETRY_PATH).absolute()
    resource = _resource(service_name, resource_attributes)

    span_exporters: list[SpanExporter] = []
    for name in traces:
        if name == "otlp":
            span_exporters.append(_otlp_exporter("traces", trace_protocol or "grpc", endpoint, headers))  # type: ignore[arg-type]
        elif name == "console":
            span_exporters.append(ConsoleSpanExporter())
        else:
            span_exporters.append(JsonLinesSpanExporter(file_path))
    log_exporters: list[LogRecordExporter] = []
    for name in logs:
        if name == "otlp":
            log_exporters.append(_otlp_exporter("logs", log_protocol or "grpc", endpoint, headers))  # type: ignore[arg-type]
        elif name == "console":
            log_exporters.append(ConsoleLogRecordExporter())
        else:
            log_exporters.append(JsonLinesLogExporter(file_path))

    with _lock:
        tracer_provider = _tracer_provider(resource)
        span_slot = _span_slots.get(tracer_provider)
        if span_slot is None:
            span_slot = _span_slots[tracer_provider] = _SpanSlot()
            tracer_provider.add_span_processor(span_slot)
        old_span_processors, span_slot.held = span_slot.held, [BatchSpanProcessor(e) for e in span_exporters]

        logger_provider = _logger_provider(resource)
        log_slot = _log_slots.get(logger_provider)
        if log_slot is None:
            log_slot = _log_slots[logger_provider] = _LogSlot()
            logger_provider.add_log_record_processor(log_slot)
        old_log_processors, log_slot.held = log_slot.held, [BatchLogRecordProcessor(e) for e in log_exporters]
    for processor in (*old_span_processors, *old_log_processors):
        processor.shutdown()
    uses_file = "file" in traces or "file" in logs
    return Telemetry(tracer_provider, logger_provider, traces, logs, file_path if uses_file else None)
