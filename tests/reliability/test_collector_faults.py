"""A collector that is down, goes away, answers slowly or refuses: the program does not notice, the user does.

Each test runs real flows through a real SDK ``TracerProvider`` whose spans go through
``monitored_processor.span_processor`` (the SDK's ``BatchSpanProcessor`` over a counting wrapper) to a real
OTLP exporter, gRPC or HTTP, aimed at a loopback ``OtlpReceiver`` the test breaks on purpose.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from otel_runtime import flow, task
from otel_runtime._sdk.drops import dropped
from otel_runtime._sdk.monitored_processor import (
    MonitoredLogProcessor,
    MonitoredSpanProcessor,
    log_processor,
    span_processor,
)
from otel_runtime._surface.log_export import OTelLogHandler
from otel_runtime.task_runners import ProcessPoolTaskRunner
from otel_runtime.testing import OtlpReceiver, use_tracer_provider

SHUTDOWN_BOUND_S = 0.5
"""The shutdown bound the pipelines under test are given (``shutdown_timeout_millis``)."""
SHUTDOWN_SLACK_S = 0.5
"""What shutdown may take beyond its bound: closing the exporter, the final count and log line."""
RUN_BOUND_S = 0.5
"""A flow of a few tasks takes milliseconds; a flow that waited for its export would take seconds."""

PROTOCOLS = ["grpc", "http"]


@task
def double(x: int) -> int:
    return 2 * x


@flow
def pipeline(n: int) -> int:
    return sum(future.result() for future in double.map(range(n)))


def spans_of(n: int) -> int:
    """A run of ``pipeline(n)`` ends one flow span and ``n`` task spans."""
    return n + 1


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = function()
    return result, time.monotonic() - started


def span_exporter(protocol: str, receiver: OtlpReceiver, timeout: float) -> SpanExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter

    return HttpSpanExporter(endpoint=f"{receiver.http_endpoint}/v1/traces", timeout=timeout)


def log_exporter(protocol: str, receiver: OtlpReceiver, timeout: float) -> LogRecordExporter:
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        return OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=timeout)
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter

    return HttpLogExporter(endpoint=f"{receiver.http_endpoint}/v1/logs", timeout=timeout)


@dataclass
class Pipeline:
    """A global SDK tracer provider exporting through a monitored batch processor to ``receiver``."""

    provider: TracerProvider
    processor: MonitoredSpanProcessor
    receiver: OtlpReceiver

    def shutdown(self) -> float:
        """Shut the provider down; the seconds it took."""
        return timed(self.provider.shutdown)[1]


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver, running; stopped (whatever the test did to it) afterwards."""
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


@pytest.fixture
def make_pipeline(receiver: OtlpReceiver) -> Iterator[Callable[..., Pipeline]]:
    """Build the global tracer provider for a test: a monitored processor over a real OTLP exporter."""
    with contextlib.ExitStack() as stack:

        def make(protocol: str, *, timeout: float = 10.0, **batch_options: Any) -> Pipeline:
            processor = span_processor(
                span_exporter(protocol, receiver, timeout),
                shutdown_timeout_millis=SHUTDOWN_BOUND_S * 1000,
                **{"schedule_delay_millis": 50, **batch_options},
            )
            provider = TracerProvider(
                resource=Resource.create({SERVICE_NAME: "reliability"}), shutdown_on_exit=False
            )
            provider.add_span_processor(processor)
            stack.callback(provider.shutdown)  # a no-op if the test shut it down
            stack.enter_context(use_tracer_provider(provider))
            return Pipeline(provider, processor, receiver)

        yield make


@pytest.fixture
def export_logs(caplog: pytest.LogCaptureFixture) -> Callable[[], list[logging.LogRecord]]:
    """What a user sees of export trouble: WARNING and above from otel_runtime and OpenTelemetry."""
    caplog.set_level(logging.INFO, logger="otel_runtime")

    def records() -> list[logging.LogRecord]:
        return [
            record
            for record in caplog.records
            if record.levelno >= logging.WARNING
            and (record.name.startswith("otel_runtime") or record.name.startswith("opentelemetry"))
        ]

    return records


def outage_warnings(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.getMessage().startswith("otel_runtime could not export")]


def overload_warnings(records: list[logging.LogRecord]) -> list[str]:
    messages = [record.getMessage() for record in records]
    return [message for message in messages if "export queue" in message and "is full" in message]


def shutdown_lines(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.getMessage().startswith("otel_runtime dropped")]


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_down_from_the_start_warns_once_counts_every_span_and_shuts_down_in_bound(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """Nothing listens at the endpoint. Flows return their results as fast as ever; one warning says
    export is failing (the exporter's per-retry complaints stay at DEBUG); shutdown, while the exporter is
    still retrying, returns within its bound; every span is counted dropped (per pipeline and in
    ``dropped()``) and one line at shutdown says so."""
    receiver.stop(grace=0)
    built = make_pipeline(protocol)
    before = dropped().spans

    results, elapsed = timed(lambda: [pipeline(5) for _ in range(4)])
    assert results == [20] * 4
    assert elapsed < RUN_BOUND_S, f"flows took {elapsed:.2f}s: they waited for the collector"

    assert wait_until(lambda: bool(outage_warnings(export_logs())), 3.0), "no outage warning"
    time.sleep(0.6)  # more failed attempts: still one warning
    assert len(outage_warnings(export_logs())) == 1

    took = built.shutdown()
    assert took < SHUTDOWN_BOUND_S + SHUTDOWN_SLACK_S, f"shutdown took {took:.2f}s"
    print(f"[{protocol}] down from the start: shutdown took {took:.3f}s (bound {SHUTDOWN_BOUND_S}s)")

    expected = 4 * spans_of(5)
    health = built.processor.health
    assert (health.ended, health.exported, health.dropped) == (expected, 0, expected)
    assert dropped().spans - before == expected
    records = export_logs()
    assert len(outage_warnings(records)) == 1
    (line,) = shutdown_lines(records)
    assert f"dropped {expected} of {expected} spans" in line and "Connection refused" in line
    assert len(records) == 2, [r.getMessage() for r in records]  # nothing else above INFO


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_going_away_mid_run_and_coming_back_receives_the_spans_of_the_outage(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The collector stops while flows run and starts again on the same port half a second later: the
    exporter's retries deliver every span of the outage, nothing is counted dropped, one warning said
    export was failing and one INFO line says it recovered."""
    built = make_pipeline(protocol)
    assert pipeline(2) == 2
    receiver.wait_for_spans(spans_of(2), timeout=3)

    receiver.stop(grace=0)
    results, elapsed = timed(lambda: [pipeline(3) for _ in range(3)])
    assert results == [6] * 3 and elapsed < RUN_BOUND_S
    assert wait_until(lambda: bool(outage_warnings(export_logs())), 3.0)
    time.sleep(0.3)
    receiver.start()
    recovered_at = time.monotonic()

    expected = spans_of(2) + 3 * spans_of(3)
    receiver.wait_for_spans(expected, timeout=6)
    arrival = time.monotonic() - recovered_at
    print(f"[{protocol}] outage spans arrived {arrival:.2f}s after the collector came back")
    assert wait_until(lambda: built.processor.health.exported == expected, 2)
    took = built.shutdown()
    assert took < SHUTDOWN_BOUND_S + SHUTDOWN_SLACK_S

    assert built.processor.health.dropped == 0
    records = export_logs()
    assert len(outage_warnings(records)) == 1 and not shutdown_lines(records)
    assert len(records) == 1, [r.getMessage() for r in records]
    assert any("recovered after" in r.getMessage() for r in caplog.records if r.name == "otel_runtime")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_answering_unavailable_for_a_while_then_recovering_loses_nothing(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """The collector answers UNAVAILABLE (gRPC) / 503 (HTTP) to every request for about 0.7 s, asking for
    a retry after 0.3 s: the exporter retries, every span arrives once it recovers, one warning, no drop.
    (The exporters give up after 6 attempts or their timeout, whichever comes first.)"""
    built = make_pipeline(protocol)
    receiver.fail(None, retry_after=0.3)
    assert [pipeline(4) for _ in range(3)] == [12] * 3
    assert wait_until(lambda: receiver.requests.get("rejected", 0) >= 2, 3)
    time.sleep(0.3)
    receiver.recover()
    recovered_at = time.monotonic()

    receiver.wait_for_spans(3 * spans_of(4), timeout=5)
    print(f"[{protocol}] after 503/UNAVAILABLE: spans arrived {time.monotonic() - recovered_at:.2f}s later")
    built.shutdown()
    assert built.processor.health.dropped == 0
    records = export_logs()
    assert len(outage_warnings(records)) == 1 and len(records) == 1, [r.getMessage() for r in records]
    assert ("UNAVAILABLE" if protocol == "grpc" else "Service Unavailable") in outage_warnings(records)[0]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_refusing_a_few_requests_without_retry_after_delivers_after_backoff(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """``fail(1)``: the first export is refused; the exporter's own backoff (about a second) delivers it."""
    built = make_pipeline(protocol)
    receiver.fail(1)
    assert pipeline(2) == 2
    receiver.wait_for_spans(spans_of(2), timeout=4)
    assert receiver.requests["rejected"] == 1
    built.shutdown()
    assert built.processor.health.dropped == 0
    assert len(outage_warnings(export_logs())) == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_refusing_until_the_exporter_gives_up_counts_the_batch_dropped(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """Refused for longer than the exporter's timeout (1 s): the batch is dropped, counted while the program
    still runs (``dropped()`` grows before any shutdown), and reported by one warning, not one per span."""
    built = make_pipeline(protocol, timeout=1.0)
    receiver.fail(None, retry_after=0.2)
    before = dropped().spans
    assert pipeline(6) == 30
    assert wait_until(lambda: dropped().spans - before == spans_of(6), 4), built.processor.health
    assert built.processor.health.in_outage

    receiver.recover()
    assert pipeline(1) == 0
    receiver.wait_for_spans(spans_of(1), timeout=4)
    assert wait_until(lambda: not built.processor.health.in_outage, 2)
    built.shutdown()
    records = export_logs()
    assert len(outage_warnings(records)) == 1
    (line,) = shutdown_lines(records)
    assert f"dropped {spans_of(6)} of {spans_of(6) + spans_of(1)} spans" in line


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_slow_collector_within_the_timeout_slows_nothing_and_loses_nothing(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """A collector that answers 0.4 s late, within the exporter's timeout: the flows do not wait for it,
    every span arrives, nothing is dropped and nothing is logged."""
    built = make_pipeline(protocol, timeout=5.0)
    receiver.delay(0.4)
    results, elapsed = timed(lambda: [pipeline(3) for _ in range(3)])
    assert results == [6] * 3 and elapsed < RUN_BOUND_S
    receiver.wait_for_spans(3 * spans_of(3), timeout=5)
    built.shutdown()
    assert built.processor.health.dropped == 0
    assert export_logs() == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_slower_than_the_export_timeout_drops_counted_and_shutdown_keeps_its_bound(
    protocol: str,
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """A collector that answers 5 s late while the exporter waits up to 10 s: shutdown does not wait for
    the export in flight but returns within its bound, counting its spans dropped, with one line."""
    built = make_pipeline(protocol, timeout=10.0)
    receiver.delay(5.0)
    before = dropped().spans
    results, elapsed = timed(lambda: [pipeline(3) for _ in range(2)])
    assert results == [6, 6] and elapsed < RUN_BOUND_S
    assert wait_until(lambda: receiver.requests.get("rejected", 0) == 0 and not receiver.spans(), 0.3)

    took = built.shutdown()
    print(f"[{protocol}] slow collector: shutdown took {took:.3f}s (bound {SHUTDOWN_BOUND_S}s)")
    assert took < SHUTDOWN_BOUND_S + SHUTDOWN_SLACK_S, f"shutdown took {took:.2f}s"
    assert dropped().spans - before == 2 * spans_of(3)
    records = export_logs()
    assert len(shutdown_lines(records)) == 1
    assert len(records) <= 2, [r.getMessage() for r in records]  # at most: outage warning, shutdown line


def test_full_export_queue_counts_each_refused_span_at_once_with_one_warning(
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """A queue of 8 spans in front of a stalled export: spans that find it full are counted dropped as they
    end (they never reach the SDK's queue, whose "Queue full" warning would come once per span); one
    overload warning in all; after recovery and shutdown, exported + dropped accounts for every span."""
    built = make_pipeline("grpc", timeout=5.0, max_queue_size=8, max_export_batch_size=4)
    receiver.delay(1.0)
    for _ in range(5):
        assert pipeline(3) == 6
    health = built.processor.health
    assert health.dropped > 0, health
    assert len(overload_warnings(export_logs())) == 1
    receiver.recover()
    time.sleep(0.2)
    built.processor.force_flush()
    built.shutdown()
    assert health.ended == 5 * spans_of(3)
    assert health.exported + health.dropped == health.ended, health
    assert len(receiver.spans()) == health.exported
    records = export_logs()
    assert len(overload_warnings(records)) == 1 and not outage_warnings(records)
    assert len(records) <= 2, [r.getMessage() for r in records]  # and a shutdown line if any was dropped


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_log_records_sent_to_a_collector_that_is_down_are_counted_and_reported_once(
    protocol: str,
    receiver: OtlpReceiver,
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """Log export has the same guarantees: a down collector costs the program nothing, shutdown keeps its
    bound, every record is counted in ``dropped().logs``, one warning while it lasts, one line at the end."""
    receiver.stop(grace=0)
    processor: MonitoredLogProcessor = log_processor(
        log_exporter(protocol, receiver, 10.0),
        shutdown_timeout_millis=SHUTDOWN_BOUND_S * 1000,
        schedule_delay_millis=50,
    )
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(processor)
    handler = OTelLogHandler(logger_provider=provider)
    app = logging.getLogger("reliability.app")
    app.addHandler(handler)
    app.setLevel(logging.INFO)
    app.propagate = False
    before = dropped().logs
    try:
        started = time.monotonic()
        for index in range(20):
            app.info("line %d", index)
        assert time.monotonic() - started < RUN_BOUND_S
        assert wait_until(lambda: bool(outage_warnings(export_logs())), 3.0)
    finally:
        app.removeHandler(handler)
        app.propagate = True
        took = timed(provider.shutdown)[1]
    assert took < SHUTDOWN_BOUND_S + SHUTDOWN_SLACK_S, f"log shutdown took {took:.2f}s"
    assert dropped().logs - before == 20 == processor.health.dropped
    records = export_logs()
    assert len(outage_warnings(records)) == 1
    (line,) = shutdown_lines(records)
    assert "dropped 20 of 20 log records" in line


def test_healthy_collector_exports_everything_and_reports_nothing(
    receiver: OtlpReceiver,
    make_pipeline: Callable[..., Pipeline],
    export_logs: Callable[[], list[logging.LogRecord]],
) -> None:
    """The baseline: with the collector up, every span arrives, nothing is dropped or logged."""
    built = make_pipeline("grpc")
    before = dropped()
    assert pipeline(10) == 90
    took = built.shutdown()
    assert took < SHUTDOWN_BOUND_S
    assert len(receiver.spans()) == spans_of(10)
    assert built.processor.health.exported == spans_of(10)
    assert dropped() == before
    assert export_logs() == []


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_force_flush_gives_up_at_once_while_export_is_failing(
    protocol: str, receiver: OtlpReceiver, make_pipeline: Callable[..., Pipeline]
) -> None:
    """``force_flush(5000)`` against a collector that is down returns False as soon as an export attempt
    has failed, not after the exporter's 10 s of retries; once the collector is back it returns True."""
    receiver.stop(grace=0)
    built = make_pipeline(protocol, schedule_delay_millis=60_000)
    assert pipeline(2) == 2
    flushed, took = timed(lambda: built.processor.force_flush(5000))
    assert flushed is False and took < 1.0, f"first flush took {took:.2f}s"
    flushed, took = timed(lambda: built.processor.force_flush(5000))
    assert flushed is False and took < 0.1, f"flush during the outage took {took:.2f}s"

    receiver.start()
    assert wait_until(lambda: not built.processor.health.in_outage, 5)
    assert pipeline(1) == 0
    assert built.processor.force_flush(5000) is True
    assert len(receiver.spans()) == spans_of(2) + spans_of(1)


def monitored_worker(endpoint: str) -> None:
    """Telemetry set-up of a process-pool worker: a monitored pipeline to ``endpoint`` over gRPC."""
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "reliability-worker"}))
    provider.add_span_processor(span_processor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
    trace.set_tracer_provider(provider)


@task
def remote_double(x: int) -> int:
    return 2 * x


@pytest.mark.filterwarnings("ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning")
def test_process_pool_task_runs_do_not_wait_for_a_collector_that_is_down(receiver: OtlpReceiver) -> None:
    """Workers flush after every task run; with the collector down (and a monitored pipeline in the
    worker) that flush gives up as soon as export fails, so the task runs are not each held up for the
    exporter's 10 s timeout."""
    receiver.stop(grace=0)
    runner = ProcessPoolTaskRunner(
        max_workers=1,
        mp_context="fork",
        configure_worker=functools.partial(monitored_worker, receiver.grpc_endpoint),
    )

    @flow(task_runner=runner)
    def fan_out() -> list[int]:
        return [future.result() for future in remote_double.map([1, 2, 3])]

    result, took = timed(fan_out)
    assert result == [2, 4, 6]
    assert took < 3.0, f"three task runs took {took:.2f}s with the collector down"


CONFIGURED_SCRIPT = """
import logging, sys, time
logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
import otel_runtime
from otel_runtime import configure, flow, task

@task
def step(value: int) -> int:
    return value + 1

@flow
def job() -> int:
    return step(1)

configure(endpoint=sys.argv[1], protocol=sys.argv[2], logs_exporter="none")
print([job() for _ in range(3)], flush=True)
time.sleep(1.0)  # the first exports fail meanwhile
print(otel_runtime.dropped(), flush=True)
"""


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_configured_program_with_its_collector_down_warns_once_and_says_what_it_dropped_at_exit(
    protocol: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """End to end through configure(): a program whose collector is down prints its results at once,
    logs one warning about the outage (no per-retry noise from the exporters), exits promptly with code 0,
    and its last words say how many spans were dropped (all six)."""
    receiver.stop(grace=0)
    script = tmp_path / "down.py"
    script.write_text(CONFIGURED_SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment |= {"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script), endpoint, "grpc" if protocol == "grpc" else "http/protobuf"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == "[2, 2, 2]"
    lines = result.stderr.splitlines()
    warnings = [line for line in lines if " WARNING " in line or " ERROR " in line]
    assert [line for line in warnings if line.startswith("opentelemetry")] == [], result.stderr
    assert len([line for line in warnings if "could not export spans" in line]) == 1, result.stderr
    (last_words,) = [line for line in warnings if "otel_runtime dropped" in line]
    assert "dropped 6 of 6 spans" in last_words
    assert took < 8, f"the program took {took:.1f}s to exit"
