"""Batch processors whose drops are counted and reported once per outage, with a bounded shutdown.

The batch processors of the OpenTelemetry SDK queue what ends and export it from a background thread;
the OTLP exporters retry a failed export with backoff until their timeout. What cannot be delivered is
dropped: a batch whose export finally failed, a span that found the queue full, whatever is still
queued when shutdown runs out of time. The SDK only logs those events, once per retry and per batch.

:func:`span_processor` and :func:`log_processor` build the SDK's batch processor around a counting
wrapper of the exporter, so that:

- every item that was not exported is counted, per pipeline (``processor.health``) and per process
  (:func:`~otel_runtime.dropped`), never silently;
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

import threading
import time
from collections.abc import Callable
from typing import Any, Final, Generic

from opentelemetry.sdk._logs import LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExporter
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from otel_runtime._base.guard import internal_logger
from otel_runtime._base.settings import DEFAULT_SHUTDOWN_TIMEOUT_MILLIS
from otel_runtime._sdk.batch_split import SplittingLogExporter, SplittingSpanExporter
from otel_runtime._sdk.counting_exporter import CountingExporter, CountingLogExporter, CountingSpanExporter
from otel_runtime._sdk.forks import after_fork_in_child
from otel_runtime._sdk.sdk_logs import Attributed, current_pipeline
from otel_runtime._sdk.signals import ItemT

__all__ = [
    "MonitoredLogProcessor",
    "MonitoredProcessor",
    "MonitoredSpanProcessor",
    "log_processor",
    "span_processor",
]

_FLUSH_POLL_S: Final = 0.02


class MonitoredProcessor(Generic[ItemT]):
    """A batch processor of items of type ``ItemT``: counted queueing, a bounded shutdown and flush.

    ``enqueue`` is the batch processor's own hook for an item (``on_end`` for spans, ``on_emit`` for log
    records); ``exporter`` is the counting exporter behind it.
    """

    def __init__(
        self,
        batch: SpanProcessor | LogRecordProcessor,
        enqueue: Callable[[ItemT], None],
        exporter: CountingExporter[Any, Any],
        shutdown_timeout_millis: float,
    ) -> None:
        self.exporter = exporter
        self.health = exporter.health
        self.shutdown_timeout_millis = shutdown_timeout_millis
        self._batch = batch
        self._enqueue = enqueue
        self._flush_lock = threading.Lock()
        self._flushing: _Flush | None = None
        self._queue_lock = threading.Lock()
        after_fork_in_child(self._reset_in_child)
        # The SDK keeps its queue in a private bounded deque; peeking at its length is how an item that
        # finds the queue full (the SDK then drops the oldest) is counted at once, not only at shutdown.
        self._core = getattr(batch, "_batch_processor", None)
        self._queue_limit: int | None = getattr(getattr(self._core, "_queue", None), "maxlen", None)

    def _reset_in_child(self) -> None:
        # A flush thread of the parent does not exist in a forked child.
        self._flush_lock = threading.Lock()
        self._flushing = None
        self._queue_lock = threading.Lock()

    def queue(self, item: ItemT) -> None:
        """Count ``item`` and hand it to the batch processor (not after shutdown).

        An item that finds the queue full is dropped and counted here; it never reaches the SDK, which
        would drop the oldest item instead and log a warning per item. Only one item is queued at a time
        (the export thread only takes items out), so the queue never overflows behind the count's back.
        """
        if not self.health.accept():
            return
        limit = self._queue_limit
        if limit is None:
            self._enqueue(item)
            return
        with self._queue_lock:
            queue = getattr(self._core, "_queue", None)  # replaced after a fork: look it up each time
            if queue is None or len(queue) < limit:
                self._enqueue(item)
                return
        self.health.overflowed()

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Export what is queued within ``timeout_millis`` (default ``shutdown_timeout_millis``); count and
        report what is left. Only the first call does anything."""
        health = self.health
        if not health.start_closing():
            return
        with Attributed(health):
            try:
                core_shutdown = getattr(self._core, "shutdown", None)
                if callable(core_shutdown):
                    # The SDK's BatchProcessor.shutdown(timeout_millis) joins the export thread for at
                    # most that long, then shuts the exporter down, which aborts a retry in progress;
                    # BatchSpanProcessor.shutdown() itself always passes 30 s.
                    bound = self.shutdown_timeout_millis if timeout_millis is None else timeout_millis
                    core_shutdown(timeout_millis=max(0.0, bound))
                self._batch.shutdown()
                self.exporter.stop(0)
            except Exception:
                internal_logger.debug("processor for %s failed to shut down", health.target, exc_info=True)
            health.finish()

    def force_flush(self, timeout_millis: int = 30_000, *, patience_millis: float | None = None) -> bool:
        """Export what is queued now; ``False`` when that did not finish within ``timeout_millis``.

        The SDK's batch processor ignores the timeout and waits for the exporter, which retries a down
        collector for its whole timeout, so the flush runs in a daemon thread and this waits for at most
        ``timeout_millis``, and no longer than it takes to see an export fail: while export is failing a
        flush cannot succeed, and whoever flushes (a worker after each task run, say) need not wait.
        Nor does it wait for a collector that takes longer than ``patience_millis`` (default:
        ``timeout_millis``) to answer: an export in flight that long, or a last export that took that
        long, gives up at once (a black-holed or slow collector).
        """
        health = self.health
        patience_s = (timeout_millis if patience_millis is None else patience_millis) / 1000
        if health.in_outage or health.closing or health.slower_than(patience_s):
            return False
        with self._flush_lock:
            flushing = self._flushing
            if flushing is None or flushing.done.is_set():
                flushing = self._flushing = _Flush(self._batch, timeout_millis)
                if not flushing.start():  # no new threads (the interpreter is exiting): flush here
                    return bool(self._batch.force_flush(timeout_millis))
        deadline = time.monotonic() + timeout_millis / 1000
        while not flushing.done.wait(min(_FLUSH_POLL_S, max(0.0, deadline - time.monotonic()))):
            if health.in_outage or time.monotonic() >= deadline or health.slower_than(patience_s):
                return False
        return flushing.flushed


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


# A tracer provider takes a SpanProcessor and a logger provider a LogRecordProcessor (different base
# classes with different hooks), so each signal keeps a class that builds its batch processor and
# forwards its one hook; everything else is shared above.
class MonitoredSpanProcessor(MonitoredProcessor[ReadableSpan], SpanProcessor):
    """A ``BatchSpanProcessor`` over a :class:`CountingSpanExporter`: counted drops, bounded shutdown.

    ``batch_options`` go to ``BatchSpanProcessor`` (``schedule_delay_millis``, ``max_queue_size``, ...;
    by default from ``OTEL_BSP_*``).
    """

    def __init__(
        self,
        exporter: SpanExporter,
        *,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
        **batch_options: Any,
    ) -> None:
        counting = exporter if isinstance(exporter, CountingSpanExporter) else CountingSpanExporter(exporter)
        # Batches go out in parts under the collector's size limit (batch_split), each part counted.
        self.batch = BatchSpanProcessor(SplittingSpanExporter(counting), **batch_options)
        super().__init__(self.batch, self.batch.on_end, counting, shutdown_timeout_millis)

    def on_end(self, span: ReadableSpan) -> None:
        """Count the span and queue it for export (sampled spans only, as the batch processor does)."""
        context = span.context
        if context is not None and context.trace_flags.sampled:
            self.queue(span)


class MonitoredLogProcessor(MonitoredProcessor[ReadWriteLogRecord], LogRecordProcessor):
    """A ``BatchLogRecordProcessor`` over a :class:`CountingLogExporter`: counted drops, bounded shutdown.

    ``batch_options`` go to ``BatchLogRecordProcessor`` (by default from ``OTEL_BLRP_*``).
    """

    def __init__(
        self,
        exporter: LogRecordExporter,
        *,
        shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS,
        **batch_options: Any,
    ) -> None:
        counting = exporter if isinstance(exporter, CountingLogExporter) else CountingLogExporter(exporter)
        self.batch = BatchLogRecordProcessor(SplittingLogExporter(counting), **batch_options)
        super().__init__(self.batch, self.batch.on_emit, counting, shutdown_timeout_millis)

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Count the record and queue it for export."""
        if self.health.closing and current_pipeline() is self.health:
            return  # this pipeline's own shutdown line: it has nowhere to go
        self.queue(log_record)


span_processor: Final = MonitoredSpanProcessor
"""A batch span processor for an exporter, whose drops are counted and reported once per outage."""
log_processor: Final = MonitoredLogProcessor
"""A batch log record processor for an exporter, whose drops are counted and reported once per outage."""
