"""OtlpReceiver: a real OTLP/gRPC and OTLP/HTTP endpoint fed by OpenTelemetry's own exporters."""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Literal

import grpc
import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from otel_runtime._sdk.otlp_json import encode_spans
from otel_runtime._tools.receiver import OtlpReceiver

Protocol = Literal["grpc", "http"]
PROTOCOLS: tuple[Protocol, ...] = ("grpc", "http")
RESOURCE = Resource.create({"service.name": "receiver-test", "deployment.name": "nightly"})
EXPORT_TIMEOUT = 5.0  # seconds; bounds every exporter's retries


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    """A running receiver, stopped (servers and threads) at the end of the test."""
    with OtlpReceiver() as running:
        yield running


_open_exporters: list[SpanExporter | LogRecordExporter] = []


@pytest.fixture(autouse=True)
def _shut_down_exporters() -> Iterator[None]:
    """Every exporter a test makes is shut down after it, closing its channel or connection pool."""
    yield
    while _open_exporters:
        _open_exporters.pop().shutdown()


def span_exporter(receiver: OtlpReceiver, protocol: Protocol, *, gzip_body: bool = False) -> SpanExporter:
    exporter: SpanExporter
    if protocol == "grpc":
        exporter = GrpcSpanExporter(endpoint=receiver.grpc_endpoint, timeout=EXPORT_TIMEOUT)
    else:
        compression = Compression.Gzip if gzip_body else Compression.NoCompression
        exporter = HttpSpanExporter(
            endpoint=receiver.http_endpoint + "/v1/traces", timeout=EXPORT_TIMEOUT, compression=compression
        )
    _open_exporters.append(exporter)
    return exporter


def log_exporter(receiver: OtlpReceiver, protocol: Protocol) -> LogRecordExporter:
    exporter: LogRecordExporter
    if protocol == "grpc":
        exporter = GrpcLogExporter(endpoint=receiver.grpc_endpoint, timeout=EXPORT_TIMEOUT)
    else:
        exporter = HttpLogExporter(endpoint=receiver.http_endpoint + "/v1/logs", timeout=EXPORT_TIMEOUT)
    _open_exporters.append(exporter)
    return exporter


def finished_spans(*names: str) -> list[ReadableSpan]:
    """Ended SDK spans, each a child of the first, from a local provider."""
    tracer = TracerProvider(resource=RESOURCE).get_tracer("receiver-test")
    with tracer.start_as_current_span(names[0], attributes={"flow_run.run_count": 1}) as root:
        children = [tracer.start_span(name, attributes={"task.name": name}) for name in names[1:]]
        for child in children:
            child.end()
    return [root, *children]  # type: ignore[list-item]


@pytest.mark.parametrize(("protocol", "gzip_body"), [("grpc", False), ("http", False), ("http", True)])
def test_spans_from_the_sdk_exporters_arrive_with_names_attributes_and_resource(
    receiver: OtlpReceiver, protocol: Protocol, gzip_body: bool
) -> None:
    """Spans sent by the real OTLP exporter (gRPC, HTTP, gzipped HTTP) come back flattened."""
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(span_exporter(receiver, protocol, gzip_body=gzip_body)))
    tracer = provider.get_tracer("receiver-test")
    with (
        tracer.start_as_current_span("flow etl", attributes={"flow_run.tags": ["a", "b"]}) as flow,
        tracer.start_as_current_span("task load", attributes={"task_run.run_count": 2}),
    ):
        pass
    provider.shutdown()

    spans = {span["name"]: span for span in receiver.wait_for_spans(2, timeout=5)}
    assert spans["flow etl"]["attributes"] == {"flow_run.tags": ["a", "b"]}
    assert spans["task load"]["attributes"] == {"task_run.run_count": 2}
    assert spans["task load"]["parent_span_id"] == format(flow.get_span_context().span_id, "016x")
    assert spans["flow etl"]["trace_id"] == format(flow.get_span_context().trace_id, "032x")
    assert spans["task load"]["resource"]["service.name"] == "receiver-test"
    assert receiver.resources() == [spans["flow etl"]["resource"]]
    assert receiver.requests == {f"{protocol}/traces": 2}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_logs_from_the_sdk_exporters_arrive_with_body_severity_and_trace_ids(
    receiver: OtlpReceiver, protocol: Protocol
) -> None:
    """Log records sent by the real OTLP log exporter come back flattened, joined to their span."""
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter(receiver, protocol)))
    span = TracerProvider().get_tracer("t").start_span("task load")
    provider.get_logger("receiver-test").emit(
        body="loaded 3 rows",
        severity_number=SeverityNumber.WARN,
        attributes={"deployment_name": "nightly"},
        context=trace.set_span_in_context(span),
    )
    span.end()
    provider.shutdown()

    (log,) = receiver.wait_for_logs(1, timeout=5)
    assert log["body"] == "loaded 3 rows"
    assert log["severity_number"] == SeverityNumber.WARN.value
    assert log["attributes"] == {"deployment_name": "nightly"}
    assert log["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert log["resource"]["deployment.name"] == "nightly"
    assert receiver.requests == {f"{protocol}/logs": 1}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exporters_retry_through_injected_failures(receiver: OtlpReceiver, protocol: Protocol) -> None:
    """After ``fail(2)`` the exporter's first two attempts are rejected (retryable, with a
    Retry-After hint) and the third delivers the spans once; rejected requests are not recorded."""
    receiver.fail(2, retry_after=0.05)
    result = span_exporter(receiver, protocol).export(finished_spans("flow retry", "task retry"))
    assert result is SpanExportResult.SUCCESS
    assert sorted(span["name"] for span in receiver.wait_for_spans(2, timeout=1)) == [
        "flow retry",
        "task retry",
    ]
    assert receiver.requests == {"rejected": 2, f"{protocol}/traces": 1}


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_exporters_back_off_without_a_retry_hint(receiver: OtlpReceiver, protocol: Protocol) -> None:
    """Without Retry-After the exporter falls back to its own backoff (about 1 s) and still delivers."""
    receiver.fail(1)
    started = time.monotonic()
    assert (
        span_exporter(receiver, protocol).export(finished_spans("flow backoff")) is SpanExportResult.SUCCESS
    )
    assert time.monotonic() - started >= 0.7
    assert receiver.requests == {"rejected": 1, f"{protocol}/traces": 1}


def test_fail_answers_the_chosen_grpc_code_and_http_status_until_recover(receiver: OtlpReceiver) -> None:
    """``fail(None, code, status)`` rejects every request with exactly that gRPC code / HTTP status
    (and a Retry-After header when asked) until ``recover()``."""
    request = ExportTraceServiceRequest()
    request.resource_spans.add().scope_spans.add().spans.add(
        name="raw", trace_id=b"\x01" * 16, span_id=b"\x02" * 8
    )
    receiver.fail(None, grpc.StatusCode.RESOURCE_EXHAUSTED, 429, retry_after=2)
    with grpc.insecure_channel(f"127.0.0.1:{receiver.grpc_port}") as channel:
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]  # generated, unannotated
        for _ in range(3):
            with pytest.raises(grpc.RpcError) as rejected:
                stub.Export(request, timeout=5)
            assert rejected.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
        for _ in range(2):
            with pytest.raises(urllib.error.HTTPError) as http_rejected:
                post(receiver, "/v1/traces", request.SerializeToString())
            assert http_rejected.value.code == 429
            assert http_rejected.value.headers["Retry-After"] == "2"
        assert receiver.spans() == []
        receiver.recover()
        stub.Export(request, timeout=5)
    assert post(receiver, "/v1/traces", request.SerializeToString()) == 200
    assert [span["name"] for span in receiver.spans()] == ["raw", "raw"]
    assert receiver.requests == {"rejected": 5, "grpc/traces": 1, "http/traces": 1}


def test_delay_answers_late_and_stop_cuts_a_delayed_request_short(receiver: OtlpReceiver) -> None:
    """``delay(s)`` holds each answer back ``s`` seconds; ``stop()`` does not wait that long."""
    body = ExportTraceServiceRequest().SerializeToString()
    receiver.delay(0.3)
    started = time.monotonic()
    assert post(receiver, "/v1/traces", body) == 200
    assert time.monotonic() - started >= 0.3

    receiver.delay(30)
    outcome: list[object] = []
    client = threading.Thread(target=lambda: outcome.append(_post_outcome(receiver, body)))
    client.start()
    time.sleep(0.2)
    started = time.monotonic()
    receiver.stop()
    client.join(timeout=5)
    assert time.monotonic() - started < 3
    assert len(outcome) == 1
    assert outcome[0] != 200


def test_stop_and_start_come_back_on_the_same_ports(receiver: OtlpReceiver) -> None:
    """After ``stop()`` nothing listens on the ports; ``start()`` brings both back on the same ones."""
    ports = (receiver.grpc_port, receiver.http_port)
    receiver.stop()
    assert not receiver.running
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
    receiver.start()
    assert (receiver.grpc_port, receiver.http_port) == ports
    assert span_exporter(receiver, "grpc").export(finished_spans("flow again")) is SpanExportResult.SUCCESS
    assert span_exporter(receiver, "http").export(finished_spans("flow again")) is SpanExportResult.SUCCESS
    assert len(receiver.wait_for_spans(2, timeout=1)) == 2


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_an_exporter_delivers_after_an_outage(receiver: OtlpReceiver, protocol: Protocol) -> None:
    """A collector outage: an export started while the receiver is down succeeds once it is back,
    even over a connection the exporter had pooled before the outage."""
    exporter = span_exporter(receiver, protocol)
    assert exporter.export(finished_spans("flow before")) is SpanExportResult.SUCCESS
    receiver.stop()
    results: list[SpanExportResult] = []
    export = threading.Thread(target=lambda: results.append(exporter.export(finished_spans("flow during"))))
    export.start()
    time.sleep(0.4)
    receiver.start()
    export.join(timeout=EXPORT_TIMEOUT + 2)
    assert results == [SpanExportResult.SUCCESS]
    assert [span["name"] for span in receiver.wait_for_spans(2, timeout=1)] == ["flow before", "flow during"]


def test_http_accepts_otlp_json_bodies(receiver: OtlpReceiver) -> None:
    """An OTLP/JSON line from the file exporter is a valid ``application/json`` OTLP/HTTP body."""
    spans = finished_spans("flow json", "task json")
    assert post(receiver, "/v1/traces", encode_spans(spans).encode(), content_type="application/json") == 200
    received = {span["name"]: span for span in receiver.wait_for_spans(2, timeout=1)}
    assert received["task json"]["span_id"] == format(spans[1].context.span_id, "016x")
    assert received["task json"]["parent_span_id"] == format(spans[0].context.span_id, "016x")


def test_http_answers_json_requests_in_json_errors_included(receiver: OtlpReceiver) -> None:
    """A JSON request gets a JSON answer, and a JSON ``google.rpc.Status`` when it is rejected."""
    receiver.fail(1)
    request = urllib.request.Request(
        receiver.http_endpoint + "/v1/traces",
        data=b"{}",
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as rejected:
        urllib.request.urlopen(request, timeout=5)
    with rejected.value:
        assert rejected.value.headers.get_content_type() == "application/json"
        assert json.loads(rejected.value.read()) == {"code": 14, "message": "rejected by OtlpReceiver.fail()"}
    with urllib.request.urlopen(request, timeout=5) as accepted:
        assert accepted.headers.get_content_type() == "application/json"
        assert json.loads(accepted.read()) == {}


def test_http_rejects_bad_requests_without_recording_them(receiver: OtlpReceiver) -> None:
    """Undecodable bodies get 400, unknown paths 404, and nothing is recorded."""
    cases = [
        ("/v1/traces", b"\xff\xff not protobuf", "application/x-protobuf", 400),
        ("/v1/traces", b"{not json", "application/json", 400),
        ("/v1/traces", gzip.compress(b"x")[:5], "application/x-protobuf", 400),
        ("/v1/metrics", b"", "application/x-protobuf", 404),
    ]
    for path, body, content_type, status in cases:
        encoding = "gzip" if body.startswith(b"\x1f\x8b") else None
        with pytest.raises(urllib.error.HTTPError) as rejected:
            post(receiver, path, body, content_type=content_type, content_encoding=encoding)
        assert rejected.value.code == status, path
    assert receiver.spans() == []
    assert receiver.requests == {}


def test_wait_for_spans_times_out_with_a_clear_message(receiver: OtlpReceiver) -> None:
    """Waiting for more spans than arrive raises TimeoutError naming what did arrive."""
    span_exporter(receiver, "http").export(finished_spans("flow only"))
    with pytest.raises(
        TimeoutError, match=r"got 1 span\(s\) in 0.2s, expected at least 2; names: \['flow only'\]"
    ):
        receiver.wait_for_spans(2, timeout=0.2)
    with pytest.raises(TimeoutError, match="expected at least 1"):
        receiver.wait_for_logs(1, timeout=0.05)


def test_wait_for_spans_wakes_as_soon_as_spans_arrive(receiver: OtlpReceiver) -> None:
    """A waiter blocked in wait_for_spans returns promptly when another thread delivers."""
    exporter = span_exporter(receiver, "grpc")
    sender = threading.Timer(0.2, lambda: exporter.export(finished_spans("flow late")))
    started = time.monotonic()
    sender.start()
    try:
        spans = receiver.wait_for_spans(1, timeout=5)
    finally:
        sender.join()
    assert [span["name"] for span in spans] == ["flow late"]
    assert time.monotonic() - started < 2


def test_clear_forgets_data_and_counts(receiver: OtlpReceiver) -> None:
    """``clear()`` empties spans, logs, resources and request counts."""
    span_exporter(receiver, "http").export(finished_spans("flow gone"))
    receiver.clear()
    assert (receiver.spans(), receiver.logs(), receiver.resources(), receiver.requests) == ([], [], [], {})


def test_context_manager_leaves_no_threads_or_listeners_behind() -> None:
    """Leaving ``with OtlpReceiver()`` stops its servers and joins its threads, even with a pooled
    keep-alive connection still open on the client side."""
    before = set(threading.enumerate())
    with OtlpReceiver() as receiver:
        exporter = span_exporter(receiver, "http")
        exporter.export(finished_spans("flow pooled"))
        ports = (receiver.grpc_port, receiver.http_port)
    exporter.shutdown()
    leftover = [thread.name for thread in set(threading.enumerate()) - before if thread.is_alive()]
    assert [name for name in leftover if "otlp-receiver" in name] == []
    for port in ports:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_endpoints_need_a_start_and_fail_validates_times() -> None:
    """Endpoints of a never-started receiver and ``fail(0)`` are usage errors."""
    receiver = OtlpReceiver()
    with pytest.raises(RuntimeError, match="start"):
        _ = receiver.grpc_endpoint
    with pytest.raises(ValueError, match="times"):
        receiver.fail(0)


def post(
    receiver: OtlpReceiver,
    path: str,
    body: bytes,
    *,
    content_type: str = "application/x-protobuf",
    content_encoding: str | None = None,
) -> int:
    headers = {"Content-Type": content_type}
    if content_encoding:
        headers["Content-Encoding"] = content_encoding
    request = urllib.request.Request(receiver.http_endpoint + path, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.close()  # its status and headers stay readable; its socket must not leak
        raise


def _post_outcome(receiver: OtlpReceiver, body: bytes) -> object:
    try:
        return post(receiver, "/v1/traces", body)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError as error:
        return error


def test_json_bodies_may_use_numbers_for_64_bit_integers(receiver: OtlpReceiver) -> None:
    """OTLP/JSON receivers accept 64-bit integers as numbers too; the receiver normalizes them."""
    record = json.loads(encode_spans(finished_spans("flow numbers")))
    span = record["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    span["startTimeUnixNano"] = int(span["startTimeUnixNano"])
    assert post(receiver, "/v1/traces", json.dumps(record).encode(), content_type="application/json") == 200
    (received,) = receiver.wait_for_spans(1, timeout=1)
    assert received["start_ns"] == span["startTimeUnixNano"]


def test_starting_on_a_port_in_use_fails_cleanly(receiver: OtlpReceiver) -> None:
    """A receiver asked for a port another one holds raises OSError and leaves nothing running."""
    with pytest.raises(OSError, match="gRPC"):
        OtlpReceiver(grpc_port=receiver.grpc_port).start()
    second = OtlpReceiver(http_port=receiver.http_port)
    with pytest.raises(OSError, match="in use"):
        second.start()
    assert not second.running
    with pytest.raises(ConnectionRefusedError):  # the gRPC half it had started was stopped again
        socket.create_connection(("127.0.0.1", second.grpc_port), timeout=1).close()
