"""An exporter wrapper that counts what it exported and dropped, attributes SDK complaints, never raises."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_runtime._base.guard import internal_logger
from otel_runtime._sdk.otlp_replies import ReplyReader
from otel_runtime._sdk.pipeline_health import ExportHealth, target_of
from otel_runtime._sdk.sdk_logs import Attributed, quiet_sdk_logs
from otel_runtime._sdk.signals import LOGS, SPANS, ItemT, ResultT, SignalResults

__all__ = ["CountingExporter", "CountingLogExporter", "CountingSpanExporter", "Exporter"]

_Item_contra = TypeVar("_Item_contra", contravariant=True)
_Result_co = TypeVar("_Result_co", covariant=True)


class Exporter(Protocol[_Item_contra, _Result_co]):
    """What the SDK's span and log record exporters have in common."""

    def export(self, batch: Sequence[_Item_contra], /) -> _Result_co:
        """Send ``batch``."""

    def shutdown(self) -> None:
        """Stop; later exports fail."""

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send what is buffered."""


class CountingExporter(Generic[ItemT, ResultT]):
    """Wraps ``exporter``: counts what it exported and dropped in ``health``, and never raises."""

    def __init__(
        self,
        results: SignalResults[ItemT, ResultT],
        exporter: Exporter[ItemT, ResultT],
        health: ExportHealth | None = None,
    ) -> None:
        self.results = results
        self.exporter = exporter
        self.health = health or ExportHealth(results.signal, target_of(exporter))
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._replies = ReplyReader(exporter)  # partial successes, and 200 replies that are not OTLP
        quiet_sdk_logs(type(exporter).__module__)

    def export(self, batch: Sequence[ItemT]) -> ResultT:
        """Export through the wrapped exporter; ``FAILURE`` (counted) instead of any exception."""
        count = len(batch)
        if not count:
            return self.results.success
        if self._stopped:
            self.health.lost(count, "the exporter was shut down")
            return self.results.failure
        error: BaseException | None = None
        with Attributed(self.health):
            self._replies.begin()
            self.health.export_started()
            try:
                result: ResultT | None = self.exporter.export(batch)
            except Exception as caught:  # an exporter must not break the batch processor's thread
                result, error = None, caught
            finally:
                self.health.export_returned()
        if result == self.results.success:
            rejected, why = self._replies.rejected(count)
            self.health.succeeded(count - rejected)
            if rejected:
                self.health.lost(rejected, why)
            return self.results.success
        self.health.lost(count, None if error is None else f"{type(error).__name__}: {error}")
        return self.results.failure

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut the wrapped exporter down (once)."""
        self.stop(timeout_millis)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        with Attributed(self.health):
            try:
                return bool(self.exporter.force_flush(timeout_millis))
            except Exception:
                return False

    def stop(self, timeout_millis: float | None) -> None:
        """Shut the wrapped exporter down once (which also cuts its retries short)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        with Attributed(self.health):
            try:
                shutdown: Callable[..., object] = self.exporter.shutdown
                if timeout_millis is not None and _accepts_timeout(shutdown):
                    shutdown(timeout_millis=timeout_millis)
                else:
                    shutdown()
            except Exception:
                internal_logger.debug("exporter %s failed to shut down", self.health.target, exc_info=True)


def _accepts_timeout(function: Callable[..., object]) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and "timeout_millis" in code.co_varnames[: code.co_argcount]


# The SDK's batch processors take a SpanExporter or a LogRecordExporter (different base classes with
# differently typed ``export`` methods), so each signal keeps a class that only adds its base.
class CountingSpanExporter(CountingExporter[ReadableSpan, SpanExportResult], SpanExporter):
    """A span exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(self, exporter: SpanExporter, health: ExportHealth | None = None) -> None:
        super().__init__(SPANS, exporter, health)


class CountingLogExporter(CountingExporter[ReadableLogRecord, LogRecordExportResult], LogRecordExporter):
    """A log record exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(self, exporter: LogRecordExporter, health: ExportHealth | None = None) -> None:
        super().__init__(LOGS, exporter, health)
