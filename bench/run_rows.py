"""The run rows: task runs, flow runs, mapped task runs, parameters, async runs, memory, run metrics.

They expect the set-up of ``bench.__main__``: the ``bench_provider()`` tracer provider is global and
the deployment ``DEPLOYMENT`` is active.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import gc
import os
import resource
import statistics
from collections import Counter

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import Span as SdkSpan

from bench import _timing
from bench._floor import bare_run, bare_run_async
from bench._report import TIMES, Row, format_ns, ratio_row
from bench._timing import compare, rounds, time_once
from bench._workloads import (
    empty_flow,
    flow_shape,
    gather,
    in_flow,
    map_item,
    noop_async_task,
    noop_task,
    one_int,
    one_int_unrecorded,
    run_tasks,
    task_shape,
)
from otel_runtime._core.models import FlowRun, TaskRun
from otel_runtime._sdk.run_metrics import RunMetrics
from otel_runtime._sdk.run_watch import RunSlot
from otel_runtime.context import FlowRunContext, TaskRunContext

__all__ = [
    "async_gather_row",
    "flow_run_row",
    "map_row",
    "memory_row",
    "metrics_row",
    "parameter_row",
    "task_run_row",
]


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

    result = in_flow(lambda: compare(ours, floor, n=2_000, rounds=rounds(31)))
    return ratio_row("task run in a flow (sync, no-op body)", result, 1.15)


# 2. flow run with no tasks
def flow_run_row() -> Row:
    shape, tracer = flow_shape(), _floor_tracer()

    def ours(n: int) -> None:
        for _ in range(n):
            empty_flow()

    def floor(n: int) -> None:
        for _ in range(n):
            bare_run(tracer, shape)

    return ratio_row("flow run, no tasks", compare(ours, floor, n=1_000, rounds=rounds(31)), 1.3)


# 3. task.map over 1,000 items in the default thread pool, per task run
def map_row() -> Row:
    shape, tracer = task_shape(lambda: map_item(1), "task map_item"), _floor_tracer()
    pool = concurrent.futures.ThreadPoolExecutor()  # the default runner's pool: the same size

    def ours(n: int) -> None:
        map_item.map(range(n)).result()

    def floor(n: int) -> None:
        done = [pool.submit(contextvars.copy_context().run, bare_run, tracer, shape) for _ in range(n)]
        for future in done:
            future.result()

    try:
        result = in_flow(lambda: compare(ours, floor, n=1_000, rounds=rounds(21)))
    finally:
        pool.shutdown()
    return ratio_row("`task.map` over 1,000 items, per task run (thread pool)", result, 1.5)


# 4. recording one small int parameter: the same task run with and without it
def parameter_row() -> Row:
    def ours(n: int) -> None:
        for index in range(n):
            one_int(index)

    def floor(n: int) -> None:
        for index in range(n):
            one_int_unrecorded(index)

    result = in_flow(lambda: compare(ours, floor, n=2_000, rounds=rounds(31)))
    return Row(
        "a task with one small int parameter, recording on vs off",
        format_ns(result.ours_ns),
        format_ns(result.floor_ns),
        f"+{format_ns(result.added_ns)}",
        "adds ≤ 1 µs",
        result.added_ns <= 1_000,
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
        result = in_flow(lambda: compare(ours, floor, n=1_000, rounds=rounds(25)))
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
    runs = 10_000 if _timing.QUICK else 100_000
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


# 7. the run metrics: a task run with metrics on against the same task run with metrics off
def metrics_row() -> Row:
    """Ours: task runs with the run-metrics processor; floor: the same runs without it. The SDK
    measurements the runs queue are recorded when a reader collects: timed apart, per run."""
    reader = InMemoryMetricReader()
    meters = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    run_metrics = RunMetrics(meters)
    switch = RunSlot()  # holds the run metrics (ours) or nothing (the floor)
    trace.get_tracer_provider().add_span_processor(switch)  # type: ignore[attr-defined]
    n, count = 2_000, rounds(31)

    def runs(count: int) -> None:
        for _ in range(count):
            noop_task()

    def measure() -> tuple[float, float, float, float]:
        ours, floor, ratios, recording = [], [], [], []
        runs(n)
        for round_ in range(count):
            timed: dict[bool, float] = {}
            for on in (True, False) if round_ % 2 == 0 else (False, True):
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
