"""Every span and log record is exported or counted dropped, exactly: counted at a real receiver.

Each test sends real runs through a monitored pipeline (the SDK's batch processor over a counting wrapper)
to a real OTLP exporter aimed at a loopback ``OtlpReceiver`` that answers as a faulty collector would: an
OTLP partial success, a 200 reply that is not OTLP, a queue that cannot keep up under threaded load.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from otel_runtime import flow, task
from otel_runtime._sdk.drops import dropped
from otel_runtime._sdk.monitored_processor import MonitoredSpanProcessor, log_processor, span_processor
from otel_runtime._surface.log_export import OTelLogHandler
from otel_runtime.testing import OtlpReceiver, use_tracer_provider


@task
def double(x: int) -> int:
    return 2 * x


@flow
def pipeline(n: int) -> int:
    return sum(double(i) for i in range(n))


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


def span_exporter(protocol: str, receiver: OtlpReceiver) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces", timeout=5)


def traced(processor: MonitoredSpanProcessor) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "drops"}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    return provider


@pytest.mark.parametrize("protocol", ["grpc", "http"])
def test_spans_a_collector_rejects_in_a_partial_success_are_counted_dropped(
    protocol: str, receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector accepts each request but answers that it rejected 3 of its spans (OTLP partial
    success, which the SDK's exporters report as a success): those are counted dropped, the rest exported,
    and exported matches what the receiver kept; one warning carries the collector's message."""
    receiver.reject_partially(3, "span too old")
    processor = span_processor(span_exporter(protocol, receiver), schedule_delay_millis=60_000)
    provider = traced(processor)
    before = dropped().spans
    with use_tracer_provider(provider):
        assert pipeline(9) == 72
    assert processor.force_flush(5000)
    provider.shutdown()
    health = processor.health
    assert (health.ended, health.exported, health.dropped) == (10, 7, 3)
    assert len(receiver.spans()) == health.exported
    assert dropped().spans - before == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("rejected 3 of 10" in message and "span too old" in message for message in warnings), warnings


def test_a_200_reply_that_is_not_otlp_leaves_the_spans_unconfirmed_and_counted(
    receiver: OtlpReceiver,
) -> None:
    """An OTLP/HTTP endpoint that answers 200 with a body that is not an OTLP response (a proxy, a wrong
    path): the SDK calls that a success; the spans are counted dropped, as not confirmed."""
    receiver.reply_garbage()
    processor = span_processor(span_exporter("http", receiver), schedule_delay_millis=60_000)
    provider = traced(processor)
    before = dropped().spans
    with use_tracer_provider(provider):
        assert pipeline(2) == 2
    processor.force_flush(5000)
    provider.shutdown()
    assert (processor.health.ended, processor.health.exported, processor.health.dropped) == (3, 0, 3)
    assert dropped().spans - before == 3
    assert len(receiver.spans()) == 3  # it did get them: it just never said so


def test_a_log_record_whose_exception_str_raises_is_exported_not_lost(receiver: OtlpReceiver) -> None:
    """``logger.exception()`` with an exception whose ``__str__`` raises: the record still reaches the
    collector, with the exception's type; nothing is lost uncounted."""
    from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

    class UnprintableError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    def fail() -> None:
        raise UnprintableError

    processor = log_processor(OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    handler = OTelLogHandler(logger_provider=provider)
    app = logging.getLogger("drops.app")
    app.addHandler(handler)
    app.propagate = False
    try:
        try:
            fail()
        except UnprintableError:
            app.exception("it broke")
    finally:
        app.removeHandler(handler)
        app.propagate = True
        provider.shutdown()
    health = processor.health
    assert (health.ended, health.exported, health.dropped) == (1, 1, 0)
    (record,) = receiver.logs()
    assert record["attributes"]["exception.type"].endswith("UnprintableError")


def test_under_threaded_load_exported_plus_dropped_equals_ended_exactly(receiver: OtlpReceiver) -> None:
    """Eight threads end spans as fast as they can into a queue of 64 in front of a collector that answers
    20 ms late: many spans find the queue full. Afterwards exported + dropped is exactly what ended,
    ``dropped()`` grew by exactly what was dropped, and the receiver holds exactly what was exported."""
    receiver.delay(0.02)
    processor = span_processor(
        span_exporter("grpc", receiver), schedule_delay_millis=10, max_queue_size=64, max_export_batch_size=32
    )
    provider = traced(processor)
    before = dropped().spans
    threads, flows = 8, 150
    with use_tracer_provider(provider):
        load = [threading.Thread(target=lambda: [pipeline(1) for _ in range(flows)]) for _ in range(threads)]
        for worker in load:
            worker.start()
        for worker in load:
            worker.join()
    receiver.recover()
    # A full queue counts as export trouble, and a flush gives up while it lasts: flush until one works.
    deadline = time.monotonic() + 10
    while not processor.force_flush(1000) and time.monotonic() < deadline:
        time.sleep(0.05)
    provider.shutdown()
    health = processor.health
    print(f"threaded load: ended {health.ended}, exported {health.exported}, dropped {health.dropped}")
    assert health.ended == threads * flows * 2
    assert health.dropped > 0, "the queue never overflowed: the test did not load the pipeline"
    assert health.exported + health.dropped == health.ended
    assert dropped().spans - before == health.dropped
    assert len(receiver.spans()) == health.exported


LATE_SCRIPT = """
import atexit, sys
import otel_runtime
from otel_runtime import configure, flow

@flow
def run() -> int:
    return 1

def after_the_exit_hook() -> None:
    run()
    print("at exit", otel_runtime.dropped(), flush=True)

atexit.register(after_the_exit_hook)  # before configure(): runs after its exit hook
first = configure(endpoint=sys.argv[1], logs_exporter="none", metrics_exporter="none")
run()
first.shutdown()
run()
print("after shutdown", otel_runtime.dropped(), flush=True)
configure(endpoint=sys.argv[1], logs_exporter="none", metrics_exporter="none")
run()
"""


def test_spans_ending_after_shutdown_or_after_the_exit_hook_are_counted(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A run after ``Telemetry.shutdown()`` and a run in an ``atexit`` hook that runs after otel_runtime's
    own: each span is counted dropped (before, they vanished); the two runs before were exported."""
    script = tmp_path / "late.py"
    script.write_text(LATE_SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, str(script), receiver.grpc_endpoint],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "after shutdown Dropped(spans=1, logs=0)",
        "at exit Dropped(spans=2, logs=0)",
    ]
    assert len(receiver.spans()) == 2
