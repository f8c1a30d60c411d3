"""One huge item does not sink its batch: a 6 MB exception message, attribute or log body among 200.

A real OTLP/gRPC exporter sends to a real loopback ``OtlpReceiver``, whose gRPC server refuses
requests over gRPC's default 4 MiB, as a Collector does (``max_recv_msg_size_mib: 4``). Everything
ends before the first export, so the huge item and its 200 batch-mates are one batch. Before, that
batch was refused and retried until the exporter gave up: 0 of 201 arrived. Now the exception text on
spans and log records is bounded (``_core.exception_text``), and a batch estimated over 3 MiB goes out
in parts, an item too big alone cut (``_sdk.batch_split``): all 201 arrive, nothing is dropped.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.semconv.attributes import exception_attributes

from otel_runtime import flow, task
from otel_runtime._core.exception_text import MAX_EXCEPTION_MESSAGE_LENGTH, MAX_STACKTRACE_LENGTH
from otel_runtime._sdk.batch_split import MAX_TRIMMED_TEXT
from otel_runtime._sdk.monitored_processor import (
    MonitoredLogProcessor,
    MonitoredSpanProcessor,
    log_processor,
    span_processor,
)
from otel_runtime._surface.log_export import OTelLogHandler
from otel_runtime.testing import OtlpReceiver, use_tracer_provider

HUGE: int = 6 * 1024 * 1024
HEALTHY = 200
# One batch for everything: no export before the test flushes.
ONE_BATCH = {"schedule_delay_millis": 60_000, "max_export_batch_size": 1024, "max_queue_size": 4096}
MARKER = "characters cut"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


@pytest.fixture
def spans_to(receiver: OtlpReceiver) -> Iterator[Callable[[], MonitoredSpanProcessor]]:
    """A global tracer provider exporting over OTLP/gRPC to ``receiver`` through the monitored processor."""
    with contextlib.ExitStack() as stack:

        def make() -> MonitoredSpanProcessor:
            exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
            processor = span_processor(exporter, shutdown_timeout_millis=10_000, **ONE_BATCH)
            provider = TracerProvider(
                resource=Resource.create({SERVICE_NAME: "oversized"}), shutdown_on_exit=False
            )
            provider.add_span_processor(processor)
            stack.callback(provider.shutdown)
            stack.enter_context(use_tracer_provider(provider))
            return processor

        yield make


@task
def healthy(index: int) -> int:
    return index


@task
def explode() -> None:
    raise ValueError("E" * HUGE)


@task
def heavy() -> None:
    trace.get_current_span().set_attribute("blob", "B" * HUGE)


def assert_all_arrived(receiver: OtlpReceiver, processor: MonitoredSpanProcessor, expected: int) -> None:
    assert processor.force_flush(30_000)
    spans = receiver.wait_for_spans(expected, timeout=30)
    assert len(spans) == expected
    health = processor.health
    assert (health.exported, health.dropped) == (expected, 0)


def test_a_6mb_exception_message_among_200_healthy_spans_all_arrive(
    receiver: OtlpReceiver, spans_to: Callable[[], MonitoredSpanProcessor]
) -> None:
    """200 healthy task runs and one that raises a 6 MB message, one batch: 200 + 1 task spans and the
    flow span arrive; the failed one carries the message bounded (status, ``exception.message``) and
    the traceback bounded, each with a marker saying how much was cut."""
    processor = spans_to()

    @flow
    def many() -> int:
        with contextlib.suppress(ValueError):
            explode()
        return sum(healthy(index) for index in range(HEALTHY))

    assert many() == sum(range(HEALTHY))
    assert_all_arrived(receiver, processor, HEALTHY + 1 + 1)
    (failed,) = [span for span in receiver.spans() if span["name"] == "task explode"]
    assert failed["status_message"].startswith("EEEE")  # the message alone: the type is in error.type
    assert MARKER in failed["status_message"]
    assert len(failed["status_message"]) < MAX_EXCEPTION_MESSAGE_LENGTH + 100
    (event,) = [event for event in failed["events"] if event["name"] == "exception"]
    message = event["attributes"][exception_attributes.EXCEPTION_MESSAGE]
    stacktrace = event["attributes"][exception_attributes.EXCEPTION_STACKTRACE]
    assert MARKER in message and len(message) < MAX_EXCEPTION_MESSAGE_LENGTH + 100
    assert MARKER in stacktrace and len(stacktrace) < MAX_STACKTRACE_LENGTH + 100
    assert "in explode" in stacktrace  # the innermost frame is kept


def test_a_6mb_attribute_among_200_healthy_spans_is_cut_and_all_arrive(
    receiver: OtlpReceiver, spans_to: Callable[[], MonitoredSpanProcessor]
) -> None:
    """User code sets a 6 MB attribute on its task run span: the batch goes out in parts, that span
    arrives with the attribute cut to 64 Ki characters and a marker, and its 200 batch-mates arrive."""
    processor = spans_to()

    @flow
    def many() -> int:
        heavy()
        return sum(healthy(index) for index in range(HEALTHY))

    assert many() == sum(range(HEALTHY))
    assert_all_arrived(receiver, processor, HEALTHY + 1 + 1)
    (big,) = [span for span in receiver.spans() if span["name"] == "task heavy"]
    blob = big["attributes"]["blob"]
    assert blob.startswith("B" * MAX_TRIMMED_TEXT) and MARKER in blob


def test_a_batch_of_many_large_spans_goes_out_in_parts_and_all_arrive(
    receiver: OtlpReceiver, spans_to: Callable[[], MonitoredSpanProcessor]
) -> None:
    """60 spans of 200 KB each (12 MB, no one of them too big): exported in parts under the limit, each
    whole: all 60 arrive with their attribute intact."""
    processor = spans_to()
    tracer = trace.get_tracer("oversized")
    for index in range(60):
        with tracer.start_as_current_span(f"part {index}") as span:
            span.set_attribute("blob", "P" * 200_000)
    assert_all_arrived(receiver, processor, 60)
    assert all(len(span["attributes"]["blob"]) == 200_000 for span in receiver.spans())


@pytest.fixture
def logs_to(receiver: OtlpReceiver) -> Iterator[Callable[[], tuple[logging.Logger, MonitoredLogProcessor]]]:
    """A logger whose records go over OTLP/gRPC to ``receiver`` through the monitored log processor."""
    with contextlib.ExitStack() as stack:

        def make() -> tuple[logging.Logger, MonitoredLogProcessor]:
            exporter = OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
            processor = log_processor(exporter, shutdown_timeout_millis=10_000, **ONE_BATCH)
            provider = LoggerProvider(
                resource=Resource.create({SERVICE_NAME: "oversized"}), shutdown_on_exit=False
            )
            provider.add_log_record_processor(processor)
            stack.callback(provider.shutdown)
            logger = logging.getLogger("tests.oversized")
            handler = OTelLogHandler(logger_provider=provider)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
            logger.propagate = False
            stack.callback(logger.removeHandler, handler)
            return logger, processor

        yield make


def test_a_6mb_log_body_and_a_6mb_logged_exception_among_200_records_all_arrive(
    receiver: OtlpReceiver, logs_to: Callable[[], tuple[logging.Logger, MonitoredLogProcessor]]
) -> None:
    """``logger.exception()`` of a 6 MB exception message and a 6 MB message, among 200 healthy records in
    one batch: all 202 arrive; the exception text is bounded, the body cut with a marker."""
    logger, processor = logs_to()
    try:
        explode.fn()
    except ValueError:
        logger.exception("it failed")
    logger.info("M" * HUGE)
    for index in range(HEALTHY):
        logger.info("healthy %d", index)
    assert processor.force_flush(30_000)
    logs = receiver.wait_for_logs(HEALTHY + 2, timeout=30)
    assert len(logs) == HEALTHY + 2
    assert (processor.health.exported, processor.health.dropped) == (HEALTHY + 2, 0)
    (failed,) = [log for log in logs if log["body"] == "it failed"]
    message = failed["attributes"][exception_attributes.EXCEPTION_MESSAGE]
    assert MARKER in message and len(message) < MAX_EXCEPTION_MESSAGE_LENGTH + 100
    assert len(failed["attributes"][exception_attributes.EXCEPTION_STACKTRACE]) < MAX_STACKTRACE_LENGTH + 100
    (big,) = [log for log in logs if str(log["body"]).startswith("MMMM")]
    assert MARKER in big["body"]
