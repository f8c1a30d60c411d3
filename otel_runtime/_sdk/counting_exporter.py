"""An exporter wrapper that counts what it exported and dropped, attributes SDK complaints, never raises."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from typing import Final, Generic, Protocol, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_runtime._base.guard import internal_logger
from otel_runtime._sdk.forks import after_fork_in_child
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
        rebuild: Callable[[], Exporter[ItemT, ResultT]] | None = None,
    ) -> None:
        self.results = results
        self.exporter = exporter
        self.health = health or ExportHealth(results.signal, target_of(exporter))
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._replies = ReplyReader(exporter)  # partial successes, and 200 replies that are not OTLP
        self._rebuild = rebuild
        self._inherited = False
        quiet_sdk_logs(type(exporter).__module__)
        after_fork_in_child(self._after_fork_in_child)

    def _after_fork_in_child(self) -> None:
        # A gRPC channel belongs to the process that made it: in a forked child its locks may be held by
        # a thread that does not exist there, and closing or using it can block for ever or abort. The
        # child never touches it; it exports through a new exporter made the same way, when it first needs
        # one (not inside the fork handler).
        self._stop_lock = threading.Lock()
        # The SDK's gRPC exporters, and ours built on them (``grpc_span_exporter``).
        self._inherited = any(
            kind.__module__.startswith(_GRPC_EXPORTERS) for kind in type(self.exporter).__mro__
        )

    def _usable(self) -> bool:
        """Whether the exporter may be used in this process; makes a fresh one in a forked child."""
        if not self._inherited:
            return True
        rebuild, self._rebuild = self._rebuild, None
        if rebuild is None or _grpc_fork_support_off():
            return False  # with gRPC's fork support off, a new channel in a forked child crashes it
        try:
            fresh = rebuild()
        except Exception:
            internal_logger.debug("could not make a new exporter after fork", exc_info=True)
            return False
        self.exporter, self._replies, self._inherited = fresh, ReplyReader(fresh), False
        return True

    def export(self, batch: Sequence[ItemT]) -> ResultT:
        """Export through the wrapped exporter; ``FAILURE`` (counted) instead of any exception."""
        count = len(batch)
        if not count:
            return self.results.success
        if self._stopped:
            self.health.lost(count, "the exporter was shut down")
            return self.results.failure
        if not self._usable():
            self.health.lost(count, _INHERITED)
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
        if self._inherited:
            return True  # nothing of this process's is buffered in the parent's exporter
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
        if self._inherited:
            return  # the parent's exporter: shutting it down here could block on its connection's locks
        with Attributed(self.health):
            try:
                shutdown: Callable[..., object] = self.exporter.shutdown
                if timeout_millis is not None and _accepts_timeout(shutdown):
                    shutdown(timeout_millis=timeout_millis)
                else:
                    shutdown()
            except Exception:
                internal_logger.debug("exporter %s failed to shut down", self.health.target, exc_info=True)


_GRPC_EXPORTERS: Final = "opentelemetry.exporter.otlp.proto.grpc"
_INHERITED: Final = (
    "an OTLP/gRPC exporter made before fork() cannot be used in the forked child (its connection is the "
    "parent's; with GRPC_ENABLE_FORK_SUPPORT off, no new one can be made there either)"
)


def _grpc_fork_support_off() -> bool:
    return os.environ.get("GRPC_ENABLE_FORK_SUPPORT", "").strip().lower() in {"0", "false", "no", "off"}


def _accepts_timeout(function: Callable[..., object]) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and "timeout_millis" in code.co_varnames[: code.co_argcount]


# The SDK's batch processors take a SpanExporter or a LogRecordExporter (different base classes with
# differently typed ``export`` methods), so each signal keeps a class that only adds its base.
class CountingSpanExporter(CountingExporter[ReadableSpan, SpanExportResult], SpanExporter):
    """A span exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(
        self,
        exporter: SpanExporter,
        health: ExportHealth | None = None,
        rebuild: Callable[[], SpanExporter] | None = None,
    ) -> None:
        super().__init__(SPANS, exporter, health, rebuild)


class CountingLogExporter(CountingExporter[ReadableLogRecord, LogRecordExportResult], LogRecordExporter):
    """A log record exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        health: ExportHealth | None = None,
        rebuild: Callable[[], LogRecordExporter] | None = None,
    ) -> None:
        super().__init__(LOGS, exporter, health, rebuild)
