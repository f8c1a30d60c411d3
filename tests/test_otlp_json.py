"""OTLP/JSON lines: the Collector file-exporter format, written from real SDK data and read back."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as encode_logs_proto
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as encode_spans_proto
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, ReadableLogRecord
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_runtime._sdk.otlp_json import encode_logs, encode_spans, from_otlp_json
from otel_runtime._tools.otlp_read import (
    decode_any_value,
    iter_logs,
    iter_resources,
    iter_spans,
    read_records,
)

RESOURCE = Resource.create({"service.name": "otlp-json-test", "deployment.environment": "test"})
PARENT_ATTRIBUTES: dict[str, Any] = {
    "flow.name": "etl",
    "flow_run.run_count": 3,
    "big": 2**40,
    "ratio": 0.25,
    "ok": True,
    "flow_run.tags": ["a", "b"],
    "numbers": [1, 2, 3],
}


@pytest.fixture
def spans() -> Iterator[list[ReadableSpan]]:
    """A parent span and a failed child span with an event and a link, from a real local provider."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("otel_runtime.test", "1.0")
    with tracer.start_as_current_span("flow etl", attributes=PARENT_ATTRIBUTES) as parent:
        link = trace.Link(parent.get_span_context(), {"link.kind": "sibling"})
        with tracer.start_as_current_span("task load", kind=trace.SpanKind.CLIENT, links=[link]) as child:
            child.add_event("retry", {"attempt": 1, "delay": 0.5})
            child.set_status(trace.Status(trace.StatusCode.ERROR, "ValueError: boom"))
    yield list(exporter.get_finished_spans())
    provider.shutdown()


@pytest.fixture
def log_batch() -> Iterator[list[ReadableLogRecord]]:
    """Two log records from a real local logger provider: one inside a span, one outside."""
    exporter = InMemoryLogRecordExporter()  # type: ignore[no-untyped-call]  # the SDK leaves __init__ unannotated
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("otel_runtime.test")
    tracer_provider = TracerProvider(resource=RESOURCE)
    with tracer_provider.get_tracer("t").start_as_current_span("task load") as span:
        logger.emit(
            body={"event": "loaded", "rows": [1, 2]},
            severity_number=SeverityNumber.WARN,
            severity_text="WARN",
            attributes={"deployment_name": "nightly", "payload": b"\x00\xff"},
            context=trace.set_span_in_context(span),
            timestamp=1_700_000_000_000_000_123,
        )
    logger.emit(body="outside", severity_number=SeverityNumber.INFO)
    yield list(exporter.get_finished_logs())
    provider.shutdown()
    tracer_provider.shutdown()


def by_name(spans: list[ReadableSpan]) -> dict[str, ReadableSpan]:
    return {span.name: span for span in spans}


def walk_keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from walk_keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk_keys(item)


def first_span_json(line: str, name: str) -> dict[str, Any]:
    record = json.loads(line)
    return next(
        span
        for resource_spans in record["resourceSpans"]
        for scope_spans in resource_spans["scopeSpans"]
        for span in scope_spans["spans"]
        if span["name"] == name
    )


def test_encode_spans_is_one_line_of_resource_spans(spans: list[ReadableSpan]) -> None:
    """A batch encodes to a single JSON line whose only top-level key is ``resourceSpans``."""
    line = encode_spans(spans)
    assert "\n" not in line
    assert list(json.loads(line)) == ["resourceSpans"]


def test_ids_are_lowercase_hex_not_base64(spans: list[ReadableSpan]) -> None:
    """traceId, spanId, parentSpanId and link ids are the lowercase hex of the SDK's integer ids."""
    line = encode_spans(spans)
    parent, child = by_name(spans)["flow etl"], by_name(spans)["task load"]
    child_json = first_span_json(line, "task load")
    assert child_json["traceId"] == format(child.context.trace_id, "032x")
    assert child_json["spanId"] == format(child.context.span_id, "016x")
    assert child_json["parentSpanId"] == format(parent.context.span_id, "016x")
    assert child_json["links"][0]["traceId"] == format(parent.context.trace_id, "032x")
    assert child_json["links"][0]["spanId"] == format(parent.context.span_id, "016x")
    assert "parentSpanId" not in first_span_json(line, "flow etl")


def test_64_bit_integers_are_strings_and_enums_are_integers(spans: list[ReadableSpan]) -> None:
    """Times and int attributes are decimal strings; span kind and status code are integers."""
    line = encode_spans(spans)
    child = by_name(spans)["task load"]
    child_json = first_span_json(line, "task load")
    assert child_json["startTimeUnixNano"] == str(child.start_time)
    assert child_json["endTimeUnixNano"] == str(child.end_time)
    assert child_json["kind"] == 3  # SPAN_KIND_CLIENT
    assert child_json["status"] == {"code": 2, "message": "ValueError: boom"}
    assert isinstance(child_json["events"][0]["timeUnixNano"], str)
    parent_attributes = {kv["key"]: kv["value"] for kv in first_span_json(line, "flow etl")["attributes"]}
    assert parent_attributes["big"] == {"intValue": str(2**40)}
    assert parent_attributes["ratio"] == {"doubleValue": 0.25}


def test_keys_are_lower_camel_case(spans: list[ReadableSpan], log_batch: list[ReadableLogRecord]) -> None:
    """No object key is snake_case or capitalized, in spans or logs."""
    span_keys = set(walk_keys(json.loads(encode_spans(spans))))
    log_keys = set(walk_keys(json.loads(encode_logs(log_batch))))
    assert {"scopeSpans", "startTimeUnixNano", "parentSpanId", "droppedAttributesCount"} - span_keys == {
        "droppedAttributesCount"  # zero counts are omitted, as proto3 JSON omits default values
    }
    assert {"scopeLogs", "logRecords", "observedTimeUnixNano", "severityNumber"} <= log_keys
    assert not [key for key in span_keys | log_keys if "_" in key or not key[0].islower()]


def test_lines_parse_back_into_the_same_protobuf(
    spans: list[ReadableSpan], log_batch: list[ReadableLogRecord]
) -> None:
    """An OTLP/JSON line parses back into exactly the request OpenTelemetry's encoder built."""
    span_line, log_line = encode_spans(spans), encode_logs(log_batch)
    assert from_otlp_json(json.loads(span_line), ExportTraceServiceRequest) == encode_spans_proto(spans)
    assert from_otlp_json(json.loads(log_line), ExportLogsServiceRequest) == encode_logs_proto(log_batch)


def test_iter_spans_flattens_names_parents_attributes_events_and_status(spans: list[ReadableSpan]) -> None:
    """iter_spans gives one plain dict per span with decoded attributes, events, status and resource."""
    flat = {span["name"]: span for span in iter_spans(json.loads(encode_spans(spans)))}
    parent, child = by_name(spans)["flow etl"], by_name(spans)["task load"]
    assert set(flat) == {"flow etl", "task load"}
    assert flat["task load"]["parent_span_id"] == format(parent.context.span_id, "016x")
    assert flat["flow etl"]["parent_span_id"] is None
    assert flat["flow etl"]["attributes"] == PARENT_ATTRIBUTES
    assert flat["flow etl"]["status_code"] == 0
    assert flat["flow etl"]["kind"] == 1
    assert flat["task load"]["status_code"] == 2
    assert flat["task load"]["status_message"] == "ValueError: boom"
    assert flat["task load"]["start_ns"] == child.start_time
    assert flat["task load"]["end_ns"] == child.end_time
    assert flat["task load"]["events"] == [
        {"name": "retry", "time_ns": child.events[0].timestamp, "attributes": {"attempt": 1, "delay": 0.5}}
    ]
    assert flat["task load"]["links"] == [
        {
            "trace_id": format(parent.context.trace_id, "032x"),
            "span_id": format(parent.context.span_id, "016x"),
            "attributes": {"link.kind": "sibling"},
        }
    ]
    assert flat["task load"]["resource"]["service.name"] == "otlp-json-test"
    assert flat["task load"]["scope"] == "otel_runtime.test"


def test_iter_logs_flattens_body_severity_attributes_and_trace_ids(
    log_batch: list[ReadableLogRecord],
) -> None:
    """iter_logs decodes map bodies, bytes attributes, severity and the hex ids of the active span."""
    record = json.loads(encode_logs(log_batch))
    assert list(record) == ["resourceLogs"]
    inside, outside = list(iter_logs(record))
    span_log = log_batch[0].log_record
    assert inside["body"] == {"event": "loaded", "rows": [1, 2]}
    assert inside["severity_number"] == SeverityNumber.WARN.value
    assert inside["severity_text"] == "WARN"
    assert inside["attributes"] == {"deployment_name": "nightly", "payload": b"\x00\xff"}
    assert inside["trace_id"] == format(span_log.trace_id or 0, "032x")
    assert inside["span_id"] == format(span_log.span_id or 0, "016x")
    assert inside["time_ns"] == 1_700_000_000_000_000_123
    assert inside["resource"]["service.name"] == "otlp-json-test"
    assert inside["scope"] == "otel_runtime.test"
    assert outside["body"] == "outside"
    assert outside["trace_id"] is None
    assert outside["span_id"] is None
    assert outside["time_ns"] == outside["observed_time_ns"] > 0


def test_iter_resources_lists_each_resource(spans: list[ReadableSpan]) -> None:
    """iter_resources yields the resource attributes of every resource entry."""
    resources = list(iter_resources(json.loads(encode_spans(spans))))
    assert [resource["deployment.environment"] for resource in resources] == ["test"]


def test_decode_any_value_covers_every_value_kind() -> None:
    """Each AnyValue kind decodes to the natural Python value, including JSON's special doubles."""
    assert decode_any_value({"stringValue": ""}) == ""
    assert decode_any_value({"intValue": "-5"}) == -5
    assert decode_any_value({"intValue": 7}) == 7  # numbers accepted, as the spec allows
    assert decode_any_value({"boolValue": False}) is False
    assert math.isnan(decode_any_value({"doubleValue": "NaN"}))
    assert decode_any_value({"doubleValue": "-Infinity"}) == -math.inf
    assert decode_any_value({"bytesValue": base64.b64encode(b"raw").decode()}) == b"raw"
    assert decode_any_value({"arrayValue": {}}) == []
    assert decode_any_value({"kvlistValue": {"values": [{"key": "k", "value": {"intValue": "1"}}]}}) == {
        "k": 1
    }
    assert decode_any_value({}) is None


def test_foreign_ids_are_normalized_to_lowercase_hex() -> None:
    """Uppercase hex (allowed by the spec) and base64 ids (plain proto3 JSON) both read as lowercase hex."""
    span = {"traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": base64.b64encode(b"\x01" * 8).decode()}
    record = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    (flat,) = iter_spans(record)
    assert flat["trace_id"] == "5b8efff798038103d269b633813fc60c"
    assert flat["span_id"] == "01" * 8


def test_read_records_skips_blank_truncated_and_foreign_lines(
    spans: list[ReadableSpan], tmp_path: Path
) -> None:
    """read_records yields every whole JSON object and silently skips lines it cannot parse."""
    line = encode_spans(spans)
    path = tmp_path / "telemetry.jsonl"
    whole = line.encode()
    path.write_bytes(
        whole
        + b"\n\n"
        + whole[: len(whole) // 2]
        + b"\nnot json\n[1, 2]\n\xff\xfe\n"
        + whole
        + b"\n"
        + whole[:10]
    )
    records = list(read_records(path))
    assert len(records) == 2
    assert all(record == json.loads(line) for record in records)


def test_read_records_of_a_missing_file_raises_file_not_found(tmp_path: Path) -> None:
    """A missing file is an error the caller sees, not an empty result."""
    with pytest.raises(FileNotFoundError):
        list(read_records(tmp_path / "absent.jsonl"))
