"""Export health: count the spans and log records that never reached the collector, and say so once.

The batch processors of the OpenTelemetry SDK queue what ends and export it from a background thread;
the OTLP exporters retry a failed export with backoff until their timeout. What cannot be delivered is
dropped: a batch whose export finally failed, a span that found the queue full, whatever is still
queued when shutdown runs out of time. The SDK only logs those events, once per retry and per batch.

:func:`span_processor` and :func:`log_processor` build the SDK's batch processor around a counting
wrapper of the exporter, so that:

- every item that was not exported is counted, per pipeline (``processor.health``) and per process
  (:func:`dropped`), never silently;
- an outage is reported by **one** warning on the ``otel_runtime`` logger when it starts (the OTLP
  exporters' own per-retry messages are logged at ``DEBUG`` meanwhile) and one ``INFO`` line when export
  recovers;
- shutdown finishes within ``shutdown_timeout_millis`` even when the collector is down or slow (retries
  are cut short; what is left is counted), and ends with one warning line if anything was dropped.

Use them where a ``BatchSpanProcessor`` / ``BatchLogRecordProcessor`` would go::

    provider.add_span_processor(span_processor(OTLPSpanExporter()))
    logger_provider.add_log_record_processor(log_processor(OTLPLogExporter()))
    ...
    otel_runtime.dropped()  # Dropped(spans=0, logs=0)
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from opentelemetry.context import Context
from opentelemetry.sdk._logs import LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_runtime._base.guard import internal_logger

__all__ = [
    "DEFAULT_SHUTDOWN_TIMEOUT_MILLIS",
    "CountingLogExporter",
    "CountingSpanExporter",
    "Dropped",
    "ExportHealth",
    "MonitoredLogProcessor",
    "MonitoredSpanProcessor",
    "dropped",
    "log_processor",
    "span_processor",
]

DEFAULT_SHUTDOWN_TIMEOUT_MILLIS: Final = 5_000
"""How long a monitored processor's ``shutdown()`` may take: flush, then cut retries short and count."""

Signal = Literal["spans", "logs"]

# Loggers of the SDK and the OTLP exporters that complain once per retry, per batch or per dropped item.
# A logger's filters only see records logged on that very logger, so each is named.
_SDK_LOGGERS: Final = (
    "opentelemetry.sdk._shared_internal",
    "opentelemetry.exporter.otlp.proto.grpc.exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    "opentelemetry.exporter.otlp.proto.http._log_exporter",
    "opentelemetry.exporter.otlp.common.http",
)
_NOUN: Final[dict[Signal, str]] = {"spans": "spans", "logs": "log records"}


@dataclass(frozen=True, slots=True)
class Dropped:
    """How many spans and log records this process dropped instead of exporting them."""

    spans: int = 0
    logs: int = 0

    def __bool__(self) -> bool:
        return bool(self.spans or self.logs)


_totals_lock = threading.Lock()
_totals: dict[Signal, int] = {"spans": 0, "logs": 0}


def dropped() -> Dropped:
    """Spans and log records that this process's monitored pipelines dropped so far.

    Counted: every item in a batch whose export failed (after the exporter's own retries), every item
    that found the export queue full or arrived after shutdown, and, at shutdown, every item that was
    not exported within the bound. A fork starts the child at zero.
    """
    with _totals_lock:
        return Dropped(spans=_totals["spans"], logs=_totals["logs"])


def _add_total(signal: Signal, count: int) -> None:
    with _totals_lock:
        _totals[signal] += count


def _reset_totals_in_child() -> None:
    global _totals_lock  # noqa: PLW0603 - a fork taken while the lock was held would leave it held
    _totals_lock = threading.Lock()
    _totals["spans"] = _totals["logs"] = 0


os.register_at_fork(after_in_child=_reset_totals_in_child)


def _after_fork_in_child(method: Callable[[], None]) -> None:
    """Call the bound ``method`` in a forked child, for as long as its object lives."""
    weak = weakref.WeakMethod(method)

    def after_in_child() -> None:
        reset = weak()
        if reset is not None:
            reset()

    os.register_at_fork(after_in_child=after_in_child)


# -- which pipeline is exporting on this thread: SDK complaints logged meanwhile are its business -----

_local = threading.local()


def _current() -> ExportHealth | None:
    health: ExportHealth | None = getattr(_local, "health", None)
    return health


class _Attributed:
    """``with _Attributed(health):`` SDK warnings logged on this thread belong to ``health``'s pipeline."""

    __slots__ = ("_health", "_previous")

    def __init__(self, health: ExportHealth) -> None:
        self._health = health
        self._previous: ExportHealth | None = None

    def __enter__(self) -> None:
        self._previous = _current()
        _local.health = self._health

    def __exit__(self, *exc_info: object) -> None:
        _local.health = self._previous


class _QuietSdkLogs(logging.Filter):
    """Demote the SDK's per-retry and per-batch warnings to ``DEBUG`` while a monitored pipeline reports.

    Only records logged on a thread that is exporting for a monitored pipeline are touched; the pipeline
    takes the message as the reason of its one outage warning. Everything else passes unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        health = _current()
        if health is None or record.levelno < logging.WARNING:
            return True
        try:
            message = record.getMessage()
        except Exception:
            message = str(record.msg)
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        health.trouble(message)
        return True


_quiet_filter = _QuietSdkLogs()
_installed: set[str] = set()
_install_lock = threading.Lock()


def _quiet_sdk_logs(*extra_loggers: str) -> None:
    """Install the filter on the SDK's exporter loggers (and ``extra_loggers``), once each."""
    with _install_lock:
        for name in (*_SDK_LOGGERS, *extra_loggers):
            if name not in _installed:
                # First in line: the SDK's own DuplicateFilter would hide a repeated message from it.
                logging.getLogger(name).filters.insert(0, _quiet_filter)
                _installed.add(name)


# -- the counters of one pipeline ----------------------------------------------------------------------


class ExportHealth:
    """The counters and outage state of one export pipeline (one exporter behind one batch processor).

    ``ended``: items handed to the pipeline; ``exported``: items the exporter confirmed; ``dropped``:
    items counted as lost (failed exports, a full queue, after shutdown, left over at shutdown).
    """

    def __init__(self, signal: Signal, target: str) -> None:
        self.signal: Signal = signal
        self.target = target
        self._lock = threading.Lock()
        self.ended = 0
        self.exported = 0
        self.dropped = 0
        self.finished = False
        self.closing = False
        self.outages = 0
        self.last_reason: str | None = None
        self._outage_since: float | None = None
        self._dropped_at_outage = 0
        _after_fork_in_child(self._reset_in_child)

    def __repr__(self) -> str:
        return (
            f"ExportHealth({self.signal!r}, target={self.target!r}, ended={self.ended}, "
            f"exported={self.exported}, dropped={self.dropped}, outages={self.outages})"
        )

    @property
    def in_outage(self) -> bool:
        """Whether exports are failing now (since the last warning, without a success after it)."""
        return self._outage_since is not None

    def _reset_in_child(self) -> None:
        # The parent's queue is cleared in a forked child (the SDK does it), so are its counts.
        self._lock = threading.Lock()
        self.ended = self.exported = self.dropped = self.outages = self._dropped_at_outage = 0
        self._outage_since = self.last_reason = None
        self.finished = self.closing = False

    def accept(self) -> bool:
        """Count one item handed to the pipeline; ``False`` (and counted dropped) once it has finished."""
        with self._lock:
            if not self.finished:
                self.ended += 1
                return True
            self.dropped += 1
        _add_total(self.signal, 1)
        return False

    def trouble(self, reason: str | None) -> None:
        """Exporting is failing (an attempt failed, or the queue is full): warn if this starts an outage.

        ``reason`` is what went wrong, ``None`` when nothing more was said than "the export failed".
        """
        with self._lock:
            if reason is not None and not (self.closing and self.last_reason):  # keep the cause, not
                self.last_reason = reason.strip().rstrip(".")  # "shutdown in progress" that follows it
            reason = self.last_reason
            if self._outage_since is not None or self.closing:
                return  # already reported; or shutting down, when the closing line says it all
            self._outage_since = time.monotonic()
            self._dropped_at_outage = self.dropped
            self.outages += 1
        noun = _NOUN[self.signal]
        internal_logger.warning(
            "otel_runtime could not export %s to %s: %s. Export is retried; %s that cannot be delivered "
            "are dropped and counted (otel_runtime.dropped()). Not repeated until export recovers.",
            noun,
            self.target,
            reason or "the export failed",
            noun,
        )

    def succeeded(self, count: int) -> None:
        """``count`` items were exported; an outage, if any, is over."""
        with self._lock:
            self.exported += count
            since, self._outage_since = self._outage_since, None
            lost = self.dropped - self._dropped_at_outage
        if since is not None:
            internal_logger.info(
                "otel_runtime: exporting %s to %s recovered after %.1f s; %d dropped meanwhile",
                _NOUN[self.signal],
                self.target,
                time.monotonic() - since,
                lost,
            )

    def lost(self, count: int, reason: str | None) -> None:
        """``count`` items were dropped because of ``reason`` (``None``: the exporter's last complaint)."""
        with self._lock:
            if self.finished:  # an export still running at shutdown: its items were counted then
                return
            self.dropped += count
        _add_total(self.signal, count)
        self.trouble(reason)

    def finish(self) -> int:
        """The pipeline has shut down: count what was neither exported nor dropped; log one line if any."""
        with self._lock:
            if self.finished:
                return self.dropped
            self.finished = self.closing = True
            left_over = max(0, self.ended - self.exported - self.dropped)
            self.dropped += left_over
            total, ended, reason = self.dropped, self.ended, self.last_reason
        _add_total(self.signal, left_over)
        noun = _NOUN[self.signal]
        if total:
            internal_logger.warning(
                "otel_runtime dropped %d of %d %s: they were not exported to %s (last error: %s). "
                "See otel_runtime.dropped().",
                total,
                ended,
                noun,
                self.target,
                reason or "the export failed",
            )
        else:
            internal_logger.debug("otel_runtime exported all %d %s to %s", ended, noun, self.target)
        return total


def _target(exporter: object) -> str:
    endpoint = getattr(exporter, "_endpoint", None)
    name = type(exporter).__name__
    return f"{endpoint} ({name})" if isinstance(endpoint, str) and endpoint else name


def _reason(error: BaseException | None) -> str | None:
    return f"{type(error).__name__}: {error}" if error is not None else None


# -- exporters -----------------------------------------------------------------------------------------


class _Counting:
    """What both counting exporters share: attribute SDK logs, never raise, abort once on demand."""

    def __init__(self, exporter: Any, health: ExportHealth) -> None:
        self.exporter = exporter
        self.health = health
        self._stopped = False
        self._stop_lock = threading.Lock()
        _quiet_sdk_logs(type(exporter).__module__)

    def _export(self, items: Sequence[Any], call: Callable[[], object], success: object) -> bool:
        count = len(items)
        if not count:
            return True
        if self._stopped:
            self.health.lost(count, "the exporter was shut down")
            return False
        error: BaseException | None = None
        with _Attributed(self.health):
            try:
                result = call()
            except Exception as caught:  # an exporter must not break the batch processor's thread
                result, error = None, caught
        if result == success:
            self.health.succeeded(count)
            return True
        self.health.lost(count, _reason(error))
        return False

    def _stop(self, timeout_millis: float | None) -> None:
        """Shut the wrapped exporter down once (which also cuts its retries short)."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        with _Attributed(self.health):
            try:
                shutdown = self.exporter.shutdown
                if timeout_millis is not None and _accepts_timeout(shutdown):
                    shutdown(timeout_millis=timeout_millis)
                else:
                    shutdown()
            except Exception:
                internal_logger.debug("exporter %s failed to shut down", self.health.target, exc_info=True)


def _accepts_timeout(function: Callable[..., object]) -> bool:
    code = getattr(function, "__code__", None)
    return code is not None and "timeout_millis" in code.co_varnames[: code.co_argcount]


class CountingSpanExporter(_Counting, SpanExporter):
    """A span exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(self, exporter: SpanExporter, health: ExportHealth | None = None) -> None:
        super().__init__(exporter, health or ExportHealth("spans", _target(exporter)))

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Export through the wrapped exporter; ``FAILURE`` (counted) instead of any exception."""
        exported = self._export(spans, lambda: self.exporter.export(spans), SpanExportResult.SUCCESS)
        return SpanExportResult.SUCCESS if exported else SpanExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut the wrapped exporter down (once)."""
        self._stop(timeout_millis)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        with _Attributed(self.health):
            try:
                return bool(self.exporter.force_flush(timeout_millis))
            except Exception:
                return False


class CountingLogExporter(_Counting, LogRecordExporter):
    """A log record exporter that counts what ``exporter`` exported and dropped, and never raises."""

    def __init__(self, exporter: LogRecordExporter, health: ExportHealth | None = None) -> None:
        super().__init__(exporter, health or ExportHealth("logs", _target(exporter)))

    def export(self, batch: Sequence[ReadableLogRecord]) -> LogRecordExportResult:
        """Export through the wrapped exporter; ``FAILURE`` (counted) instead of any exception."""
        exported = self._export(batch, lambda: self.exporter.export(batch), LogRecordExportResult.SUCCESS)
        return LogRecordExportResult.SUCCESS if exported else LogRecordExportResult.FAILURE

    def shutdown(self, timeout_millis: float = 30_000) -> None:
        """Shut the wrapped exporter down (once)."""
        self._stop(timeout_millis)

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        with _Attributed(self.health):
            try:
                return bool(self.exporter.force_flush(timeout_millis))
            except Exception:
                return False


# -- processors ----------------------------------------------------------------------------------------


_SKIP: Final = 0
_FORWARD: Final = 1
_FORWARD_FULL: Final = 2


class _Monitored:
    """What both monitored processors share: the overflow check and the bounded, counted shutdown."""

    def __init__(
        self, batch: SpanProcessor | LogRecordProcessor, exporter: _Counting, timeout: float
    ) -> None:
        self.exporter = exporter
        self.health = exporter.health
        self.shutdown_timeout_millis = timeout
        self._batch = batch
        self._flush_lock = threading.Lock()
        self._flushing: _Flush | None = None
        _after_fork_in_child(self._reset_in_child)
        # The SDK keeps its queue in a private bounded deque; peeking at its length is how an item that
        # finds the queue full (the SDK then drops the oldest) is counted at once, not only at shutdown.
        self._core = getattr(batch, "_batch_processor", None)
        self._queue_limit: int | None = getattr(getattr(self._core, "_queue", None), "maxlen", None)

    def _reset_in_child(self) -> None:
        # A flush thread of the parent does not exist in a forked child.
        self._flush_lock = threading.Lock()
        self._flushing = None

    def _admit(self) -> int:
        """Count one item: ``_SKIP`` after shutdown, ``_FORWARD_FULL`` into a full queue, or ``_FORWARD``."""
        if not self.health.accept():
            return _SKIP
        limit = self._queue_limit
        if limit is not None:
            queue = getattr(self._core, "_queue", None)  # replaced after a fork: look it up each time
            if queue is not None and len(queue) >= limit:
                self.health.lost(1, "the export queue is full: the exporter cannot keep up")
                return _FORWARD_FULL  # the SDK logs a warning for it: attribute that to this pipeline
        return _FORWARD

    def _shutdown(self, timeout_millis: float | None) -> None:
        """Shut down within ``timeout_millis`` (default ``shutdown_timeout_millis``): flush what is queued,
        then cut retries short, count what is left and say so."""
        health = self.health
        with health._lock:
            if health.closing:
                return
            health.closing = True
        with _Attributed(health):
            try:
                core_shutdown = getattr(self._core, "shutdown", None)
                if callable(core_shutdown):
                    # The SDK's BatchProcessor.shutdown(timeout_millis) joins the export thread for at
                    # most that long, then shuts the exporter down, which aborts a retry in progress;
                    # BatchSpanProcessor.shutdown() itself always passes 30 s.
                    bound = self.shutdown_timeout_millis if timeout_millis is None else timeout_millis
                    core_shutdown(timeout_millis=max(0.0, bound))
                self._batch.shutdown()
                self.exporter._stop(0)
            except Exception:
                internal_logger.debug("processor for %s failed to shut down", health.target, exc_info=True)
            health.finish()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Export what is queued now; ``False`` when that did not finish within ``timeout_millis``.

        The SDK's batch processor ignores the timeout and waits for the exporter, which retries a down
        collector for its whole timeout, so the flush runs in a daemon thread and this waits for at most
        ``timeout_millis``, and no longer than it takes to see an export fail: while export is failing a
        flush cannot succeed, and whoever flushes (a worker after each task run, say) need not wait.
        """
        health = self.health
        if health.in_outage or health.closing:
            return False
        with self._flush_lock:
            flushing = self._flushing
            if flushing is None or flushing.done.is_set():
                flushing = self._flushing = _Flush(self._batch, timeout_millis)
                if not flushing.start():  # no new threads (the interpreter is exiting): flush here
                    return bool(self._batch.force_flush(timeout_millis))
        deadline = time.monotonic() + timeout_millis / 1000
        while not flushing.done.wait(min(_FLUSH_POLL_S, max(0.0, deadline - time.monotonic()))):
            if health.in_outage or time.monotonic() >= deadline:
                return False
        return flushing.flushed


_FLUSH_POLL_S: Final = 0.02


class _Flush:
    """One flush of a batch processor, running in a daemon thread."""

    def __init__(self, batch: SpanProcessor | LogRecordProcessor, timeout_millis: int) -> None:
        self.done = threading.Event()
        self.flushed = False
        self._batch = batch
        self._timeout_millis = timeout_millis

    def start(self) -> bool:
        try:
            threading.Thread(target=self._run, name="otel_runtime-flush", daemon=True).start()
        except RuntimeError:
            return False
        return True

    def _run(self) -> None:
        try:
            self.flushed = bool(self._batch.force_flush(self._timeout_millis))
        except Exception:
            internal_logger.debug("flush failed", exc_info=True)
        finally:
            self.done.set()


class MonitoredSpanProcessor(_Monitored, SpanProcessor):
    """A ``BatchSpanProcessor`` over a :class:`CountingSpanExporter`: counted drops, bounded shutdown."""

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
        **batch_options: Any,
    ) -> None:
        counting = exporter if isinstance(exporter, CountingSpanExporter) else CountingSpanExporter(exporter)
        self.batch = BatchSpanProcessor(counting, **batch_options)
        super().__init__(self.batch, counting, shutdown_timeout_millis)

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        """Nothing to do when a span starts."""

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span and queue it for export (sampled spans only, as the batch processor does)."""
        context = span.context
        if context is None or not context.trace_flags.sampled:
            return
        admitted = self._admit()
        if admitted == _FORWARD:
            self.batch.on_end(span)
        elif admitted == _FORWARD_FULL:
            with _Attributed(self.health):
                self.batch.on_end(span)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued within ``timeout_millis`` (default ``shutdown_timeout_millis``); count and
        report what is left. Only the first call does anything."""
        self._shutdown(timeout_millis)


class MonitoredLogProcessor(_Monitored, LogRecordProcessor):
    """A ``BatchLogRecordProcessor`` over a :class:`CountingLogExporter`: counted drops, bounded shutdown."""

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
        **batch_options: Any,
    ) -> None:
        counting = exporter if isinstance(exporter, CountingLogExporter) else CountingLogExporter(exporter)
        self.batch = BatchLogRecordProcessor(counting, **batch_options)
        super().__init__(self.batch, counting, shutdown_timeout_millis)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Count the record and queue it for export."""
        if self.health.closing and _current() is self.health:
            return  # this pipeline's own shutdown line: it has nowhere to go
        admitted = self._admit()
        if admitted == _FORWARD:
            self.batch.on_emit(log_record)
        elif admitted == _FORWARD_FULL:
            with _Attributed(self.health):
                self.batch.on_emit(log_record)

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued within ``timeout_millis`` (default ``shutdown_timeout_millis``); count and
        report what is left. Only the first call does anything."""
        self._shutdown(timeout_millis)


def span_processor(
    exporter: SpanExporter,
    *,
    shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
    **batch_options: Any,
) -> MonitoredSpanProcessor:
    """A batch span processor for ``exporter`` whose drops are counted and reported once per outage.

    ``batch_options`` go to ``BatchSpanProcessor`` (``schedule_delay_millis``, ``max_queue_size``, ...;
    by default from ``OTEL_BSP_*``).
    """
    return MonitoredSpanProcessor(exporter, shutdown_timeout_millis=shutdown_timeout_millis, **batch_options)


def log_processor(
    exporter: LogRecordExporter,
    *,
    shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
    **batch_options: Any,
) -> MonitoredLogProcessor:
    """A batch log record processor for ``exporter`` whose drops are counted and reported once per outage.

    ``batch_options`` go to ``BatchLogRecordProcessor`` (by default from ``OTEL_BLRP_*``).
    """
    return MonitoredLogProcessor(exporter, shutdown_timeout_millis=shutdown_timeout_millis, **batch_options)
