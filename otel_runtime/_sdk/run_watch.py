"""Put the run event and run metric processors on a tracer provider, once, and swap them on each configure().

:func:`watch_runs` adds one slot processor to the tracer provider the first time it is needed and puts
in it a :class:`RunEvents` (when a logger provider is given: logs are on) and a :class:`RunMetrics`
(when a meter provider is given: metrics are on), unless ``OTEL_RUNTIME_RUN_EVENTS`` /
``OTEL_RUNTIME_RUN_METRICS`` is ``false``. A later call replaces them; with logs and metrics off the
slot holds nothing, so runs pay nothing for it.
"""

from __future__ import annotations

import os
import threading
import weakref
from dataclasses import dataclass

from opentelemetry._logs import LoggerProvider
from opentelemetry.context import Context
from opentelemetry.metrics import MeterProvider
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider

from otel_runtime._base.guard import warn_once
from otel_runtime._sdk.run_events import RunEvents
from otel_runtime._sdk.run_metrics import RunMetrics
from otel_runtime.environment_variables import OTEL_RUNTIME_RUN_EVENTS, OTEL_RUNTIME_RUN_METRICS

__all__ = ["RunSlot", "RunWatch", "unwatch_runs", "watch_runs"]


class RunSlot(SpanProcessor):
    """The one processor watch_runs() adds to a tracer provider; a later call swaps what it holds.

    Holding nothing, it costs a run two empty loops (the bench uses it to switch run metrics on and off).
    """

    def __init__(self) -> None:
        self.held: tuple[SpanProcessor, ...] = ()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for processor in self.held:
            processor.on_start(span, parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self.held:
            processor.on_end(span)

    def shutdown(self) -> None:
        held, self.held = self.held, ()
        _shut(held)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all([processor.force_flush(timeout_millis) for processor in self.held])  # noqa: C419 - flush all


@dataclass(frozen=True, slots=True)
class RunWatch:
    """What one watch_runs() call put in a tracer provider's slot."""

    processors: tuple[SpanProcessor, ...] = ()
    tracer_provider: TracerProvider | None = None

    @property
    def events(self) -> bool:
        """Whether run events are emitted."""
        return any(isinstance(processor, RunEvents) for processor in self.processors)

    @property
    def metrics(self) -> bool:
        """Whether run metrics are kept."""
        return any(isinstance(processor, RunMetrics) for processor in self.processors)

    def force_flush(self) -> None:
        """Hand what the processors queued to their providers (call before flushing those)."""
        for processor in self.processors:
            processor.force_flush()

    def stop(self) -> None:
        """Take this call's processors out of the slot, after recording what they queued."""
        slot = _slots.get(self.tracer_provider) if self.tracer_provider is not None else None
        if slot is not None:
            with _lock:
                slot.held = tuple(p for p in slot.held if p not in self.processors)
        _shut(self.processors)


_lock = threading.Lock()
_slots: weakref.WeakKeyDictionary[TracerProvider, RunSlot] = weakref.WeakKeyDictionary()
_metrics: weakref.WeakKeyDictionary[MeterProvider, RunMetrics] = weakref.WeakKeyDictionary()


def _shut(processors: tuple[SpanProcessor, ...]) -> None:
    for processor in processors:
        try:
            processor.shutdown()
        except Exception:  # noqa: PERF203 - each processor stops, whatever the one before did
            warn_once("run-watch-shutdown", "otel_runtime could not stop a run processor", exc_info=True)


def _run_metrics(meter_provider: MeterProvider) -> RunMetrics:
    """The one RunMetrics of ``meter_provider``: its instruments (and the callback that records what the
    runs queued) can be created once per provider, so every configure() on that provider shares it."""
    with _lock:
        made = _metrics.get(meter_provider)
        if made is None:
            made = _metrics[meter_provider] = RunMetrics(meter_provider)
        return made


def _on(variable: str) -> bool:
    return os.environ.get(variable, "").strip().lower() != "false"


def watch_runs(
    tracer_provider: TracerProvider,
    logger_provider: LoggerProvider | None,
    meter_provider: MeterProvider | None,
) -> RunWatch:
    """Watch the runs of ``tracer_provider``: events to ``logger_provider``, metrics to ``meter_provider``.

    ``None`` for a provider turns its part off. Replaces what an earlier call put on this provider.
    """
    processors: list[SpanProcessor] = []
    if logger_provider is not None and _on(OTEL_RUNTIME_RUN_EVENTS):
        processors.append(RunEvents(logger_provider))
    if meter_provider is not None and _on(OTEL_RUNTIME_RUN_METRICS):
        processors.append(_run_metrics(meter_provider))
    held = tuple(processors)
    with _lock:
        slot = _slots.get(tracer_provider)
        if slot is None and held:
            slot = _slots[tracer_provider] = RunSlot()
            tracer_provider.add_span_processor(slot)
        replaced: tuple[SpanProcessor, ...] = ()
        if slot is not None:
            replaced, slot.held = slot.held, held
    _shut(tuple(processor for processor in replaced if processor not in held))
    return RunWatch(held, tracer_provider)


def unwatch_runs(tracer_provider: object) -> None:
    """Stop watching the runs of ``tracer_provider`` (if watch_runs() ever did)."""
    if isinstance(tracer_provider, TracerProvider):
        slot = _slots.get(tracer_provider)
        if slot is not None:
            slot.shutdown()
