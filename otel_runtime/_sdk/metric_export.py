"""Metric exports that fail politely: one warning on the ``otel_runtime`` logger, not one per retry.

The OTLP metric exporters log every failed attempt (``Transient error ... retrying``) as a warning or
an error. :class:`ReportedMetricExporter` wraps one: while it exports, those messages are demoted to
``DEBUG``, and the first export that fails logs one warning with the exporter's reason. Metrics are
cumulative: the next export that succeeds carries what the failed ones missed.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData

from otel_runtime._base.guard import warn_once

__all__ = ["ReportedMetricExporter", "quiet_second_shutdown"]

_EXPORTER_LOGGERS: Final = (
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
_READER_LOGGER: Final = "opentelemetry.sdk.metrics._internal.export"
_SECOND_SHUTDOWN: Final = "Can't shutdown multiple times"
_local = threading.local()


class _Demote(logging.Filter):
    """While a reported export runs on this thread, keep the exporter's complaint and log it at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_local, "exporting", False) and record.levelno >= logging.WARNING:
            _local.reason = record.getMessage()
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
            # Demoted after the logger's level check: printed only where DEBUG is enabled for it.
            if not logging.getLogger(record.name).isEnabledFor(logging.DEBUG):
                return False
        # The reader was shut down first, within its bound, on purpose: its second shutdown is no news.
        return not (getattr(_local, "removing", False) and record.getMessage() == _SECOND_SHUTDOWN)


_filter = _Demote()
for _name in (*_EXPORTER_LOGGERS, _READER_LOGGER):
    logging.getLogger(_name).addFilter(_filter)


class quiet_second_shutdown:  # noqa: N801 - a context manager used like a function
    """``with quiet_second_shutdown():`` the SDK's "Can't shutdown multiple times" is not logged here."""

    def __enter__(self) -> None:
        _local.removing = True

    def __exit__(self, *exc_info: object) -> None:
        _local.removing = False


class ReportedMetricExporter(MetricExporter):
    """``exporter``, whose failures are one warning naming ``target`` instead of a line per attempt."""

    def __init__(self, exporter: MetricExporter, target: str) -> None:
        super().__init__(
            preferred_temporality=exporter._preferred_temporality,
            preferred_aggregation=exporter._preferred_aggregation,
        )
        self._exporter = exporter
        self._target = target

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        _local.exporting, _local.reason = True, None
        try:
            result = self._exporter.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        finally:
            _local.exporting = False
        if result is not MetricExportResult.SUCCESS:
            reason = getattr(_local, "reason", None) or "the export failed"
            warn_once(
                f"metric-export:{self._target}",
                f"otel_runtime could not export metrics to {self._target}: {reason} "
                "(the next export that succeeds carries them; not repeated)",
            )
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._exporter.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self._exporter.shutdown(timeout_millis=timeout_millis, **kwargs)
