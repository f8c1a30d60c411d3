"""The export rows: task-run spans through the ``BatchSpanProcessor`` and OTLP/gRPC to a receiver.

The exporter is the one ``configure()`` builds (the SDK's OTLP/gRPC exporter with our request encoder,
``_sdk/grpc_span_exporter``); the row to a receiver that does not decode also times the SDK's own
exporter, as its floor.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from bench import _timing
from bench._raw_receiver import raw_receiver
from bench._receiver_process import receiver_process
from bench._report import TIMES, Row, format_ns
from bench._timing import compare, rounds
from bench._workloads import in_flow, run_tasks
from otel_runtime._sdk.exporters import otlp_span_exporter
from otel_runtime._sdk.otlp_spans import encode_spans
from otel_runtime.testing import use_tracer_provider

__all__ = ["RAW_TARGET", "encoding_row", "otlp_raw_row", "otlp_row"]

RAW_TARGET = 16_400
"""Spans/s to a receiver that does not decode: 1.3 times the ~12.6k measured when the target was set."""


class _Counting(SpanExporter):
    def __init__(self, exporter: SpanExporter) -> None:
        self.exporter = exporter
        self.results: Counter[str] = Counter()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.exporter.export(spans)
        self.results[result.name] += len(spans)
        return result

    def shutdown(self) -> None:
        self.exporter.shutdown()


def _configured_exporter(endpoint: str) -> SpanExporter:
    url = endpoint if "://" in endpoint else f"http://{endpoint}"  # the raw receiver gives host:port
    return otlp_span_exporter(endpoint=url, protocol="grpc")


def _sdk_exporter(endpoint: str) -> SpanExporter:
    return OTLPSpanExporter(endpoint=endpoint, insecure=True)


def _export_runs(
    endpoint: str, total: int, make: Callable[[str], SpanExporter] = _configured_exporter
) -> tuple[_Counting, float, float]:
    """``total`` spans (a flow run, its task runs) sent to ``endpoint`` by the exporter ``make`` builds:
    (exporter, runs done, all sent)."""
    exporter = _Counting(make(endpoint))
    provider = TracerProvider(shutdown_on_exit=False)
    processor = BatchSpanProcessor(exporter, max_queue_size=65_536, max_export_batch_size=512)
    provider.add_span_processor(processor)
    with use_tracer_provider(provider):
        start = time.perf_counter()
        in_flow(lambda: run_tasks(total - 1))  # the flow's span makes it ``total``
        created = time.perf_counter() - start
        provider.force_flush(120_000)
        seconds = time.perf_counter() - start
    provider.shutdown()
    return exporter, created, seconds


def otlp_row() -> Row:
    total = 5_000 if _timing.QUICK else 50_000
    with receiver_process() as (endpoint, received):
        exporter, created, seconds = _export_runs(endpoint, total)
        spans, distinct = received(total, 30)
    dropped = total - distinct
    return Row(
        f"{total:,} spans (task runs) over OTLP/gRPC to `OtlpReceiver`",
        f"{seconds:.1f} s (runs done at {created:.1f} s)",
        "—",
        f"{total / seconds:,.0f} spans/s; {dropped} dropped",
        "zero dropped",
        dropped == 0 and spans == total and exporter.results["SUCCESS"] == total,
    )


def otlp_raw_row() -> Row:
    total = 5_000 if _timing.QUICK else 50_000
    with raw_receiver() as (endpoint, _):
        sdk, _, sdk_seconds = _export_runs(endpoint, total, _sdk_exporter)
    with raw_receiver() as (endpoint, counts):
        exporter, created, seconds = _export_runs(endpoint, total)
    requests, size = counts
    dropped = total - exporter.results["SUCCESS"]
    sdk_dropped = total - sdk.results["SUCCESS"]
    rate = total / seconds
    return Row(
        f"{total:,} spans (task runs) over OTLP/gRPC to a receiver that does not decode",
        f"{seconds:.2f} s (runs done at {created:.2f} s)",
        f"{total / sdk_seconds:,.0f} spans/s with the SDK's exporter ({sdk_dropped} dropped)",
        f"{rate:,.0f} spans/s; {dropped} dropped; {requests} requests, {size / total:.0f} B a span",
        f"≥ {RAW_TARGET:,} spans/s, zero dropped",
        dropped == 0 and rate >= RAW_TARGET,
    )


def encoding_row() -> Row:
    """Encoding one export's batch (512 task-run spans) into the request's bytes: our encoder against
    the SDK's ``encode_spans(...).SerializeToString()``, per span."""
    captured = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(captured))
    with use_tracer_provider(provider):
        in_flow(lambda: run_tasks(511))
    spans = captured.get_finished_spans()
    assert len(spans) == 512

    def ours(n: int) -> None:
        for _ in range(n):
            encode_spans(spans)

    def floor(n: int) -> None:
        for _ in range(n):
            sdk_encode_spans(spans).SerializeToString()

    result = compare(ours, floor, n=2, rounds=rounds(15))
    return Row(
        "OTLP request of a batch of 512 task-run spans, per span, against the SDK's encoder",
        format_ns(result.ours_ns / len(spans)),
        format_ns(result.floor_ns / len(spans)),
        f"{result.ratio:.2f}{TIMES}",
        "—",
        None,
    )
