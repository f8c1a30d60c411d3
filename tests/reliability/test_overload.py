"""Sustained overload: spans end faster than a real collector takes them. One warning per episode.

Threads end spans into a small export queue in front of a loopback ``OtlpReceiver`` that answers each
export 20 ms late, through the real OTLP/gRPC exporter; the queue fills, drains a batch, fills again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider

from otel_runtime import flow
from otel_runtime._sdk.drops import dropped
from otel_runtime._sdk.monitored_processor import span_processor
from otel_runtime.testing import OtlpReceiver, use_tracer_provider

QUIET_S = 0.5
"""The quiet time that ends an episode, shortened from its 5 s default for the test."""


@flow
def tiny() -> int:
    return 1


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


def overload(seconds: float, threads: int = 4) -> None:
    """End flow-run spans from ``threads`` threads as fast as they go, for ``seconds``."""
    until = time.monotonic() + seconds

    def run() -> None:
        while time.monotonic() < until:
            tiny()

    workers = [threading.Thread(target=run) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_sustained_overload_gives_one_warning_per_episode_and_one_count(
    receiver: OtlpReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    """Two episodes of overload (1.5 s, then 1 s after a quiet second): two warnings, not one per time the
    queue drains; each episode's end is one INFO line with its count, and the counts add up to what was
    dropped. The SDK's own "Queue full" warning never appears, at any level; no export failed, so there
    is no outage warning either."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    caplog.set_level(logging.DEBUG)
    receiver.delay(0.02)
    processor = span_processor(
        OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True, timeout=5),
        schedule_delay_millis=10,
        max_queue_size=64,
        max_export_batch_size=32,
    )
    processor.health.overload_quiet_s = QUIET_S
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: "overload"}), shutdown_on_exit=False)
    provider.add_span_processor(processor)
    before = dropped().spans
    with use_tracer_provider(provider):
        overload(1.5)
        time.sleep(2 * QUIET_S)
        overload(1.0)
        time.sleep(2 * QUIET_S)
        tiny()  # an export after the quiet time ends the second episode
        deadline = time.monotonic() + 5
        while processor.health.overloads and time.monotonic() < deadline and not ends(caplog, 2):
            time.sleep(0.05)
    provider.shutdown()

    health = processor.health
    messages = [(record.levelno, record.getMessage()) for record in caplog.records]
    starts = [
        m for level, m in messages if level == logging.WARNING and "export queue" in m and "is full" in m
    ]
    assert len(starts) == 2, messages
    counts = [int(m.split("; ")[1].split()[0]) for m in ends(caplog, 2)]
    assert len(counts) == 2 and all(counts), messages
    assert sum(counts) == health.dropped == dropped().spans - before
    assert health.exported + health.dropped == health.ended
    assert not [m for _, m in messages if "Queue full" in m]
    assert not [m for _, m in messages if "could not export" in m]
    print(f"overload: {health.ended} spans, {counts} dropped in the two episodes, {len(messages)} log lines")


def ends(caplog: pytest.LogCaptureFixture, expected: int) -> list[str]:
    """The INFO lines that end an overload episode."""
    lines = [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.INFO and "keeps up again" in r.getMessage()
    ]
    return lines if len(lines) >= expected else []
