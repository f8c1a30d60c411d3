"""``configure()``: set up tracing and log export once, following the standard ``OTEL_*`` variables.

What it builds is the OpenTelemetry SDK's own: a ``TracerProvider`` and a ``LoggerProvider`` (or the ones
already installed), a ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` per exporter (they read
``OTEL_BSP_*`` / ``OTEL_BLRP_*``), and the OTLP exporters over gRPC or HTTP (they read the
``OTEL_EXPORTER_OTLP_*`` variables that no argument overrides).

The arguments are settled in ``options``, the exporters built in ``exporters``, and each provider's
one processor of ours, whose contents a later call swaps, is in ``slots``. At process exit (and when a
provider is shut down) the slots shut their processors down within a bounded time, even when the
endpoint is down: by default 5 seconds, or ``OTEL_EXPORTER_OTLP_TIMEOUT`` / ``export_timeout``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.metrics import MeterProvider  # run metrics
from opentelemetry.sdk.trace import TracerProvider

from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import DEFAULT_SHUTDOWN_TIMEOUT_MILLIS, settings
from otel_runtime._sdk.cicd_spans import set_up_cicd
from otel_runtime._sdk.existing_exporters import drop_duplicates
from otel_runtime._sdk.exporters import LOG_EXPORTERS, SPAN_EXPORTERS, SignalExporters, build_exporter
from otel_runtime._sdk.metrics_setup import (  # run metrics
    Metrics,
    metric_exporter_names,
    setup_metrics,
    stop_metrics,
)
from otel_runtime._sdk.monitored_processor import (
    MonitoredLogProcessor,
    MonitoredProcessor,
    MonitoredSpanProcessor,
)
from otel_runtime._sdk.options import Destination, SignalChoice, make_resource, resolve_options
from otel_runtime._sdk.run_watch import RunWatch, unwatch_runs, watch_runs  # run events and metrics
from otel_runtime._sdk.shutdown import call_within, exit_deadline, shutdown_within
from otel_runtime._sdk.sigterm import handle_sigterm
from otel_runtime._sdk.slots import LOGGER_SLOTS, TRACER_SLOTS, install, lock
from otel_runtime.logging import instrument_logging
from otel_runtime.propagation import install_baggage_propagator

__all__ = ["Telemetry", "configure", "latest"]


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

        return call_within(flush, timeout_millis, "otel-runtime-flush")

    def shutdown(self, timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS) -> None:
        """Export what is buffered and stop the exporters this call of ``configure()`` set up.

        Returns within about ``timeout_millis`` even when the endpoint is down (what could not be sent
        by then is dropped). The providers stay installed: runs after this are not exported until
        ``configure()`` is called again. At process exit this happens on its own.
        """
        with lock:
            TRACER_SLOTS.withdraw(self.tracer_provider, self._span_processors)
            LOGGER_SLOTS.withdraw(self.logger_provider, self._log_processors)
        deadline = time.monotonic() + timeout_millis / 1000
        self._runs.stop()
        shutdown_within((*self._span_processors, *self._log_processors), deadline)
        self._metrics.shutdown(max((deadline - time.monotonic()) * 1000, 200))


_latest: Telemetry | None = None


def latest() -> Telemetry | None:
    """What the latest ``configure()`` of this process set up; ``None`` before the first."""
    return _latest


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


_ExporterT = TypeVar("_ExporterT")


def _new_exporters(
    table: SignalExporters[_ExporterT], choice: SignalChoice, destination: Destination, installed: object
) -> list[tuple[str, _ExporterT]]:
    """The exporters of one signal, less those the SDK provider ``installed`` before already exports to
    (unless the caller named the exporters): ``opentelemetry-instrument`` read the same variables."""
    built = [(name, build_exporter(table, name, choice.protocol, destination)) for name in choice.exporters]
    if choice.explicit or not isinstance(installed, (TracerProvider, LoggerProvider)):
        return built
    return drop_duplicates(installed, built)


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
    - ``disabled``: ``OTEL_SDK_DISABLED``; when true no provider or exporter is installed, what an earlier
      call installed is stopped, and runs are not exported; the baggage propagator is still installed.
      A value other than ``true`` / ``false`` (any case) is read as false, with one warning.

    The batch processors follow ``OTEL_BSP_*`` / ``OTEL_BLRP_*``. An SDK ``TracerProvider`` or
    ``LoggerProvider`` already set (for example by ``opentelemetry-instrument``) is kept and added to;
    its resource stays as it is. Buffered telemetry is exported at process exit. Raises ``ValueError``
    for an unknown exporter or protocol, an endpoint that is not an http(s) URL, or a bad timeout.
    """
    options = resolve_options(
        service_name=service_name,
        resource_attributes=resource_attributes,
        endpoint=endpoint,
        protocol=protocol,
        headers=headers,
        traces_exporter=traces_exporter,
        logs_exporter=logs_exporter,
        export_timeout=export_timeout,
        telemetry_file=telemetry_file,
        record_parameters=record_parameters,
        disabled=disabled,
    )
    metric_names = metric_exporter_names(metrics_exporter, endpoint)  # run metrics: checked up front
    settings.record_parameters = options.record_parameters
    settings.shutdown_timeout_millis = options.shutdown_timeout_millis
    global _latest  # noqa: PLW0603 - what the latest call set up, for the command line
    plan = options.export
    if plan is None:
        with lock:
            stopped: list[MonitoredProcessor[Any]] = [
                *TRACER_SLOTS.empty_global(),
                *LOGGER_SLOTS.empty_global(),
            ]
        unwatch_runs(trace.get_tracer_provider())  # run events and run metrics
        stop_metrics(options.shutdown_timeout_millis / 1000)
        shutdown_within(stopped, exit_deadline())
        install_baggage_propagator()  # baggage is encoded the same whether the SDK is on or off
        _latest = Telemetry(None, None, (), (), None)
        return _latest
    resource = make_resource(plan.service_name, plan.resource_attributes)
    traces, logs, destination = plan.traces, plan.logs, plan.destination
    new_spans = _new_exporters(SPAN_EXPORTERS, traces, destination, trace.get_tracer_provider())
    new_logs = _new_exporters(LOG_EXPORTERS, logs, destination, _logs.get_logger_provider())
    span_processors = tuple(MonitoredSpanProcessor(exporter) for _, exporter in new_spans)
    log_processors = tuple(MonitoredLogProcessor(exporter) for _, exporter in new_logs)
    tracer_provider, logger_provider, replaced = install(resource, span_processors, log_processors)
    for provider in (tracer_provider, logger_provider):
        if provider.resource is not resource:
            _warn_if_resource_ignored(provider, plan.explicit_resource)
    install_baggage_propagator()
    set_up_cicd(tracer_provider)  # OTEL_RUNTIME_SEMCONV=cicd
    if logs.exporters:
        instrument_logging(logger_provider)
    shutdown_within(replaced, exit_deadline())
    handle_sigterm(tracer_provider)  # SIGTERM: open runs end cancelled, exported within the bound
    # -- run events and run metrics (watching runs while they run): one block, nothing else here ----
    run_metrics = setup_metrics(
        resource, metric_names, endpoint=destination.endpoint, protocol=protocol, headers=destination.headers,
        timeout=destination.timeout, exit_timeout_s=options.shutdown_timeout_millis / 1000,
        explicit=metrics_exporter is not None,
    )  # fmt: skip
    run_logs = logger_provider if logs.exporters else None
    runs = watch_runs(tracer_provider, run_logs, run_metrics.meter_provider)
    # -----------------------------------------------------------------------------------------------
    _latest = Telemetry(
        tracer_provider,
        logger_provider,
        tuple(name for name, _ in new_spans),
        tuple(name for name, _ in new_logs),
        destination.file_path if plan.uses_file else None,
        span_processors,
        log_processors,
        run_metrics.exporters,
        run_metrics,
        runs,
    )
    return _latest


Telemetry.__module__ = "otel_runtime"
