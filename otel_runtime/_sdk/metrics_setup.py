"""The meter provider of ``configure()``: metric readers chosen by ``OTEL_METRICS_EXPORTER``.

``OTEL_METRICS_EXPORTER`` (or ``configure(metrics_exporter=...)``) is a comma list of:

- ``otlp``: OTLP over ``grpc`` or ``http/protobuf`` (``OTEL_EXPORTER_OTLP_[METRICS_]PROTOCOL``, to
  ``OTEL_EXPORTER_OTLP_[METRICS_]ENDPOINT``), exported every ``OTEL_METRIC_EXPORT_INTERVAL`` ms (5,000
  unless set: a running run should show within seconds);
- ``prometheus``: a pull endpoint (``/metrics``) on ``OTEL_RUNTIME_PROMETHEUS_ADDRESS``, else
  ``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT`` (default ``localhost:9464``), with
  the ``prometheus`` extra; setting ``OTEL_RUNTIME_PROMETHEUS_ADDRESS`` adds it to the list;
- ``none``, or any name of the SDK's ``opentelemetry_metrics_exporter`` entry points (``console``,
  ``otlp_proto_grpc``, ``otlp_proto_http``, ...): an exporter is exported periodically, a reader is
  used as it is.

Default: ``otlp`` when an OTLP endpoint is configured, else ``none``. An SDK ``MeterProvider`` set
before (by ``opentelemetry-instrument``, say) is kept as it is: run metrics go to its readers. Otherwise
the first call installs one global provider and every later call swaps its readers (``MeterProvider
.add_metric_reader``), so a reconfiguration neither duplicates exports nor loses the global provider.
Shutdown is bounded, at exit too.
"""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from opentelemetry import metrics
from opentelemetry.environment_variables import OTEL_METRICS_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_ENDPOINT,
    OTEL_EXPORTER_OTLP_METRICS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_PROMETHEUS_HOST,
    OTEL_EXPORTER_PROMETHEUS_PORT,
    OTEL_METRIC_EXPORT_INTERVAL,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricExporter, MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from otel_runtime._base.guard import warn_once
from otel_runtime._sdk.exporter_names import OTLP_PROTOCOLS, check_exporter_names, load_exporter
from otel_runtime._sdk.metric_export import ReportedMetricExporter, quiet_second_shutdown
from otel_runtime.environment_variables import OTEL_RUNTIME_PROMETHEUS_ADDRESS

__all__ = [
    "DEFAULT_EXPORT_INTERVAL_MILLIS",
    "Metrics",
    "join_shutdown_at_exit",
    "metric_exporter_names",
    "setup_metrics",
    "start_shutdown_at_exit",
    "stop_metrics",
]

DEFAULT_EXPORT_INTERVAL_MILLIS: Final = 5_000
_PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXTRA_HINT: Final = "pip install 'otel-runtime[prometheus]'"


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


def metric_exporter_names(given: str | None, endpoint: str | None) -> tuple[str, ...]:
    """The metric exporters to set up, ``none`` left out; ``ValueError`` for a name nobody provides."""
    raw = given or _env(OTEL_METRICS_EXPORTER)
    if raw is None:
        has_endpoint = (
            endpoint or _env(OTEL_EXPORTER_OTLP_ENDPOINT) or _env(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT)
        )
        raw = "otlp" if has_endpoint else "none"
    where = "configure()" if given else OTEL_METRICS_EXPORTER
    names = list(check_exporter_names("metrics", raw, where, extra=frozenset({"prometheus"})))
    if _env(OTEL_RUNTIME_PROMETHEUS_ADDRESS) and "prometheus" not in names:
        names.append("prometheus")
    if "prometheus" in names:
        _prometheus_address()  # a bad address is a configuration error, raised now
    return tuple(name for name in names if name != "none")


def _prometheus_address() -> tuple[str, int]:
    raw = _env(OTEL_RUNTIME_PROMETHEUS_ADDRESS)
    if raw is not None:
        host, _, port = raw.rpartition(":")
        where = OTEL_RUNTIME_PROMETHEUS_ADDRESS
    else:
        host = _env(OTEL_EXPORTER_PROMETHEUS_HOST) or "localhost"
        port = _env(OTEL_EXPORTER_PROMETHEUS_PORT) or "9464"
        where = OTEL_EXPORTER_PROMETHEUS_PORT
    if not (host and port.isdigit() and int(port) < 65536):
        raise ValueError(f"{where} must give a host and a port such as 127.0.0.1:9464, got {raw or port!r}")
    return host.strip("[]"), int(port)


def _otlp_exporter(
    protocol: str | None, endpoint: str | None, headers: Mapping[str, str] | None, timeout: float | None
) -> MetricExporter:
    """The OTLP metric exporter; what is left ``None`` the exporter reads from its ``OTEL_*`` variables."""
    # The same option handling as exporters._otlp_exporter, whose SignalExporters table knows only the
    # span and log signals (signals.Signal); metrics can join it when that type grows a third signal.
    chosen = protocol or _env(OTEL_EXPORTER_OTLP_METRICS_PROTOCOL) or _env(OTEL_EXPORTER_OTLP_PROTOCOL)
    chosen = (chosen or "grpc").strip().lower()
    if chosen not in _PROTOCOLS:
        raise ValueError(f"OTLP protocol must be 'grpc' or 'http/protobuf', got {chosen!r}")
    options: dict[str, Any] = {}
    if timeout is not None:
        options["timeout"] = timeout
    if chosen == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter

        if headers is not None:  # gRPC metadata keys must be lowercase
            options["headers"] = {key.lower(): value for key, value in headers.items()}
        if endpoint is not None:
            options["endpoint"] = endpoint
        return OTLPMetricExporter(**options)
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import (
        OTLPMetricExporter as HTTPMetricExporter,
    )

    if headers is not None:
        options["headers"] = dict(headers)
    if endpoint is not None:
        options["endpoint"] = f"{endpoint.rstrip('/')}/v1/metrics"
    return HTTPMetricExporter(**options)


def _periodic(exporter: MetricExporter, target: str) -> MetricReader:
    interval = None if _env(OTEL_METRIC_EXPORT_INTERVAL) else DEFAULT_EXPORT_INTERVAL_MILLIS
    return PeriodicExportingMetricReader(
        ReportedMetricExporter(exporter, target), export_interval_millis=interval
    )


@dataclass(slots=True)
class Metrics:
    """What one ``setup_metrics()`` call set up: the provider run metrics use, and its readers of ours."""

    meter_provider: MeterProvider | None
    exporters: tuple[str, ...] = ()
    prometheus_address: tuple[str, int] | None = None
    """Where the Prometheus endpoint listens (the real port when 0 was asked for)."""
    _readers: tuple[MetricReader, ...] = field(default=(), repr=False)
    _closers: tuple[Callable[[], None], ...] = field(default=(), repr=False)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        """Collect and export what the readers of this call hold (the provider's own readers too)."""
        if self.meter_provider is None:
            return True
        if not self._readers:
            return bool(self.meter_provider.force_flush(timeout_millis))
        return all([reader.force_flush(timeout_millis) for reader in self._readers])  # noqa: C419 - flush all

    def shutdown(self, timeout_millis: float = 5_000, *, wait: bool = True) -> threading.Thread | None:
        """Export a last time and take this call's readers off the provider, in about ``timeout_millis``."""
        readers, self._readers = self._readers, ()
        closers, self._closers = self._closers, ()
        provider = self.meter_provider
        if provider is None or not (readers or closers):
            return None

        deadline = time.monotonic() + timeout_millis / 1000

        def stop() -> None:
            try:
                for reader in readers:
                    # A last export while still registered, within the bound; removing shuts it down again.
                    if isinstance(reader, PeriodicExportingMetricReader):
                        reader.shutdown(timeout_millis=max((deadline - time.monotonic()) * 1000, 100))
                    with quiet_second_shutdown():
                        provider.remove_metric_reader(reader)
                for close in closers:
                    close()
            except Exception:
                warn_once("metrics-shutdown", "otel_runtime could not stop the metric readers", exc_info=True)

        thread = threading.Thread(target=stop, name="otel-runtime-metrics-shutdown", daemon=True)
        thread.start()
        if wait:
            thread.join(max(timeout_millis, 0) / 1000)
        return thread


_lock = threading.Lock()
_providers: dict[Resource, MeterProvider] = {}  # ours, by resource (a provider's resource is fixed)
_current: Metrics | None = None
_exit_timeout_s: float = 5.0


def _prometheus_reader() -> tuple[MetricReader, tuple[str, int], Callable[[], None]]:
    try:
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from prometheus_client import CollectorRegistry, start_http_server
    except ImportError:
        raise ValueError(f"the prometheus metrics exporter needs its extra: {_EXTRA_HINT}") from None
    host, port = _prometheus_address()
    registry = CollectorRegistry(auto_describe=True)
    reader = PrometheusMetricReader(registry=registry)
    try:
        server, _ = start_http_server(port, addr=host, registry=registry)
    except OSError as error:
        raise ValueError(f"cannot serve Prometheus metrics on {host}:{port}: {error}") from None

    def close() -> None:
        server.shutdown()
        server.server_close()

    return reader, (host, int(server.server_port)), close


def _reader(
    name: str,
    protocol: str | None,
    endpoint: str | None,
    headers: Mapping[str, str] | None,
    timeout: float | None,
) -> MetricReader:
    if name == "otlp" or name in OTLP_PROTOCOLS:
        target = endpoint or _env(OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) or _env(OTEL_EXPORTER_OTLP_ENDPOINT)
        exporter = _otlp_exporter(OTLP_PROTOCOLS.get(name, protocol), endpoint, headers, timeout)
        return _periodic(exporter, target or "the OTLP endpoint")
    made = load_exporter("metrics", name, (MetricExporter, MetricReader))
    return made if isinstance(made, MetricReader) else _periodic(made, name)


def _our_provider(resource: Resource) -> MeterProvider:
    provider = _providers.get(resource)
    if provider is None:
        provider = _providers[resource] = MeterProvider(resource=resource, shutdown_on_exit=False)
    if not isinstance(metrics.get_meter_provider(), MeterProvider):
        metrics.set_meter_provider(provider)
    return provider


def setup_metrics(
    resource: Resource,
    names: tuple[str, ...],
    *,
    endpoint: str | None = None,
    protocol: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout: float | None = None,
    exit_timeout_s: float = 5.0,
    explicit: bool = False,
) -> Metrics:
    """Set up the readers ``names`` (from :func:`metric_exporter_names`), replacing the previous call's.

    Returns the provider the run metrics should use: ``None`` when metrics are off. A provider installed
    before keeps its readers and gets none of ours; that is worth a warning only when the caller named
    the exporters (``explicit``), not when both read the same ``OTEL_METRICS_EXPORTER``.
    """
    global _current, _exit_timeout_s  # noqa: PLW0603 - the process's metric readers, like its providers
    _exit_timeout_s = exit_timeout_s
    installed = metrics.get_meter_provider()
    if isinstance(installed, MeterProvider) and installed not in _providers.values():
        if names and explicit:
            warn_once(
                "metrics-provider-kept",
                "otel_runtime.configure(): the MeterProvider installed before keeps its own readers; "
                f"metrics exporters {list(names)!r} are not added to it",
            )
        stop_metrics()
        _current = Metrics(installed)
        return _current
    stop_metrics()
    if not names:
        return Metrics(None)
    provider = _our_provider(resource)
    readers: list[MetricReader] = []
    closers: list[Callable[[], None]] = []
    address = None
    try:
        for name in names:
            if name == "prometheus":
                reader, address, close = _prometheus_reader()
                closers.append(close)
            else:
                reader = _reader(name, protocol, endpoint, headers, timeout)
            readers.append(reader)
            provider.add_metric_reader(reader)
    finally:
        _current = Metrics(provider, names, address, tuple(readers), tuple(closers))
    atexit.unregister(start_shutdown_at_exit)
    atexit.register(start_shutdown_at_exit)
    return _current


def stop_metrics(timeout_s: float | None = None) -> None:
    """Stop the readers the latest ``setup_metrics()`` added (bounded); the provider stays installed."""
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None:
        current.shutdown((timeout_s if timeout_s is not None else _exit_timeout_s) * 1000)


# At exit the readers stop beside the span and log exporters, not after them, so that exit stays
# within one exit timeout: the start hook is registered after configure()'s own (atexit runs hooks
# last-in first-out) and the join hook, registered at import, before it.
_exit_stop: list[tuple[threading.Thread, float]] = []


def start_shutdown_at_exit() -> None:
    global _current
    with _lock:
        current, _current = _current, None
    if current is not None:
        thread = current.shutdown(_exit_timeout_s * 1000, wait=False)
        if thread is not None:
            _exit_stop.append((thread, time.monotonic() + _exit_timeout_s))


def join_shutdown_at_exit() -> None:
    for thread, deadline in _exit_stop:
        thread.join(max(deadline - time.monotonic(), 0))


atexit.register(join_shutdown_at_exit)
