"""Run metrics: active runs, durations and runs by final state, read back through a real SDK reader."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_runtime import deployment, flow, task
from otel_runtime._base import keys as _keys
from otel_runtime._sdk.run_metrics import _MAX_QUEUED, DURATION_BUCKETS_S
from otel_runtime._sdk.run_watch import RunWatch, watch_runs
from otel_runtime.testing import CapturedSpans

PER_RUN = {_keys.FLOW_RUN_ID, _keys.TASK_RUN_ID, _keys.FLOW_RUN_NAME, _keys.TASK_RUN_NAME}


@pytest.fixture
def reader(spans: CapturedSpans) -> Iterator[InMemoryMetricReader]:
    """Run metrics of the test's tracer provider, into an in-memory reader."""
    reader = InMemoryMetricReader()
    watch = watch_runs(spans.provider, None, MeterProvider(metric_readers=[reader], shutdown_on_exit=False))
    try:
        yield reader
    finally:
        watch.stop()


def points(reader: InMemoryMetricReader, name: str, data: Any = None) -> list[Any]:
    data = data or reader.get_metrics_data()
    return [
        point
        for resource in (data.resource_metrics if data else [])
        for scope in resource.scope_metrics
        for metric in scope.metrics
        if metric.name == name
        for point in metric.data.data_points
    ]


def by_attributes(reader: InMemoryMetricReader, name: str) -> dict[frozenset[tuple[str, Any]], Any]:
    return {frozenset(point.attributes.items()): point for point in points(reader, name)}


@task
def extract(n: int) -> int:
    return n


@task
def explode() -> None:
    raise ValueError("boom")


@flow
def etl() -> None:
    extract(1)
    extract(2)
    with contextlib.suppress(ValueError):
        explode()


def test_a_running_flow_counts_as_active_until_it_ends(reader: InMemoryMetricReader) -> None:
    """While a flow runs, otel_runtime.run.active is 1 for its flow and deployment; afterwards 0."""
    seen: list[Any] = []

    @flow
    def watched() -> None:
        seen.extend(points(reader, _keys.METRIC_RUNS_ACTIVE))

    with deployment("nightly"):
        watched()
    key = {_keys.RUN_TYPE: "flow", _keys.FLOW_NAME: "watched", _keys.DEPLOYMENT_NAME: "nightly"}
    assert [(dict(p.attributes), p.value) for p in seen] == [(key, 1)]
    assert [(dict(p.attributes), p.value) for p in points(reader, _keys.METRIC_RUNS_ACTIVE)] == [(key, 0)]


def test_finished_runs_are_counted_by_final_state_with_flow_task_and_deployment(
    reader: InMemoryMetricReader,
) -> None:
    """otel_runtime.run.finished counts each run once by run type, flow, task, deployment and state."""
    with deployment("nightly"):
        etl()
        etl()
    finished = {
        tuple(sorted(attributes)): point.value
        for attributes, point in by_attributes(reader, _keys.METRIC_RUNS_FINISHED).items()
    }
    base = {(_keys.DEPLOYMENT_NAME, "nightly"), (_keys.FLOW_NAME, "etl")}

    def key(*extra: tuple[str, str], state: tuple[str, str]) -> tuple[tuple[str, str], ...]:
        states = {(_keys.RUN_STATE_TYPE, state[0]), (_keys.RUN_STATE_NAME, state[1])}
        return tuple(sorted(base | set(extra) | states))

    assert finished == {
        key((_keys.RUN_TYPE, "flow"), state=("COMPLETED", "Completed")): 2,
        key((_keys.RUN_TYPE, "task"), (_keys.TASK_NAME, "extract"), state=("COMPLETED", "Completed")): 4,
        key((_keys.RUN_TYPE, "task"), (_keys.TASK_NAME, "explode"), state=("FAILED", "Failed")): 2,
    }


def test_metric_attributes_are_the_listed_ones_and_never_a_run_id(reader: InMemoryMetricReader) -> None:
    """Every run-metric attribute is one of keys.METRIC_ATTRIBUTES; no run id or run name appears."""
    with deployment("nightly"):
        etl()
    for name in _keys.METRIC_NAMES:
        found = points(reader, name)
        assert found, name
        for point in found:
            assert set(point.attributes) <= set(_keys.METRIC_ATTRIBUTES)
            assert not set(point.attributes) & PER_RUN


def test_durations_use_buckets_from_milliseconds_to_hours_and_carry_the_trace_id(
    reader: InMemoryMetricReader, spans: CapturedSpans
) -> None:
    """The duration histogram has explicit boundaries (1 ms .. 6 h); its exemplar is the run's trace."""
    etl()
    flow_span = spans.find("flow etl")
    data = reader.get_metrics_data()  # exemplars are of the latest collection: read it once
    (point,) = [
        p for p in points(reader, _keys.METRIC_RUN_DURATION, data) if p.attributes[_keys.RUN_TYPE] == "flow"
    ]
    assert tuple(point.explicit_bounds) == DURATION_BUCKETS_S
    assert DURATION_BUCKETS_S[0] == 0.001
    assert DURATION_BUCKETS_S[-1] == 6 * 3600
    assert point.count == 1
    assert 0 < point.sum < 5
    assert flow_span.context is not None
    assert [exemplar.trace_id for exemplar in point.exemplars] == [flow_span.context.trace_id]
    (finished,) = [
        p for p in points(reader, _keys.METRIC_RUNS_FINISHED, data) if p.attributes[_keys.RUN_TYPE] == "flow"
    ]
    assert [exemplar.span_id for exemplar in finished.exemplars] == [flow_span.context.span_id]


def test_a_state_on_the_span_wins_over_the_status(reader: InMemoryMetricReader) -> None:
    """A run span that carries task_run.state.type/name is counted in that state (Cached, say)."""
    tracer = trace.get_tracer("engine")
    attributes = {
        _keys.RUN_TYPE: "task",
        _keys.TASK_NAME: "load",
        _keys.TASK_RUN_STATE_TYPE: "COMPLETED",
        _keys.TASK_RUN_STATE_NAME: "Cached",
    }
    tracer.start_span("task load", attributes=attributes).end()
    (point,) = points(reader, _keys.METRIC_RUNS_FINISHED)
    assert point.attributes[_keys.RUN_STATE_TYPE] == "COMPLETED"
    assert point.attributes[_keys.RUN_STATE_NAME] == "Cached"


def test_a_cancelled_run_is_counted_as_cancelled(reader: InMemoryMetricReader) -> None:
    """A task ended by KeyboardInterrupt is CANCELLED / Cancelled (its status says so)."""

    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    (point,) = points(reader, _keys.METRIC_RUNS_FINISHED)
    assert (point.attributes[_keys.RUN_STATE_TYPE], point.attributes[_keys.RUN_STATE_NAME]) == (
        "CANCELLED",
        "Cancelled",
    )


def test_many_runs_between_collections_are_all_counted(reader: InMemoryMetricReader) -> None:
    """More run ends than the queue holds before a collection: each is recorded exactly once."""
    runs = _MAX_QUEUED * 2 + 3

    @flow
    def many() -> None:
        for index in range(runs):
            extract(index)

    many()
    (point,) = [
        p for p in points(reader, _keys.METRIC_RUNS_FINISHED) if p.attributes[_keys.RUN_TYPE] == "task"
    ]
    assert point.value == runs


def test_other_spans_are_not_runs(reader: InMemoryMetricReader) -> None:
    """A span without otel_runtime.run.type is not counted in any run metric."""
    trace.get_tracer("other").start_span("GET /").end()
    assert points(reader, _keys.METRIC_RUNS_FINISHED) == []
    assert points(reader, _keys.METRIC_RUNS_ACTIVE) == []


def test_run_metrics_can_be_switched_off(spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_RUNTIME_RUN_METRICS=false: watch_runs keeps no metrics, and a reader sees none."""
    monkeypatch.setenv("OTEL_RUNTIME_RUN_METRICS", "false")
    reader = InMemoryMetricReader()
    watch: RunWatch = watch_runs(spans.provider, None, MeterProvider(metric_readers=[reader]))
    etl()
    assert not watch.metrics
    assert points(reader, _keys.METRIC_RUNS_FINISHED) == []
