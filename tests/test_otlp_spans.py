"""The OTLP span requests configure()'s gRPC exporter writes itself: the SDK's message, byte for byte in
meaning, for every kind of span the SDK makes; and a third-party collector (rotel) takes them."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)
from opentelemetry.trace.span import TraceState

from otel_runtime._sdk.otlp_spans import encode_spans
from otel_runtime.testing import OtlpReceiver

Make = Callable[[TracerProvider], None]

REMOTE = SpanContext(
    0x5B8EFFF798038103D269B633813FC60C,
    0xEEE19B7EC3C1B174,
    is_remote=True,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
    trace_state=TraceState([("vendor", "value"), ("other", "x")]),
)


def _recorded(
    make: Make, *, limits: SpanLimits | None = None, resource: Resource | None = None
) -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=resource or Resource.create({"service.name": "s"}), span_limits=limits)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    make(provider)
    provider.shutdown()
    return list(exporter.get_finished_spans())


def _attribute_values(provider: TracerProvider) -> None:
    with provider.get_tracer("t").start_as_current_span("values") as span:
        span.set_attributes(
            {
                "text": "plain",
                "empty": "",
                "unicode": "ünïcødé ✓ 🐍",
                "yes": True,
                "no": False,
                "zero": 0,
                "negative": -1,
                "int64.min": -(2**63),
                "int64.max": 2**63 - 1,
                "big": 300,
                "float": 1.5,
                "negative.zero": -0.0,
                "infinity": float("inf"),
                "texts": ("a", "", "b"),
                "ints": (1, -2, 3),
                "floats": (0.5, 2.0),
                "bools": (True, False),
                "empty.array": (),
            }
        )


def _events_links_status(provider: TracerProvider) -> None:
    tracer = provider.get_tracer("t", "1.2.3", schema_url="https://opentelemetry.io/schemas/1.37.0")
    links = [Link(REMOTE, {"link.kind": "cache", "n": 2}), Link(REMOTE)]
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER, links=links) as parent:
        parent.add_event("retry", {"attempt": 2, "delay": 0.5})
        parent.add_event("plain")
        parent.set_status(Status(StatusCode.ERROR, "boom: ✗"))
        with tracer.start_as_current_span("child", kind=SpanKind.CLIENT) as child:
            child.set_status(Status(StatusCode.OK))
    for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
        tracer.start_span(f"kind {kind.name}", kind=kind).end()


def _remote_parent(provider: TracerProvider) -> None:
    parent = set_span_in_context(NonRecordingSpan(REMOTE))
    provider.get_tracer("t").start_span("remote child", context=parent).end()


def _many_scopes(provider: TracerProvider) -> None:
    for name in ("a", "b", "a"):
        provider.get_tracer(name, attributes={"scope.attribute": name}).start_span(f"from {name}").end()
    provider.get_tracer("").start_span("no scope name").end()


def _dropped(provider: TracerProvider) -> None:
    with provider.get_tracer("t").start_as_current_span("over the limits", links=[Link(REMOTE)] * 3) as span:
        for index in range(5):
            span.set_attribute(f"a{index}", index)
            span.add_event(f"e{index}", {f"k{n}": n for n in range(4)})


CASES: dict[str, tuple[Make, SpanLimits | None]] = {
    "attribute values": (_attribute_values, None),
    "events, links, kinds and status": (_events_links_status, None),
    "a remote parent and a trace state": (_remote_parent, None),
    "several scopes": (_many_scopes, None),
    "dropped attributes, events and links": (
        _dropped,
        SpanLimits(max_span_attributes=2, max_events=2, max_links=1, max_event_attributes=1),
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_request_is_the_message_the_sdk_builds(case: str) -> None:
    make, limits = CASES[case]
    spans = _recorded(make, limits=limits)
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == sdk_encode_spans(spans)
    assert ours.resource_spans[0].scope_spans[0].spans  # the comparison saw spans


def test_spans_of_several_resources_are_grouped_as_the_sdk_groups_them() -> None:
    first = _recorded(_many_scopes, resource=Resource.create({"service.name": "one"}))
    second = _recorded(_many_scopes, resource=Resource.create({"service.name": "two"}))
    again = _recorded(_many_scopes, resource=Resource.create({"service.name": "one"}))  # equal, not the same
    spans = [first[0], second[0], again[1], first[2], second[1]]
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == sdk_encode_spans(spans)
    assert len(ours.resource_spans) == 2


def test_a_cached_attribute_is_written_again_for_each_span_and_field() -> None:
    """The same text attribute on the span, an event and a link, over many spans and past the cache's
    size: every one is in the request."""

    def make(provider: TracerProvider) -> None:
        tracer = provider.get_tracer("t")
        for index in range(5_000):
            with tracer.start_as_current_span("s", links=[Link(REMOTE, {"k": "v"})]) as span:
                span.set_attributes({"k": "v", "unique": f"value {index}"})
                span.add_event("e", {"k": "v"})

    spans = _recorded(make)
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    assert ours == sdk_encode_spans(spans)


def test_what_the_sdk_cannot_encode_is_dropped_as_the_sdk_drops_it(caplog: pytest.LogCaptureFixture) -> None:
    """An integer beyond 64 bits and text with a lone surrogate: the SDK logs and leaves the attribute
    out; so does the request we write, through the SDK's own function."""

    def make(provider: TracerProvider) -> None:
        with provider.get_tracer("t").start_as_current_span("odd values") as span:
            span.set_attributes({"huge": 2**70, "surrogate": "a\ud800b", "kept": "yes"})

    spans = _recorded(make)
    with caplog.at_level(logging.ERROR):
        ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    refused = [
        record.getMessage() for record in caplog.records if "Failed to encode key" in record.getMessage()
    ]
    assert len(refused) == 2
    attributes = {pair.key for pair in ours.resource_spans[0].scope_spans[0].spans[0].attributes}
    assert attributes == {"kept"}
    assert ours == sdk_encode_spans(spans)


def test_a_name_that_is_not_utf8_is_sent_with_a_replacement_character() -> None:
    """The SDK's encoder fails the whole batch on such a name; the request we write carries the span."""

    def make(provider: TracerProvider) -> None:
        provider.get_tracer("t").start_span("half \ud800 a pair").end()
        provider.get_tracer("t").start_span("fine").end()

    spans = _recorded(make)
    ours = ExportTraceServiceRequest.FromString(encode_spans(spans))
    names = [span.name for span in ours.resource_spans[0].scope_spans[0].spans]
    assert names[1] == "fine"
    assert names[0].startswith("half \ufffd") and names[0].endswith("\ufffd a pair")


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as running:
        yield running


_SCRIPT = textwrap.dedent(
    """
    import otel_runtime
    from opentelemetry import trace
    from otel_runtime import flow, task

    @task(tags=["ünï", "two"])
    def step(x: int) -> int:
        span = trace.get_current_span()
        span.set_attributes({"ratio": x / 3, "ok": x % 2 == 0, "sizes": (x, -x)})
        span.add_event("progress", {"done": x})
        if x == 2:
            raise ValueError("bad ✗ value")
        return x

    @flow(name="pipeline ✓")
    def pipeline() -> None:
        for x in range(4):
            try:
                step(x)
            except ValueError:
                pass

    otel_runtime.configure(service_name="encoded", endpoint=ENDPOINT, protocol="grpc", logs_exporter="none")
    pipeline()
    """
)


def test_a_third_party_collector_takes_the_requests_and_forwards_every_span(
    tmp_path: Path, receiver: OtlpReceiver, rotel_collector: str
) -> None:
    """configure() in a user's script exports to rotel (a Rust collector: its own protobuf decoder),
    which forwards to the receiver: every span arrives whole, with its events, status and attributes."""
    script = tmp_path / "app.py"
    script.write_text(f"ENDPOINT = {rotel_collector!r}\n{_SCRIPT}")
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "Failed" not in done.stderr and "otel_runtime could not" not in done.stderr
    spans = {span["name"]: span for span in receiver.wait_for_spans(5, timeout=15)}
    assert len(receiver.spans()) == 5
    flow_span = spans["flow pipeline ✓"]
    steps = sorted(
        (span for span in receiver.spans() if span["name"] == "task step"), key=lambda s: s["start_ns"]
    )
    assert [span["attributes"]["ratio"] for span in steps] == [0.0, 1 / 3, 2 / 3, 1.0]
    assert [span["attributes"]["ok"] for span in steps] == [True, False, True, False]
    assert steps[3]["attributes"]["sizes"] == [3, -3]
    assert steps[0]["attributes"]["task_run.tags"] == ["ünï", "two"]
    assert [span["events"][0]["attributes"]["done"] for span in steps] == [0, 1, 2, 3]
    assert steps[2]["status_code"] == 2 and steps[2]["status_message"] == "bad ✗ value"
    assert {span["parent_span_id"] for span in steps} == {flow_span["span_id"]}
    assert flow_span["resource"]["service.name"] == "encoded"
