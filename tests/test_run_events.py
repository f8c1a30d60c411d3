"""Run events: a log record at the start and at the end of each run, with the run span's ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor

from otel_runtime import deployment, flow, task
from otel_runtime._base import keys as _keys
from otel_runtime._sdk.run_watch import watch_runs
from otel_runtime.testing import CapturedSpans


@pytest.fixture
def events(spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemoryLogRecordExporter]:
    """Run events (on, as by default) of the test's tracer provider, into an in-memory log exporter."""
    monkeypatch.delenv("OTEL_RUNTIME_RUN_EVENTS")
    exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    watch = watch_runs(spans.provider, logger_provider, None)
    try:
        yield exporter
    finally:
        watch.stop()


def records(exporter: InMemoryLogRecordExporter) -> list[Any]:
    return [data.log_record for data in exporter.get_finished_logs()]


@task
def double(n: int) -> int:
    return n * 2


@flow(flow_run_name="etl-{day}")
def etl(day: str) -> int:
    return double(21)


def test_start_and_end_events_carry_the_run_spans_trace_and_span_ids(
    events: InMemoryLogRecordExporter, spans: CapturedSpans
) -> None:
    """Each run gives one start and one end event, in its span's context (trace id, span id)."""
    with deployment("nightly"):
        etl("monday")
    flow_span, task_span = spans.find("flow etl"), spans.find("task double")
    got = [(r.event_name, r.span_id) for r in records(events)]
    assert flow_span.context is not None
    assert task_span.context is not None
    assert got == [
        (_keys.RUN_START_EVENT, flow_span.context.span_id),
        (_keys.RUN_START_EVENT, task_span.context.span_id),
        (_keys.RUN_END_EVENT, task_span.context.span_id),
        (_keys.RUN_END_EVENT, flow_span.context.span_id),
    ]
    assert {r.trace_id for r in records(events)} == {flow_span.context.trace_id}
    for record in records(events):
        attributes = record.attributes
        assert attributes[_keys.LOG_TRACE_ID] == trace.format_trace_id(record.trace_id)
        assert attributes[_keys.LOG_SPAN_ID] == trace.format_span_id(record.span_id)
        assert set(attributes) <= set(_keys.RUN_EVENT_ATTRIBUTES)


def test_events_carry_the_run_fields_the_logs_carry(
    events: InMemoryLogRecordExporter, spans: CapturedSpans
) -> None:
    """The task's events name its flow run (from baggage), its deployment, task and parent span."""
    with deployment("nightly"):
        etl("monday")
    flow_span = spans.find("flow etl")
    start = next(
        r
        for r in records(events)
        if r.event_name == _keys.RUN_START_EVENT and r.attributes[_keys.RUN_TYPE] == "task"
    )
    attributes = dict(start.attributes)
    assert attributes[_keys.LOG_DEPLOYMENT_NAME] == "nightly"
    assert attributes[_keys.LOG_FLOW_RUN_NAME] == "etl-monday"
    assert attributes[_keys.LOG_FLOW_RUN_ID] == flow_span.attributes[_keys.FLOW_RUN_ID]
    assert attributes[_keys.FLOW_NAME] == "etl"
    assert attributes[_keys.TASK_NAME] == "double"
    assert attributes[_keys.LOG_TASK_RUN_NAME].startswith("double-")
    assert attributes[_keys.RUN_STATE_TYPE] == "RUNNING"
    assert flow_span.context is not None
    assert attributes[_keys.RUN_PARENT_SPAN_ID] == trace.format_span_id(flow_span.context.span_id)
    assert isinstance(attributes[_keys.PROCESS_PID], int)


def test_the_start_event_is_emitted_while_the_run_is_still_running(events: InMemoryLogRecordExporter) -> None:
    """Inside the flow, its start event has been emitted and its end event not yet."""
    seen: list[str | None] = []

    @flow
    def long_running() -> None:
        seen.extend(r.event_name for r in records(events))

    long_running()
    assert seen == [_keys.RUN_START_EVENT]


def test_the_end_event_says_state_and_duration_and_a_failure_is_an_error(
    events: InMemoryLogRecordExporter,
) -> None:
    """A failed run's end event is ERROR with state FAILED / Failed and a duration in seconds."""

    @flow
    def broken() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        broken()
    end = records(events)[-1]
    assert end.event_name == _keys.RUN_END_EVENT
    assert end.severity_text == "ERROR"
    assert (end.attributes[_keys.RUN_STATE_TYPE], end.attributes[_keys.RUN_STATE_NAME]) == (
        "FAILED",
        "Failed",
    )
    assert 0 <= end.attributes[_keys.RUN_DURATION_S] < 5
    assert "Failed" in str(end.body)


def test_run_events_can_be_switched_off(spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_RUNTIME_RUN_EVENTS=false: no run event is emitted."""
    monkeypatch.setenv("OTEL_RUNTIME_RUN_EVENTS", "false")
    exporter = InMemoryLogRecordExporter()
    logger_provider = LoggerProvider(shutdown_on_exit=False)
    logger_provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    watch = watch_runs(spans.provider, logger_provider, None)
    etl("monday")
    assert not watch.events
    assert exporter.get_finished_logs() == ()
