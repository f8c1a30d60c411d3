"""Bare OpenTelemetry: the floor every run row is measured against, and the SDK set-up both share.

The floor does what a careful hand-written span costs with the OpenTelemetry API and SDK alone: start
a child span of the current context with the same name and attributes as our run's span, put the same
baggage entries on a context holding it, attach that context once, run the (empty) body, detach, end.
It passes one prebuilt attribute dict and attaches once, so it is the cheapest honest version: a
stricter floor than ``start_as_current_span`` plus a second attach for the baggage.

The attributes and baggage entries are not written out here: :func:`probe` takes them from a real run,
so the floor keeps matching whatever our runs record.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from otel_runtime.testing import capture_spans, use_tracer_provider

__all__ = [
    "QUEUE_SIZE",
    "DroppingExporter",
    "SpanShape",
    "bare_run",
    "bare_run_async",
    "bench_provider",
    "probe",
]


class DroppingExporter(SpanExporter):
    """Accepts every batch and keeps nothing; counts the spans so a row can check none was lost."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.exported = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        with self._lock:
            self.exported += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


QUEUE_SIZE = 16_384
"""The processor's queue: 8 times the default. A busy loop holds the GIL and the export thread falls
behind; with the default 2,048 it drops spans, and each drop costs a warning through ``logging``,
which would weigh on whichever side happened to drop."""


@contextmanager
def bench_provider() -> Iterator[tuple[TracerProvider, DroppingExporter]]:
    """The global tracer provider of the run rows: a ``BatchSpanProcessor`` to a dropping exporter."""
    exporter = DroppingExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=QUEUE_SIZE))
    with use_tracer_provider(provider):
        try:
            yield provider, exporter
        finally:
            provider.shutdown()


@dataclass(frozen=True)
class SpanShape:
    """What one run puts on the wire: its span name and attributes, and the baggage entries it sets."""

    name: str
    attributes: Mapping[str, Any]
    baggage: Mapping[str, str]


def probe(run: Callable[[], dict[str, object]], span_name: str) -> SpanShape:
    """Call ``run`` once under a capturing provider and take the shape of its span named ``span_name``.

    ``run`` returns the baggage entries its run added (what is in the run's baggage and differs from
    its parent's).
    """
    with capture_spans() as captured:
        entries = run()
    span = captured.find(span_name)
    return SpanShape(
        span.name, dict(span.attributes or {}), {key: str(value) for key, value in entries.items()}
    )


def bare_run(tracer: trace.Tracer, shape: SpanShape) -> None:
    """One bare-OpenTelemetry "run" with an empty body."""
    span = tracer.start_span(shape.name, attributes=shape.attributes)
    context = trace.set_span_in_context(span)
    for key, value in shape.baggage.items():
        context = baggage.set_baggage(key, value, context)
    token = otel_context.attach(context)
    try:
        pass
    finally:
        otel_context.detach(token)
        span.end()


async def bare_run_async(tracer: trace.Tracer, shape: SpanShape) -> None:
    """:func:`bare_run` as a coroutine, for ``asyncio.gather``."""
    bare_run(tracer, shape)
