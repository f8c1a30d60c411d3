"""Semantic conventions on what runs emit: the span status holds the exception's message alone (the type
is in ``error.type``), the instrumentation scope has the package version and a schema URL, and
``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN=logs`` / ``logs/dup`` records a run's exceptions as log records,
checked on what reaches a real OTLP receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from opentelemetry import _logs
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.exception_attributes import EXCEPTION_MESSAGE, EXCEPTION_TYPE
from opentelemetry.trace import StatusCode

from otel_runtime import configure, flow, task
from otel_runtime.testing import CapturedSpans, OtlpReceiver, use_logger_provider

_attempts: list[int] = []


@task
def lookup(table: dict[str, int]) -> int:
    return table["missing"]


@task(retries=1)
def flaky() -> int:
    _attempts.append(1)
    raise ValueError(f"attempt {len(_attempts)}")


@flow
def pipeline() -> int:
    return flaky()


def test_the_status_description_is_the_message_alone(spans: CapturedSpans) -> None:
    """A KeyError('missing') run: description ``'missing'``, error.type ``KeyError``, one exception event."""
    with pytest.raises(KeyError):
        lookup({})
    span = spans.find("task lookup")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "'missing'"
    assert span.attributes is not None and span.attributes[ERROR_TYPE] == "KeyError"
    assert [event.name for event in span.events] == ["exception"]


def test_the_instrumentation_scope_has_the_version_and_a_schema_url(spans: CapturedSpans) -> None:
    """Run spans come from the scope ``otel_runtime`` at the installed version, with the schema URL of the
    semantic conventions the attribute names come from."""
    with pytest.raises(KeyError):
        lookup({})
    scope = spans.find("task lookup").instrumentation_scope
    assert scope is not None
    assert (scope.name, scope.version) == ("otel_runtime", metadata.version("otel-runtime"))
    assert scope.schema_url is not None and scope.schema_url.startswith("https://opentelemetry.io/schemas/1.")


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[OtlpReceiver]:
    """configure() exporting spans and logs to a receiver on loopback, from no global logger provider."""
    for name in list(os.environ):
        if name.startswith("OTEL_") and name not in ("OTEL_RUNTIME_RUN_EVENTS", "OTEL_METRICS_EXPORTER"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    with OtlpReceiver() as running, use_logger_provider(None):
        telemetry = configure(endpoint=running.grpc_endpoint)
        try:
            yield running
        finally:
            telemetry.shutdown(timeout_millis=1_000)
            provider = _logs.get_logger_provider()
            getattr(provider, "shutdown", lambda: None)()


@pytest.mark.parametrize(
    ("opt_in", "events", "records"),
    [(None, 2, 0), ("logs", 0, 3), ("logs/dup", 2, 3), ("http,logs", 0, 3), ("bogus", 2, 0)],
)
def test_exceptions_go_to_span_events_or_log_records_as_opted_in(
    opt_in: str | None, events: int, records: int, receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task that fails twice (one retry) in a flow that then fails: two ``exception`` span events on
    the task span by default; with ``logs`` three ERROR log records instead (the task's two attempts and
    the flow), each in its run span's context, with the exception's type and message; with ``logs/dup``
    both. Anything else leaves the default."""
    if opt_in is not None:
        monkeypatch.setenv("OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN", opt_in)
    _attempts.clear()
    with pytest.raises(ValueError, match="attempt 2"):
        pipeline()
    spans = receiver.wait_for_spans(2, timeout=10)
    if records:
        receiver.wait_for_logs(records, timeout=10)
    (task_span,) = (span for span in spans if span["name"] == "task flaky")
    (flow_span,) = (span for span in spans if span["name"] == "flow pipeline")
    assert sum(event["name"] == "exception" for event in task_span["events"]) == events
    assert sum(event["name"] == "exception" for event in flow_span["events"]) == events // 2
    logged = sorted(
        (log for log in receiver.logs() if log["event_name"] == "exception"), key=lambda log: log["time_ns"]
    )
    assert len(logged) == records
    messages = [log["attributes"][EXCEPTION_MESSAGE] for log in logged]
    assert messages == ["attempt 1", "attempt 2", "attempt 2"][:records]
    owners = [task_span["span_id"], task_span["span_id"], flow_span["span_id"]][:records]
    assert [log["span_id"] for log in logged] == owners
    for log in logged:
        assert log["attributes"][EXCEPTION_TYPE] == "ValueError"
        assert log["trace_id"] == task_span["trace_id"]
        assert log["severity_text"] == "ERROR"
        assert log["scope"] == "otel_runtime"
