"""How long an outage the export bridges: measured against a real receiver that refuses requests.

``OtlpReceiver.fail(n)`` answers the next ``n`` export requests UNAVAILABLE (gRPC) / 503 (HTTP), as a
collector restarting or overloaded does. The OTLP exporters retry after about 1, 2, 4 s (20 % jitter),
or after the collector's ``Retry-After``, at most 6 attempts, and give up when the next wait would pass
their timeout (10 s by default) from the first attempt. These tests pin what that gives, in a running
program and in one that exits right after its flow (whose shutdown bound, 5 s, cuts the retries short).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_runtime import flow
from otel_runtime._sdk.monitored_processor import MonitoredSpanProcessor, span_processor
from otel_runtime.testing import OtlpReceiver, use_tracer_provider


@flow
def job() -> int:
    return 1


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def one_span_through(receiver: OtlpReceiver) -> tuple[MonitoredSpanProcessor, float]:
    """End one flow run's span into a pipeline with the exporter's default timeout (10 s); wait until it
    is exported or dropped; the pipeline and how long that took."""
    processor = span_processor(
        OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True), schedule_delay_millis=10
    )
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "outage"}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    started = time.monotonic()
    with use_tracer_provider(provider):
        job()
    health = processor.health
    assert wait_until(lambda: health.exported + health.dropped == 1, 15), health
    took = time.monotonic() - started
    provider.shutdown()
    return processor, took


@pytest.mark.parametrize(("refusals", "delivered"), [(3, True), (4, False)])
def test_a_running_program_bridges_three_refusals_in_a_row_not_four(
    refusals: int, delivered: bool, receiver: OtlpReceiver
) -> None:
    """Without ``Retry-After``: the 4th attempt comes about 7 s after the first, within the exporter's 10 s,
    so 3 refusals lose nothing; after a 4th the next wait (about 8 s) would pass the 10 s and the span is
    dropped, counted. So an outage shorter than about 5.6 s always loses nothing, one longer than about
    8.4 s always loses what was being sent; in between it depends on the jitter."""
    receiver.fail(refusals)
    processor, took = one_span_through(receiver)
    assert receiver.requests["rejected"] == refusals
    assert (processor.health.exported, processor.health.dropped) == ((1, 0) if delivered else (0, 1))
    assert len(receiver.spans()) == int(delivered)
    print(f"{refusals} refusals: {'delivered' if delivered else 'dropped'} after {took:.2f}s")


@pytest.mark.parametrize(("refusals", "delivered"), [(5, True), (6, False)])
def test_with_retry_after_a_running_program_bridges_five_refusals_not_six(
    refusals: int, delivered: bool, receiver: OtlpReceiver
) -> None:
    """With the collector's ``Retry-After`` (0.2 s), the exporter waits that long instead of backing off,
    up to its 6 attempts: 5 refusals are bridged in about a second, a 6th drops the span, counted."""
    receiver.fail(refusals, retry_after=0.2)
    processor, took = one_span_through(receiver)
    assert (processor.health.exported, processor.health.dropped) == ((1, 0) if delivered else (0, 1))
    assert len(receiver.spans()) == int(delivered)
    outcome = "delivered" if delivered else "dropped"
    print(f"{refusals} refusals with Retry-After 0.2 s: {outcome} after {took:.2f}s")


EXITING = """
import logging, sys
logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
from otel_runtime import configure, flow

@flow
def job() -> int:
    return 1

configure(endpoint=sys.argv[1], logs_exporter="none", metrics_exporter="none")
job()
"""


@pytest.mark.parametrize(("refusals", "delivered"), [(2, True), (3, False)])
def test_a_program_exiting_after_its_flow_bridges_two_refusals_within_the_exit_bound(
    refusals: int, delivered: bool, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A program that exits right after its flow: the exit hook waits up to the shutdown bound (5 s by
    default) for the exporter's retries. The 3rd attempt comes at about 3 s, so 2 refusals are bridged;
    the 4th would come at about 7 s, past the bound, so after 3 the span is dropped, counted and said."""
    script = tmp_path / "exiting.py"
    script.write_text(EXITING)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment["OTEL_BSP_SCHEDULE_DELAY"] = "10"
    receiver.fail(refusals)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script), receiver.grpc_endpoint],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert len(receiver.spans()) == int(delivered)
    assert ("dropped 1 of 1 spans" in result.stderr) is not delivered, result.stderr
    assert took < 5 + 3, f"the program took {took:.1f}s to exit"
    print(
        f"exit after {refusals} refusals: {'delivered' if delivered else 'dropped'}; exited after {took:.2f}s"
    )
