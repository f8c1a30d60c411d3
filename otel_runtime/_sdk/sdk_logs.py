"""The SDK's export complaints, attributed to the pipeline exporting on their thread and demoted to DEBUG.

The SDK and the OTLP exporters log a warning per retry, per batch and per dropped item. While one of
our pipelines exports on a thread (``with Attributed(health):``), what they log there becomes that
pipeline's business: the message is the reason of its one outage warning, and the record drops to
``DEBUG`` (so it is not printed at all unless ``DEBUG`` is enabled for its logger). Records logged
on any other thread pass unchanged.
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from otel_runtime._sdk.pipeline_health import ExportHealth

__all__ = ["Attributed", "current_pipeline", "quiet_sdk_logs"]

# Loggers of the SDK and the OTLP exporters that complain once per retry, per batch or per dropped item.
# A logger's filters only see records logged on that very logger, so each is named.
_SDK_LOGGERS: Final = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.common.http",
)

_local = threading.local()


def current_pipeline() -> ExportHealth | None:
    """The pipeline exporting on this thread, if any."""
    health: ExportHealth | None = getattr(_local, "health", None)
    return health


class Attributed:
    """``with Attributed(health):`` SDK warnings logged on this thread belong to ``health``'s pipeline."""

    __slots__ = ("_health", "_previous")

    def __init__(self, health: ExportHealth) -> None:
        self._health = health
        self._previous: ExportHealth | None = None

    def __enter__(self) -> None:
        self._previous = current_pipeline()
        _local.health = self._health

    def __exit__(self, *exc_info: object) -> None:
        _local.health = self._previous


class _QuietSdkLogs(logging.Filter):
    """Demote the SDK's warnings to ``DEBUG`` on a thread exporting for a pipeline, which takes the reason.

    A demoted record goes on only where ``DEBUG`` is enabled for its logger: the logger's level check
    ran before the filter, on the record's first level, so under ``configure_logging(level=INFO)``
    it would otherwise print as a ``debug`` line, once per retry.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        health = current_pipeline()
        if health is None or record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        health.trouble(message)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_quiet_filter = _QuietSdkLogs()
_installed: set[str] = set()
_install_lock = threading.Lock()


def quiet_sdk_logs(*extra_loggers: str) -> None:
    """Install the filter on the SDK's exporter loggers (and ``extra_loggers``), once each."""
    with _install_lock:
        for name in (*_SDK_LOGGERS, *extra_loggers):
            if name not in _installed:
                # First in line: the SDK's own DuplicateFilter would hide a repeated message from it.
                logging.getLogger(name).filters.insert(0, _quiet_filter)
                _installed.add(name)
