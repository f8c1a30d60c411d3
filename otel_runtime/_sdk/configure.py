"""``configure()``: set up tracing and log export once, following the standard ``OTEL_*`` variables.

What it builds is the OpenTelemetry SDK's own: a ``TracerProvider`` and a ``LoggerProvider`` (or the ones
already installed), a ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` per exporter (they read
``OTEL_BSP_*`` / ``OTEL_BLRP_*``), and the OTLP exporters over gRPC or HTTP (they read the
``OTEL_EXPORTER_OTLP_*`` variables that no argument overrides).

Each provider gets one *slot* processor of ours, added once; ``configure()`` swaps what the slot holds,
so calling it again replaces the exporters instead of adding a second set. At process exit (and when a
provider is shut down) the slots shut their processors down within a bounded time, even when the
endpoint is down: by default 5 seconds, or ``OTEL_EXPORTER_OTLP_TIMEOUT`` / ``export_timeout``.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from opentelemetry import _logs, trace
from opentelemetry.context import Context
from opentelemetry.environment_variables import OTEL_LOGS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    ConsoleLogRecordExporter,
    LogRecordExporter,
)
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.metrics import MeterProvider  # run metrics
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SpanExporter

from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import settings
from otel_runtime._sdk.export_health import (
    MonitoredLogProcessor,
    MonitoredSpanProcessor,
    log_processor,
    span_processor,
)
from otel_runtime._sdk.file_export import DEFAULT_TELEMETRY_PATH, JsonLinesLogExporter, JsonLinesSpanExporter
from otel_runtime._sdk.metrics_setup import (  # run metrics
    Metrics,
    metric_exporter_names,
    setup_metrics,
    stop_metrics,
)
from otel_runtime._sdk.run_watch import RunWatch, unwatch_runs, watch_runs  # run events and metrics
from otel_runtime.environment_variables import OTEL_RUNTIME_RECORD_PARAMETERS, OTEL_RUNTIME_TELEMETRY_FILE
from otel_runtime.logging import instrument_logging
from otel_runtime.propagation import install_baggage_propagator

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT_S", "Telemetry", "configure", "latest", "otlp_span_exporter"]

DEFAULT_SERVICE_NAME: Final = "otel-runtime"
DEFAULT_SHUTDOWN_TIMEOUT_S: Final = 5.0
"""How long the shutdown at process exit may take, when neither ``export_timeout`` nor
``OTEL_EXPORTER_OTLP_TIMEOUT`` says otherwise."""

_EXPORTER_NAMES: Final = frozenset({"otlp", "console", "file", "none"})
_PROTOCOLS: Final = ("grpc", "http/protobuf")
# Every processor gets at least this long to shut down, so one slow exporter cannot starve the rest
# of the time they need to write a local file.
_MIN_PROCESSOR_SHUTDOWN_MILLIS: Final = 200.0
Signal = Literal["traces", "logs"]
_EXPORTER_VARIABLES: Final[dict[Signal, str]] = {"traces": OTEL_TRACES_EXPORTER, "logs": OTEL_LOGS_EXPORTER}
_ENDPOINT_VARIABLES: Final[dict[Signal, str]] = {
    "traces": OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    "logs": OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
}
_PROTOCOL_VARIABLES: Final[dict[Signal, str]] = {
    "traces": OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    "logs": OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
}
_Processor = MonitoredSpanProcessor | MonitoredLogProcessor


def _shutdown_within(processors: Iterable[_Processor], deadline: float) -> None:
    """Shut ``processors`` down one after the other, all by ``deadline`` (``time.monotonic()``).

    The SDK's ``BatchSpanProcessor.shutdown()`` takes no timeout and waits for an exporter that retries
    a down endpoint; the monitored processors stop within theirs and count what they could not send.
    """
    for processor in processors:
        remaining_millis = max((deadline - time.monotonic()) * 1000, _MIN_PROCESSOR_SHUTDOWN_MILLIS)
        try:
            processor.shutdown(timeout_millis=remaining_millis)
        except Exception:
            warn_once("configure-shutdown", "otel_runtime could not shut down an exporter", exc_info=True)


def _call_within(function: Callable[[], bool], timeout_millis: float, name: str) -> bool:
    """``function()``, or ``False`` if it has not returned within ``timeout_millis``.

    For flushes: the SDK's batch processors ignore their flush timeout and wait for the exporter, which
    retries a down endpoint for its whole timeout. The call goes on in a daemon thread if it overruns.
    """
    outcome: list[bool] = []

    def call() -> None:
        try:
            outcome.append(bool(function()))
        except Exception:
            warn_once("configure-flush", "otel_runtime could not flush telemetry", exc_info=True)
            outcome.append(False)

    thread = threading.Thread(target=call, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout_millis, 0) / 1000)
    return bool(outcome) and outcome[0]


class _SpanSlot(SpanProcessor):
    """The one processor configure() adds to a tracer provider; a later call swaps what it holds."""

    def __init__(self) -> None:
        self.held: tuple[MonitoredSpanProcessor, ...] = ()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.held:
            processor.on_start(span, parent_context)

    def _on_ending(self, span: Span) -> None:
        for processor in self.held:
            processor._on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.held:
            processor.on_end(span)

    def shutdown(self) -> None:
        """Shut down what the slot holds, within the exit timeout; the slot stays usable for configure()."""
        held, self.held = self.held, ()
        _shutdown_within(held, time.monotonic() + _exit_timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self.held])  # noqa: C419 - flush all


class _LogSlot(LogRecordProcessor):
    """The one processor configure() adds to a logger provider; a later call swaps what it holds."""

    def __init__(self) -> None:
        self.held: tuple[MonitoredLogProcessor, ...] = ()

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        for processor in self.held:
            processor.on_emit(log_record)

    def shutdown(self) -> None:
        """Shut down what the slot holds, within the exit timeout; the slot stays usable for configure()."""
        held, self.held = self.held, ()
        _shutdown_within(held, time.monotonic() + _exit_timeout_s)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self.held])  # noqa: C419 - flush all


@dataclass(frozen=True, slots=True)
class Telemetry:
    """What ``configure()`` set up: the providers, the exporters chosen per signal, the local file."""

    tracer_provider: TracerProvider | None
    logger_provider: LoggerProvider | None
    traces_exporters: tuple[str, ...]
    logs_exporters: tuple[str, ...]
    telemetry_file: Path | None
    _span_processors: tuple[MonitoredSpanProcessor, ...] = field(default=(), repr=False, compare=False)
    _log_processors: tuple[MonitoredLogProcessor, ...] = field(default=(), repr=False, compare=False)
    # -- run events and run metrics: the meter provider and the run processors of this call --------
    metrics_exporters: tuple[str, ...] = ()
    _metrics: Metrics = field(default_factory=lambda: Metrics(None), repr=False, compare=False)
    _runs: RunWatch = field(default_factory=RunWatch, repr=False, compare=False)

    @property
    def meter_provider(self) -> MeterProvider | None:
        """The SDK ``MeterProvider`` the run metrics go to; ``None`` when metrics are off."""
        return self._metrics.meter_provider

    def force_flush(self, timeout_millis: int = 10_000) -> bool:
        """Export everything buffered so far; ``False`` if that did not finish within ``timeout_millis``."""
        providers = [p for p in (self.tracer_provider, self.logger_provider) if p is not None]
        if not providers and self._metrics.meter_provider is None:
            return True

        def flush() -> bool:
            self._runs.force_flush()  # run metrics queued on the runs' path, recorded now
            flushed = [provider.force_flush(int(timeout_millis)) for provider in providers]
            return all([*flushed, self._metrics.force_flush(timeout_millis)])

        return _call_within(flush, timeout_millis, "otel-runtime-flush")

    def shutdown(self, timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_S * 1000) -> None:
        """Export what is buffered and stop the exporters this call of ``configure()`` set up.

        Returns within about ``timeout_millis`` even when the endpoint is down (what could not be sent
        by then is dropped). The providers stay installed: runs after this are not exported until
        ``configure()`` is called again. At process exit this happens on its own.
        """
        with _lock:
            span_slot = _span_slots.get(self.tracer_provider) if self.tracer_provider else None
            if span_slot is not None:
                span_slot.held = tuple(p for p in span_slot.held if p not in self._span_processors)
            log_slot = _log_slots.get(self.logger_provider) if self.logger_provider else None
            if log_slot is not None:
                log_slot.held = tuple(p for p in log_slot.held if p not in self._log_processors)
        deadline = time.monotonic() + timeout_millis / 1000
        self._runs.stop()
        _shutdown_within((*self._span_processors, *self._log_processors), deadline)
        self._metrics.shutdown(max((deadline - time.monotonic()) * 1000, _MIN_PROCESSOR_SHUTDOWN_MILLIS))


_lock = threading.Lock()
_span_slots: weakref.WeakKeyDictionary[TracerProvider, _SpanSlot] = weakref.WeakKeyDictionary()
_log_slots: weakref.WeakKeyDictionary[LoggerProvider, _LogSlot] = weakref.WeakKeyDictionary()
_exit_timeout_s: float = DEFAULT_SHUTDOWN_TIMEOUT_S
_latest: Telemetry | None = None


def latest() -> Telemetry | None:
    """What the latest ``configure()`` of this process set up; ``None`` before the first."""
    return _latest


def _shutdown_at_exit() -> None:
    """Flush and stop every exporter configure() installed, all within the exit timeout."""
    deadline = time.monotonic() + _exit_timeout_s
    with _lock:
        slots: list[_SpanSlot | _LogSlot] = [*_span_slots.values(), *_log_slots.values()]
    held: list[_Processor] = []
    for slot in slots:
        held.extend(slot.held)
        slot.held = ()
    _shutdown_within(held, deadline)


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def _exporter_names(signal: Signal, given: str | None, endpoint: str | None) -> tuple[str, ...]:
    variable = OTEL_TRACES_EXPORTER if signal == "traces" else OTEL_LOGS_EXPORTER
    per_signal = (
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT if signal == "traces" else OTEL_EXPORTER_OTLP_LOGS_ENDPOINT
    )
    raw = given or _env(variable)
    if raw is None:
        has_endpoint = endpoint or _env(OTEL_EXPORTER_OTLP_ENDPOINT) or _env(per_signal)
        raw = "otlp" if has_endpoint else "file"
    names = tuple(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    unknown = sorted(set(names) - _EXPORTER_NAMES)
    if unknown:
        raise ValueError(
            f"unknown {signal} exporter {', '.join(unknown)!r} "
            f"(from {'configure()' if given else variable}); "
            f"choose from {', '.join(sorted(_EXPORTER_NAMES))}"
        )
    return tuple(name for name in names if name != "none")


def resolve_protocol(signal: Signal, given: str | None) -> str:
    """The OTLP protocol: ``given``, else the per-signal then the generic variable, else ``grpc``."""
    per_signal = _PROTOCOL_VARIABLES[signal]
    protocol = (given or _env(per_signal) or _env(OTEL_EXPORTER_OTLP_PROTOCOL) or "grpc").strip().lower()
    if protocol not in _PROTOCOLS:
        raise ValueError(f"OTLP protocol must be 'grpc' or 'http/protobuf', got {protocol!r}")
    return protocol


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is an ``http://`` or ``https://`` URL with a host, else ``ValueError``."""
    scheme, _, rest = endpoint.strip().partition("://")
    if scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ValueError(f"OTLP endpoint must be a URL such as http://localhost:4317, got {endpoint!r}")
    return endpoint.strip()


def _timeout_from_environment() -> float | None:
    """``OTEL_EXPORTER_OTLP_TIMEOUT`` in seconds (as the Python OTLP exporters read it), if set."""
    raw = _env(OTEL_EXPORTER_OTLP_TIMEOUT)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{OTEL_EXPORTER_OTLP_TIMEOUT} must be a positive number of seconds, got {raw!r}")
    return seconds


def _otlp_exporter(
    signal: Signal,
    protocol: str,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
) -> SpanExporter | LogRecordExporter:
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
        if signal == "traces":
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            return OTLPSpanExporter(**options)
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(**options)
    if headers is not None:
        options["headers"] = dict(headers)
    if endpoint is not None:
        options["endpoint"] = f"{endpoint.rstrip('/')}/v1/{signal}"
    if signal == "traces":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HTTPSpanExporter

        return HTTPSpanExporter(**options)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HTTPLogExporter

    return HTTPLogExporter(**options)


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
    exporter = _otlp_exporter("traces", resolve_protocol("traces", protocol), endpoint, headers, timeout)
    assert isinstance(exporter, SpanExporter)
    return exporter


def _span_exporter(
    name: str,
    protocol: str,
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
    file_path: Path,
) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "file":
        return JsonLinesSpanExporter(file_path)
    exporter = _otlp_exporter("traces", protocol, endpoint, headers, timeout)
    assert isinstance(exporter, SpanExporter)
    return exporter


def _log_exporter(
    name: str,
    protocol: str,
    *,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
    file_path: Path,
) -> LogRecordExporter:
    if name == "console":
        return ConsoleLogRecordExporter()
    if name == "file":
        return JsonLinesLogExporter(file_path)
    exporter = _otlp_exporter("logs", protocol, endpoint, headers, timeout)
    assert isinstance(exporter, LogRecordExporter)
    return exporter


def make_resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    """The resource from the arguments over ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``."""
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


def _warn_if_resource_ignored(provider: TracerProvider | LoggerProvider, explicit: Mapping[str, Any]) -> None:
    """The resource of a provider installed before cannot change: say so when the caller asked for one."""
    have = provider.resource.attributes
    ignored = {key: value for key, value in explicit.items() if have.get(key) != value}
    if ignored:
        warn_once(
            f"configure-resource-{type(provider).__name__}",
            f"otel_runtime.configure(): the {type(provider).__name__} installed before keeps its resource; "
            f"{ignored!r} does not apply to what it exports",
        )


def _install(
    resource: Resource,
    explicit_resource: Mapping[str, Any],
    span_processors: tuple[MonitoredSpanProcessor, ...],
    log_processors: tuple[MonitoredLogProcessor, ...],
) -> tuple[TracerProvider, LoggerProvider, list[_Processor]]:
    """Put the new processors in the providers' slots; return the providers and the processors replaced."""
    with _lock:
        tracer_provider = _tracer_provider(resource)
        span_slot = _span_slots.get(tracer_provider)
        if span_slot is None:
            span_slot = _span_slots[tracer_provider] = _SpanSlot()
            tracer_provider.add_span_processor(span_slot)
        old_span_processors, span_slot.held = span_slot.held, span_processors

        logger_provider = _logger_provider(resource)
        log_slot = _log_slots.get(logger_provider)
        if log_slot is None:
            log_slot = _log_slots[logger_provider] = _LogSlot()
            logger_provider.add_log_record_processor(log_slot)
        old_log_processors, log_slot.held = log_slot.held, log_processors
    for provider in (tracer_provider, logger_provider):
        if provider.resource is not resource:
            _warn_if_resource_ignored(provider, explicit_resource)
    # The last configure() decides the order: our exit hook runs before the providers' own (LIFO).
    atexit.unregister(_shutdown_at_exit)
    atexit.register(_shutdown_at_exit)
    return tracer_provider, logger_provider, [*old_span_processors, *old_log_processors]


def _uninstall() -> list[_Processor]:
    """Empty the slots of the current global providers; return what they held."""
    removed: list[_Processor] = []
    tracer_provider = trace.get_tracer_provider()
    logger_provider = _logs.get_logger_provider()
    with _lock:
        span_slot = _span_slots.get(tracer_provider) if isinstance(tracer_provider, TracerProvider) else None
        if span_slot is not None:
            removed.extend(span_slot.held)
            span_slot.held = ()
        log_slot = _log_slots.get(logger_provider) if isinstance(logger_provider, LoggerProvider) else None
        if log_slot is not None:
            removed.extend(log_slot.held)
            log_slot.held = ()
    return removed


def configure(
    *,
    service_name: str | None = None,
    resource_attributes: Mapping[str, Any] | None = None,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    traces_exporter: str | None = None,
    logs_exporter: str | None = None,
    metrics_exporter: str | None = None,
    export_timeout: float | None = None,
    telemetry_file: str | os.PathLike[str] | None = None,
    record_parameters: bool | None = None,
    disabled: bool | None = None,
) -> Telemetry:
    """Set up span and log export for this process. Safe to call again: the new choice replaces the old.

    Every argument falls back to its standard variable, and an argument given wins over the variable:

    - ``service_name``: ``OTEL_SERVICE_NAME`` (then ``OTEL_RESOURCE_ATTRIBUTES``, then ``otel-runtime``);
    - ``resource_attributes``: merged over ``OTEL_RESOURCE_ATTRIBUTES``;
    - ``endpoint``: the base URL, like ``OTEL_EXPORTER_OTLP_ENDPOINT``: for ``http/protobuf`` the signal
      path ``/v1/traces`` or ``/v1/logs`` is appended. Without it the exporters read
      ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``..._LOGS_ENDPOINT`` (used as they are), then
      ``OTEL_EXPORTER_OTLP_ENDPOINT``;
    - ``protocol``: ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]PROTOCOL``, ``grpc`` (default) or ``http/protobuf``;
    - ``headers``: ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]HEADERS``;
    - ``traces_exporter`` / ``logs_exporter``: ``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER``, a comma
      list of ``otlp``, ``console``, ``file`` and ``none``; default ``otlp`` when an endpoint is set,
      else ``file``;
    - ``metrics_exporter``: ``OTEL_METRICS_EXPORTER``, a comma list of ``otlp``, ``prometheus``, ``none``
      or an SDK exporter entry point such as ``console``; default ``otlp`` when an endpoint is set, else
      ``none``. ``OTEL_RUNTIME_PROMETHEUS_ADDRESS`` adds a Prometheus endpoint (see ``_sdk.metrics_setup``);
    - ``export_timeout``: seconds each OTLP export may take (else ``OTEL_EXPORTER_OTLP_[TRACES_|LOGS_]
      TIMEOUT``, in seconds as the Python exporters read it, default 10), and the bound on the shutdown
      at process exit (else ``OTEL_EXPORTER_OTLP_TIMEOUT``, default 5);
    - ``telemetry_file``: ``OTEL_RUNTIME_TELEMETRY_FILE``, default ``.otel_runtime/telemetry.jsonl``;
    - ``record_parameters``: ``OTEL_RUNTIME_RECORD_PARAMETERS``, default true;
    - ``disabled``: ``OTEL_SDK_DISABLED``; when true nothing is installed, what an earlier call installed
      is stopped, and runs are not exported.

    The batch processors follow ``OTEL_BSP_*`` / ``OTEL_BLRP_*``. An SDK ``TracerProvider`` or
    ``LoggerProvider`` already set (for example by ``opentelemetry-instrument``) is kept and added to;
    its resource stays as it is. Buffered telemetry is exported at process exit. Raises ``ValueError``
    for an unknown exporter or protocol, an endpoint that is not an http(s) URL, or a bad timeout.
    """
    if record_parameters is None:
        record_parameters = (_env(OTEL_RUNTIME_RECORD_PARAMETERS) or "true").lower() != "false"
    if disabled is None:
        disabled = (_env(OTEL_SDK_DISABLED) or "").lower() == "true"
    if endpoint is not None:
        endpoint = check_endpoint(endpoint)
    if export_timeout is not None and not export_timeout > 0:
        raise ValueError(f"export_timeout must be a positive number of seconds, got {export_timeout!r}")
    environment_timeout = _timeout_from_environment()
    traces = _exporter_names("traces", traces_exporter, endpoint)
    logs = _exporter_names("logs", logs_exporter, endpoint)
    metric_names = metric_exporter_names(metrics_exporter, endpoint)  # run metrics: checked up front
    trace_protocol = resolve_protocol("traces", protocol) if "otlp" in traces else "grpc"
    log_protocol = resolve_protocol("logs", protocol) if "otlp" in logs else "grpc"
    settings.record_parameters = record_parameters
    global _exit_timeout_s  # noqa: PLW0603 - the process-wide exit bound, set by the latest call
    _exit_timeout_s = export_timeout or environment_timeout or DEFAULT_SHUTDOWN_TIMEOUT_S
    global _latest  # noqa: PLW0603 - what the latest call set up, for the command line
    if disabled:
        unwatch_runs(trace.get_tracer_provider())  # run events and run metrics
        stop_metrics(_exit_timeout_s)
        _shutdown_within(_uninstall(), time.monotonic() + _exit_timeout_s)
        _latest = Telemetry(None, None, (), (), None)
        return _latest
    file_path = Path(telemetry_file or _env(OTEL_RUNTIME_TELEMETRY_FILE) or DEFAULT_TELEMETRY_PATH).absolute()
    explicit_resource = dict(resource_attributes or {})
    if service_name is not None:
        explicit_resource[SERVICE_NAME] = service_name
    resource = make_resource(service_name, resource_attributes)

    options: dict[str, Any] = {
        "endpoint": endpoint,
        "headers": headers,
        "timeout": export_timeout,
        "file_path": file_path,
    }
    span_processors = tuple(
        span_processor(_span_exporter(name, trace_protocol, **options)) for name in traces
    )
    log_processors = tuple(
        log_processor(_log_exporter(name, log_protocol, **options)) for name in logs
    )
    tracer_provider, logger_provider, replaced = _install(
        resource, explicit_resource, span_processors, log_processors
    )
    install_baggage_propagator()
    if logs:
        instrument_logging(logger_provider)
    _shutdown_within(replaced, time.monotonic() + _exit_timeout_s)
    # -- run events and run metrics (watching runs while they run): one block, nothing else here ----
    run_metrics = setup_metrics(
        resource, metric_names, endpoint=endpoint, protocol=protocol, headers=headers,
        timeout=export_timeout, exit_timeout_s=_exit_timeout_s,
    )  # fmt: skip
    runs = watch_runs(tracer_provider, logger_provider if logs else None, run_metrics.meter_provider)
    # -----------------------------------------------------------------------------------------------
    uses_file = "file" in traces or "file" in logs
    _latest = Telemetry(
        tracer_provider,
        logger_provider,
        traces,
        logs,
        file_path if uses_file else None,
        span_processors,
        log_processors,
        run_metrics.exporters,
        run_metrics,
        runs,
    )
    return _latest
