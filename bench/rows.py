"""One function per row of the table. Each runs ours and its floor side by side and returns the row.

The run rows expect the set-up of ``bench.__main__``: the ``bench_provider()`` tracer provider is
global and the deployment ``DEPLOYMENT`` is active.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import io
import os
import resource
import statistics
import time
from collections import Counter
from collections.abc import Sequence

import structlog
from opentelemetry import baggage, trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench._floor import bare_run, bare_run_async
from bench._imports import import_row
from bench._receiver_process import receiver_process
from bench._report import TIMES, Row, format_ns, ratio_row
from bench._timing import compare, time_once
from bench._workloads import (
    empty_flow,
    flow_shape,
    gather,
    in_flow,
    in_task,
    noop_async_task,
    noop_task,
    run_tasks,
    task_shape,
)
from otel_runtime import runtime
from otel_runtime._core.models import FlowRun, TaskRun
from otel_runtime._sdk.run_metrics import RunMetrics
from otel_runtime._sdk.run_watch import RunSlot
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.logging import add_run_context
from otel_runtime.testing import use_tracer_provider

__all__ = [
    "accessor_rows",
    "async_gather_row",
    "flow_run_row",
    "log_processor_row",
    "memory_row",
    "metrics_row",
    "otlp_row",
    "prefect_row",
    "task_run_row",
]

QUICK = False
"""``--quick``: fewer rounds and smaller counts, for a smoke test of the bench itself."""


def _rounds(full: int) -> int:
    return 5 if QUICK else full


def _floor_tracer() -> trace.Tracer:
    return trace.get_tracer("bench.floor")


# 1. task run inside a flow
def task_run_row() -> Row:
    shape, tracer = task_shape(), _floor_tracer()

    def ours(n: int) -> None:
        for _ in range(n):
            noop_task()

    def floor(n: int) -> None:
        for _ in range(n):
            bare_run(tracer, shape)

    result = in_flow(lambda: compare(ours, floor, n=2_000, rounds=_rounds(31)))
    return ratio_row("task run in a flow (sync, no-op body)", result, 1.5)


# 2. flow run with no tasks
def flow_run_row() -> Row:
    shape, tracer = flow_shape(), _floor_tracer()

    def ours(n: int) -> None:
        for _ in range(n):
            empty_flow()

    def floor(n: int) -> None:
        for _ in range(n):
            bare_run(tracer, shape)

    return ratio_row("flow run, no tasks", compare(ours, floor, n=1_000, rounds=_rounds(31)), 2.0)


# 3. runtime accessors inside a task, against opentelemetry.baggage.get_baggage
def _flow_run_id(n: int) -> None:
    for _ in range(n):
        _ = runtime.flow_run.id


def _deployment_name(n: int) -> None:
    for _ in range(n):
        _ = runtime.deployment.name


def _task_run_name(n: int) -> None:
    for _ in range(n):
        _ = runtime.task_run.name


def _baggage(key: str):
    def read(n: int) -> None:
        get_baggage = baggage.get_baggage
        for _ in range(n):
            _ = get_baggage(key)

    return read


def accessor_rows() -> list[Row]:
    cases = [
        ("`runtime.flow_run.id` in a task", _flow_run_id, "flow_run.id"),
        ("`runtime.deployment.name` in a task", _deployment_name, "deployment.name"),
        ("`runtime.task_run.name` in a task", _task_run_name, "task_run.id"),
    ]

    def measure() -> list[Row]:
        return [
            ratio_row(
                name,
                compare(ours, _baggage(key), n=100_000, rounds=_rounds(15), minus_loop=True),
                3.0,
                max_ns=1_000,
            )
            for name, ours, key in cases
        ]

    return in_flow(lambda: in_task(measure))


# 4. the structlog processor in a JSON-rendering chain
def log_processor_row() -> Row:
    sink = io.StringIO()
    head = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]

    def logger(*processors):
        chain = [*head, *processors, structlog.processors.JSONRenderer()]
        return structlog.wrap_logger(structlog.WriteLogger(sink), processors=chain)

    def lines(log):
        def write(n: int) -> None:
            sink.seek(0)
            sink.truncate()
            for index in range(n):
                log.info("bench line", index=index)

        return write

    def measure():
        fields = add_run_context(None, "info", {})  # what the processor adds here, as constants

        def stamp(_logger, _method, event_dict):
            event_dict.update(fields)
            return event_dict

        with_fields, stamped, without = logger(add_run_context), logger(stamp), logger()
        total = compare(lines(with_fields), lines(without), n=10_000, rounds=_rounds(15))
        reading = compare(lines(with_fields), lines(stamped), n=10_000, rounds=_rounds(15))
        return total, reading, len(fields)

    total, reading, count = in_flow(lambda: in_task(measure))
    return Row(
        "`add_run_context` in a JSON chain, per line",
        format_ns(total.ours_ns),
        format_ns(total.floor_ns),
        f"+{format_ns(total.added_ns)}: {format_ns(reading.added_ns)} the processor, "
        f"{format_ns(total.added_ns - reading.added_ns)} rendering its {count} fields",
        "adds ≤ 1 µs",
        total.added_ns <= 1_000,
    )


# 5. async task runs under asyncio.gather
def async_gather_row() -> Row:
    shape, tracer = (
        task_shape(lambda: asyncio.run(noop_async_task()), "task noop_async_task"),
        _floor_tracer(),
    )
    loop = asyncio.new_event_loop()

    def ours(n: int) -> None:
        loop.run_until_complete(gather(noop_async_task, n))

    def floor(n: int) -> None:
        loop.run_until_complete(gather(lambda: bare_run_async(tracer, shape), n))

    try:
        result = in_flow(lambda: compare(ours, floor, n=1_000, rounds=_rounds(25)))
    finally:
        loop.close()
    return ratio_row("async task runs, `asyncio.gather` of 1,000 (per run)", result, 1.5)


# 6. memory: 100,000 task runs in one flow
_LIVE_TYPES = (FlowRunContext, TaskRunContext, FlowRun, TaskRun, SdkSpan)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak is the best there is
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _live() -> Counter[str]:
    """How many run contexts, run records and SDK spans the garbage collector can see, by type."""
    gc.collect()
    return Counter(type(obj).__name__ for obj in gc.get_objects() if isinstance(obj, _LIVE_TYPES))


def memory_row() -> Row:
    runs = 10_000 if QUICK else 100_000
    in_flow(lambda: run_tasks(2_000))  # warm-up: caches and allocator arenas
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    live_before, rss_before = _live(), _rss_bytes()
    in_flow(lambda: run_tasks(runs))
    trace.get_tracer_provider().force_flush()  # type: ignore[attr-defined]
    live_after, rss_after = _live(), _rss_bytes()
    growth = (rss_after - rss_before) / 2**20
    retained = live_after - live_before
    left = ", ".join(f"{count} {name}" for name, count in retained.items()) or "nothing"
    return Row(
        f"{runs:,} task runs in one flow: memory",
        f"{rss_after / 2**20:.1f} MiB RSS",
        f"{rss_before / 2**20:.1f} MiB before",
        f"+{growth:.1f} MiB; {left} retained",
        "≤ 20 MiB, nothing retained",
        growth <= 20 and not retained,
    )


# 7. OTLP/gRPC export to a receiver on 127.0.0.1
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


def otlp_row() -> Row:
    total = 5_000 if QUICK else 50_000
    with receiver_process() as (endpoint, received):
        exporter = _Counting(OTLPSpanExporter(endpoint=endpoint, insecure=True))
        provider = TracerProvider(shutdown_on_exit=False)
        provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=65_536, max_export_batch_size=512)
        )
        with use_tracer_provider(provider):
            start = time.perf_counter()
            in_flow(lambda: run_tasks(total - 1))  # the flow's span makes it ``total``
            created = time.perf_counter() - start
            provider.force_flush(120_000)
            seconds = time.perf_counter() - start
        provider.shutdown()
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


# 8. the run metrics: a task run with metrics on against the same task run with metrics off
def metrics_row() -> Row:
    """Ours: task runs with the run-metrics processor; floor: the same runs without it. The SDK
    measurements the runs queue are recorded when a reader collects: timed apart, per run."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    run_metrics = RunMetrics(meters)
    switch = RunSlot()  # holds the run metrics (ours) or nothing (the floor)
    trace.get_tracer_provider().add_span_processor(switch)  # type: ignore[attr-defined]
    n, rounds = 2_000, _rounds(31)

    def runs(count: int) -> None:
        for _ in range(count):
            noop_task()

    def measure() -> tuple[float, float, float, float]:
        ours, floor, ratios, recording = [], [], [], []
        runs(n)
        for round_ in range(rounds):
            timed: dict[bool, float] = {}
            for on in ((True, False) if round_ % 2 == 0 else (False, True)):
                switch.held = (run_metrics,) if on else ()
                timed[on] = time_once(runs, n) / n
                switch.held = ()
                if on:
                    recording.append(time_once(lambda _: run_metrics.force_flush(), 1) / n)
            ours.append(timed[True])
            floor.append(timed[False])
            ratios.append(timed[True] / timed[False])
        return tuple(statistics.median(values) for values in (ours, floor, ratios, recording))  # type: ignore[return-value]

    try:
        ours_ns, floor_ns, ratio, recording_ns = in_flow(measure)
    finally:
        switch.held = ()
        meters.shutdown()
    return Row(
        "task run in a flow, run metrics on vs off",
        format_ns(ours_ns),
        format_ns(floor_ns),
        f"{ratio:.2f}{TIMES} on the run's path; +{format_ns(recording_ns)} a run when a reader collects",
        f"≤ 1.1{TIMES}",
        ratio <= 1.1,
    )


# Prefect, when it is installed
PREFECT_QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def prefect_row() -> Row | None:
    if importlib.util.find_spec("prefect") is None:
        return None
    # Prefect as installed, minus its console lines, its shutdown noise and its usage telemetry.
    for name, value in PREFECT_QUIET.items():
        os.environ.setdefault(name, value)
    import prefect

    shape, tracer = task_shape(), _floor_tracer()

    @prefect.task
    def prefect_noop() -> None:
        """A Prefect task run with an empty body."""

    def ours(n: int) -> None:
        for _ in range(n):
            prefect_noop()

    def floor(n: int) -> None:
        for _ in range(n):
            bare_run(tracer, shape)

    @prefect.flow
    def prefect_host():
        return compare(ours, floor, n=50, rounds=_rounds(9))

    result = prefect_host()
    return Row(
        "Prefect task run in a Prefect flow (for comparison)",
        format_ns(result.ours_ns),
        format_ns(result.floor_ns),
        f"{result.ratio:.0f}{TIMES}",
        "—",
        None,
    )


def imports_row() -> Row:
    return import_row(_rounds(21))


ROWS = {
    "import": imports_row,
    "task": task_run_row,
    "flow": flow_run_row,
    "accessors": accessor_rows,
    "log": log_processor_row,
    "async": async_gather_row,
    "memory": memory_row,
    "metrics": metrics_row,
    "otlp": otlp_row,
    "prefect": prefect_row,
}
"""Every row by its short name, in table order (``--rows`` picks among them)."""
