"""Reading OTLP/JSON lines back: one plain dict per span or log record, for the CLI and the receiver.

The lines are those of ``otel_runtime._sdk.otlp_json`` (the Collector's ``file`` exporter format).
Reading flattens the nested ``resource -> scope -> span`` structure into one plain dict per span or
log record (:class:`FlatSpan`, :class:`FlatLog`), the shape the CLI and the test receiver share. It
needs no protobuf: only ``json``.

>>> for record in read_records(".otel_runtime/telemetry.jsonl"):  # doctest: +SKIP
...     for span in iter_spans(record):
...         print(span["name"], span["parent_span_id"])
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TypedDict

__all__ = [
    "MALFORMED",
    "FlatEvent",
    "FlatLink",
    "FlatLog",
    "FlatSpan",
    "decode_any_value",
    "decode_attributes",
    "iter_logs",
    "iter_resources",
    "iter_spans",
    "parse_line",
    "read_records",
]


MALFORMED: Final = (TypeError, ValueError, AttributeError, KeyError, RecursionError, OverflowError)
"""What :func:`iter_spans` and :func:`iter_logs` raise on JSON that is not OTLP (``{"resourceSpans": 5}``, a
timestamp that is not a number, nesting deeper than the stack): catch these to skip such a record."""

_MAX_NANOS: Final = 2**64  # OTLP timestamps are fixed64


class FlatEvent(TypedDict):
    """A span event."""

    name: str
    time_ns: int
    attributes: dict[str, Any]


class FlatLink(TypedDict):
    """A span link."""

    trace_id: str
    span_id: str
    attributes: dict[str, Any]


class FlatSpan(TypedDict):
    """One span, flattened out of its resource and scope."""

    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    status_code: int
    status_message: str
    attributes: dict[str, Any]
    events: list[FlatEvent]
    links: list[FlatLink]
    resource: dict[str, Any]
    scope: str


class FlatLog(TypedDict):
    """One log record, flattened out of its resource and scope.

    ``time_ns`` falls back to ``observed_time_ns`` when the record has no event time.
    """

    time_ns: int
    observed_time_ns: int
    severity_number: int
    severity_text: str
    body: Any
    attributes: dict[str, Any]
    event_name: str
    trace_id: str | None
    span_id: str | None
    resource: dict[str, Any]
    scope: str


def read_records(path: str | Path) -> Iterator[dict[str, Any]]:
    """Yield each JSON object in the OTLP/JSON lines file at ``path``.

    Blank, truncated or otherwise unparsable lines (a writer killed mid-line, a foreign line, brackets
    nested deeper than the parser goes) are skipped. A missing file raises ``FileNotFoundError``.
    """
    with Path(path).open("rb") as lines:
        for line in lines:
            record = parse_line(line)
            if record is not None:
                yield record


def parse_line(line: bytes) -> dict[str, Any] | None:
    """The JSON object on ``line``; ``None`` for a blank line, a line that is not JSON, or not an object."""
    if not line.strip():
        return None
    try:
        record = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError, nesting too deep
        return None
    return record if isinstance(record, dict) else None


def iter_resources(record: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The resource attributes of each ``resourceSpans`` / ``resourceLogs`` entry of ``record``."""
    for resource_data in (*record.get("resourceSpans", ()), *record.get("resourceLogs", ())):
        yield decode_attributes(resource_data.get("resource", {}).get("attributes"))


def _scoped(
    record: Mapping[str, Any], resources_key: str, scopes_key: str, items_key: str
) -> Iterator[tuple[dict[str, Any], str, Mapping[str, Any]]]:
    """Each span or log record of ``record`` with its resource's attributes and its scope's name."""
    for resource_data in record.get(resources_key, ()):
        resource = decode_attributes(resource_data.get("resource", {}).get("attributes"))
        for scope_data in resource_data.get(scopes_key, ()):
            scope = str(scope_data.get("scope", {}).get("name", ""))
            for item in scope_data.get(items_key, ()):
                yield resource, scope, item


def iter_spans(record: Mapping[str, Any]) -> Iterator[FlatSpan]:
    """The spans of one OTLP/JSON ``TracesData`` object, flattened.

    Raises one of :data:`MALFORMED` when the object is not OTLP (a timestamp that is not a whole number
    of nanoseconds within ``fixed64``, a list that is not a list...).
    """
    for resource, scope, span in _scoped(record, "resourceSpans", "scopeSpans", "spans"):
        status = span.get("status", {})
        yield FlatSpan(
            trace_id=_hex_id(span.get("traceId")) or "",
            span_id=_hex_id(span.get("spanId")) or "",
            parent_span_id=_hex_id(span.get("parentSpanId")),
            name=str(span.get("name", "")),
            kind=int(span.get("kind", 0)),
            start_ns=_nanos(span.get("startTimeUnixNano", 0)),
            end_ns=_nanos(span.get("endTimeUnixNano", 0)),
            status_code=int(status.get("code", 0)),
            status_message=str(status.get("message", "")),
            attributes=decode_attributes(span.get("attributes")),
            events=[
                FlatEvent(
                    name=str(event.get("name", "")),
                    time_ns=_nanos(event.get("timeUnixNano", 0)),
                    attributes=decode_attributes(event.get("attributes")),
                )
                for event in span.get("events", ())
            ],
            links=[
                FlatLink(
                    trace_id=_hex_id(link.get("traceId")) or "",
                    span_id=_hex_id(link.get("spanId")) or "",
                    attributes=decode_attributes(link.get("attributes")),
                )
                for link in span.get("links", ())
            ],
            resource=resource,
            scope=scope,
        )


def iter_logs(record: Mapping[str, Any]) -> Iterator[FlatLog]:
    """The log records of one OTLP/JSON ``LogsData`` object, flattened (raises as :func:`iter_spans` does)."""
    for resource, scope, log in _scoped(record, "resourceLogs", "scopeLogs", "logRecords"):
        observed_ns = _nanos(log.get("observedTimeUnixNano", 0))
        yield FlatLog(
            # The log data model: when a record has no event time, use its observed time.
            time_ns=_nanos(log.get("timeUnixNano", 0)) or observed_ns,
            observed_time_ns=observed_ns,
            severity_number=int(log.get("severityNumber", 0)),
            severity_text=str(log.get("severityText", "")),
            body=decode_any_value(log.get("body", {})),
            attributes=decode_attributes(log.get("attributes")),
            event_name=str(log.get("eventName", "")),
            trace_id=_hex_id(log.get("traceId")),
            span_id=_hex_id(log.get("spanId")),
            resource=resource,
            scope=scope,
        )


def decode_attributes(key_values: Sequence[Mapping[str, Any]] | None) -> dict[str, Any]:
    """A list of OTLP/JSON ``KeyValue`` objects as a plain dict."""
    return {str(kv.get("key", "")): decode_any_value(kv.get("value", {})) for kv in key_values or ()}


def decode_any_value(value: Mapping[str, Any]) -> Any:
    """An OTLP/JSON ``AnyValue`` as a plain Python value (``None`` when empty)."""
    for kind, raw in value.items():
        if kind == "arrayValue":
            return [decode_any_value(item) for item in raw.get("values", ())]
        if kind == "kvlistValue":
            return decode_attributes(raw.get("values"))
        decode = _SCALAR_DECODERS.get(kind)
        if decode is not None:
            return decode(raw)
    return None


_SCALAR_DECODERS: dict[str, Callable[[Any], Any]] = {
    "stringValue": str,
    "boolValue": bool,
    "intValue": int,  # a decimal string, or a number from lenient writers
    "doubleValue": float,  # also "NaN", "Infinity", "-Infinity"
    "bytesValue": base64.b64decode,  # only ids are hex; other bytes stay base64
}


def _nanos(value: Any) -> int:
    """A timestamp: a whole number of nanoseconds (a decimal string or a number) that fits ``fixed64``."""
    nanos = int(value)
    if not 0 <= nanos < _MAX_NANOS:
        raise ValueError(f"timestamp out of range: {nanos}")
    return nanos


def _hex_id(value: Any) -> str | None:
    """A lowercase hex id; ``None`` for an absent or empty one. Tolerates base64 from proto3-JSON writers."""
    if not value:
        return None
    text = str(value)
    try:
        bytes.fromhex(text)
    except ValueError:
        try:
            return base64.b64decode(text, validate=True).hex()
        except binascii.Error:
            return text
    return text.lower()
