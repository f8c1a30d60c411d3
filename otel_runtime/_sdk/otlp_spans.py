"""Spans as the bytes of an OTLP ``ExportTraceServiceRequest``, written directly, for the gRPC exporter.

The SDK's encoder builds a protobuf message object per span, attribute and value, then serializes
the tree: about 2 µs an attribute, on the export thread, which shares the GIL with the program. Most
attributes of a run's span are the same on every span (code location, deployment, flow run, state),
so :func:`encode_spans` writes the protobuf wire format itself and keeps the encoded bytes of recent
text attributes. The result parses to the message the SDK's ``encode_spans`` builds (a test compares
them over many kinds of span). Values other than text, booleans, 64-bit integers and floats (arrays,
bytes, mappings) are encoded by the SDK's own function, so its rules and its logged refusals hold.

Spans are grouped by resource and instrumentation scope as the SDK groups them; a batch whose spans
share one resource object, as a provider's do, is grouped without hashing the resource per span.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

__all__ = ["encode_spans"]

_pack_fixed64: Final = struct.Struct("<Q").pack
_pack_fixed32: Final = struct.Struct("<I").pack
_pack_double: Final = struct.Struct("<d").pack
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_UINT64: Final = 2**64 - 1

# Field keys (field number << 3 | wire type) of opentelemetry/proto/trace/v1/trace.proto and common.proto;
# a key of two bytes ends with the length of a fixed-size field (ids) or is itself two bytes (flags).
_REQUEST_RESOURCE_SPANS = b"\x0a"
_RESOURCE_SPANS_RESOURCE, _RESOURCE_SPANS_SCOPE_SPANS, _RESOURCE_SPANS_SCHEMA = b"\x0a", b"\x12", b"\x1a"
_RESOURCE_ATTRIBUTE = b"\x0a"
_SCOPE_SPANS_SCOPE, _SCOPE_SPANS_SPAN, _SCOPE_SPANS_SCHEMA = b"\x0a", b"\x12", b"\x1a"
_SCOPE_NAME, _SCOPE_VERSION, _SCOPE_ATTRIBUTE = b"\x0a", b"\x12", b"\x1a"
_SPAN_TRACE_ID, _SPAN_SPAN_ID, _SPAN_TRACE_STATE = b"\x0a\x10", b"\x12\x08", b"\x1a"
_SPAN_PARENT_ID, _SPAN_NAME, _SPAN_KIND = b"\x22\x08", b"\x2a", b"\x30"
_SPAN_START, _SPAN_END, _SPAN_ATTRIBUTE, _SPAN_DROPPED_ATTRIBUTES = b"\x39", b"\x41", b"\x4a", b"\x50"
_SPAN_EVENT, _SPAN_DROPPED_EVENTS, _SPAN_LINK, _SPAN_DROPPED_LINKS = b"\x5a", b"\x60", b"\x6a", b"\x70"
_SPAN_STATUS, _SPAN_FLAGS = b"\x7a", b"\x85\x01"
_EVENT_TIME, _EVENT_NAME, _EVENT_ATTRIBUTE, _EVENT_DROPPED = b"\x09", b"\x12", b"\x1a", b"\x20"
_LINK_TRACE_ID, _LINK_SPAN_ID = b"\x0a\x10", b"\x12\x08"  # the SDK writes no trace state for links
_LINK_ATTRIBUTE, _LINK_DROPPED, _LINK_FLAGS = b"\x22", b"\x28", b"\x35"
_STATUS_MESSAGE, _STATUS_CODE = b"\x12", b"\x18"
_KEY, _VALUE = b"\x0a", b"\x12"
_STRING_VALUE, _INT_VALUE, _DOUBLE_VALUE = b"\x0a", b"\x18", b"\x21"
_BOOL_TRUE, _BOOL_FALSE = b"\x10\x01", b"\x10\x00"

_HAS_IS_REMOTE: Final = 0x100  # SpanFlags: the context says whether the parent was remote
_IS_REMOTE: Final = 0x200  # SpanFlags: it was
_FLAGS_LOCAL: Final = _SPAN_FLAGS + _pack_fixed32(_HAS_IS_REMOTE)
_FLAGS_REMOTE: Final = _SPAN_FLAGS + _pack_fixed32(_HAS_IS_REMOTE | _IS_REMOTE)
_EMPTY_STATUS: Final = _SPAN_STATUS + b"\x00"

_CACHE_SIZE: Final = 4096
_CACHED_LENGTH: Final = 512  # a long text is rarely repeated, and the cache must stay small
_text_fields: dict[bytes, dict[tuple[str, str], bytes]] = {}
"""Per field key (span, event, link, resource or scope attribute): the whole encoded field of recent
text attributes, by attribute key and value."""


_ONE_BYTE: Final = tuple(bytes((value,)) for value in range(0x80))


def _varint(value: int) -> bytes:
    """``value`` (at most 64 bits, unsigned) as a protobuf varint."""
    if value < 0x80:
        return _ONE_BYTE[value]
    if value < 0x4000:
        return bytes(((value & 0x7F) | 0x80, value >> 7))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _sized(key: bytes, body: bytes) -> bytes:
    """A length-delimited field: its key, the length of ``body``, ``body``."""
    return key + _varint(len(body)) + body


def _text(key: bytes, value: str) -> bytes:
    """A string field, left out when empty as proto3 leaves it out. A lone surrogate, which is not
    UTF-8 and would fail the whole request at the collector, becomes U+FFFD."""
    if not value:
        return b""
    try:
        return _sized(key, value.encode())
    except UnicodeEncodeError:
        return _sized(key, value.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode())


def _key_value(key: str, value: object) -> bytes | None:
    """The encoded ``KeyValue`` of one attribute, or ``None`` when the SDK's encoder must say what it is
    (an array, bytes, a mapping, an integer beyond 64 bits, text that is not UTF-8)."""
    try:
        if type(value) is str:
            body = _sized(_STRING_VALUE, value.encode())
        elif type(value) is bool:
            body = _BOOL_TRUE if value else _BOOL_FALSE
        elif type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
            body = _INT_VALUE + _varint(value & _UINT64)  # negative: two's complement, ten bytes
        elif type(value) is float:
            body = _DOUBLE_VALUE + _pack_double(value)
        else:
            return None
        return _sized(_KEY, key.encode()) + _sized(_VALUE, body)
    except UnicodeEncodeError:
        return None


def _plain(attributes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The SDK's ``BoundedAttributes`` reads its items through the ``Mapping`` protocol, a call per item
    (and a lock); its plain dict, when it has one, reads them at once."""
    plain = getattr(attributes, "_dict", None)
    return plain if isinstance(plain, dict) else attributes


def _attributes(field: bytes, attributes: Mapping[str, Any] | None) -> bytes:
    """Each attribute as one ``field`` holding its ``KeyValue``; text ones from the cache when recent."""
    if not attributes:
        return b""
    items = _plain(attributes).items()
    cache = _text_fields.get(field)
    if cache is None:
        cache = _text_fields[field] = {}
    parts = []
    for pair in items:
        if type(pair[1]) is str:
            encoded = cache.get(pair)
            if encoded is not None:
                parts.append(encoded)
                continue
        kv = _key_value(*pair)
        if kv is None:
            parts.extend(_sdk_key_values(field, *pair))
            continue
        encoded = field + _varint(len(kv)) + kv
        if type(pair[1]) is str and len(encoded) <= _CACHED_LENGTH:
            if len(cache) >= _CACHE_SIZE:
                cache.clear()
            cache[pair] = encoded
        parts.append(encoded)
    return b"".join(parts)


def _sdk_key_values(field: bytes, key: str, value: object) -> list[bytes]:
    """An attribute our encoder leaves to the SDK's: arrays, bytes, mappings, huge integers (which the
    SDK refuses with a logged error, dropping the attribute, as its own encoder does)."""
    from opentelemetry.exporter.otlp.proto.common._internal import _encode_attributes

    encoded = _encode_attributes({key: value})  # type: ignore[dict-item] # the SDK checks the value
    return [_sized(field, pair.SerializeToString()) for pair in encoded]


def _dropped(field: bytes, count: int) -> bytes:
    return field + _varint(count) if count else b""


def _status(span: ReadableSpan) -> bytes:
    status = span.status
    code, description = status.status_code.value, status.description
    if not code and not description:
        return _EMPTY_STATUS
    body = _text(_STATUS_MESSAGE, description or "") + (_STATUS_CODE + _varint(code) if code else b"")
    return _sized(_SPAN_STATUS, body)


def _trace_state(field: bytes, state: Any) -> bytes:
    return _text(field, ",".join(f"{key}={value}" for key, value in state.items())) if state else b""


def _span(span: ReadableSpan) -> bytes:
    """One ``Span`` message, its fields in the order of their numbers (as protobuf writes them)."""
    context = span.get_span_context()
    parent = span.parent
    parts = [
        _SPAN_TRACE_ID,
        context.trace_id.to_bytes(16, "big"),  # type: ignore[union-attr]
        _SPAN_SPAN_ID,
        context.span_id.to_bytes(8, "big"),  # type: ignore[union-attr]
        _trace_state(_SPAN_TRACE_STATE, context.trace_state),  # type: ignore[union-attr]
    ]
    if parent is not None:
        parts += (_SPAN_PARENT_ID, parent.span_id.to_bytes(8, "big"))
    parts += (
        _text(_SPAN_NAME, span.name),
        _SPAN_KIND,
        _varint(span.kind.value + 1),  # the API's INTERNAL is 0, OTLP's SPAN_KIND_INTERNAL is 1
        _SPAN_START + _pack_fixed64(span.start_time) if span.start_time else b"",
        _SPAN_END + _pack_fixed64(span.end_time) if span.end_time else b"",
        # ``span.attributes`` is a read-only proxy of the SDK's ``BoundedAttributes``, read through it.
        _attributes(_SPAN_ATTRIBUTE, getattr(span, "_attributes", None) or span.attributes),
        _dropped(_SPAN_DROPPED_ATTRIBUTES, span.dropped_attributes),
    )
    for event in span.events:
        body = (
            (_EVENT_TIME + _pack_fixed64(event.timestamp) if event.timestamp else b"")
            + _text(_EVENT_NAME, event.name)
            + _attributes(_EVENT_ATTRIBUTE, event.attributes)
            + _dropped(_EVENT_DROPPED, event.dropped_attributes)
        )
        parts.append(_sized(_SPAN_EVENT, body))
    parts.append(_dropped(_SPAN_DROPPED_EVENTS, span.dropped_events))
    for link in span.links:
        linked = link.context
        body = (
            _LINK_TRACE_ID
            + linked.trace_id.to_bytes(16, "big")
            + _LINK_SPAN_ID
            + linked.span_id.to_bytes(8, "big")
            + _attributes(_LINK_ATTRIBUTE, link.attributes)
            + _dropped(_LINK_DROPPED, link.dropped_attributes)
            + _LINK_FLAGS
            + _pack_fixed32(_HAS_IS_REMOTE | _IS_REMOTE if linked.is_remote else _HAS_IS_REMOTE)
        )
        parts.append(_sized(_SPAN_LINK, body))
    parts += (
        _dropped(_SPAN_DROPPED_LINKS, span.dropped_links),
        _status(span),
        _FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL,
    )
    return b"".join(parts)


def _resource(resource: Resource) -> bytes:
    return _sized(_RESOURCE_SPANS_RESOURCE, _attributes(_RESOURCE_ATTRIBUTE, resource.attributes))


def _scope(scope: InstrumentationScope | None) -> bytes:
    if scope is None:
        return _sized(_SCOPE_SPANS_SCOPE, b"")
    body = (
        _text(_SCOPE_NAME, scope.name)
        + _text(_SCOPE_VERSION, scope.version or "")
        + _attributes(_SCOPE_ATTRIBUTE, scope.attributes)
    )
    return _sized(_SCOPE_SPANS_SCOPE, body)


_Scopes = list[tuple[InstrumentationScope | None, list[bytes]]]


def _grouped(spans: Sequence[ReadableSpan]) -> list[tuple[Resource, _Scopes]]:
    """The encoded spans by resource, then by instrumentation scope, each in first-seen order.

    Grouped by identity first (a provider's spans share its resource and its tracers' scopes), then
    equal resources and scopes are joined, as the SDK's dictionaries join them.
    """
    by_identity: dict[int, tuple[Resource, dict[int, tuple[InstrumentationScope | None, list[bytes]]]]] = {}
    for span in spans:
        resource, scope = span.resource, span.instrumentation_scope or None
        found = by_identity.get(id(resource))
        if found is None:
            found = by_identity[id(resource)] = (resource, {})
        held = found[1].get(id(scope))
        if held is None:
            held = found[1][id(scope)] = (scope, [])
        held[1].append(_span(span))
    grouped: list[tuple[Resource, _Scopes]] = []
    for resource, scopes in by_identity.values():
        joined = next((kept for held, kept in grouped if held == resource), None)
        if joined is None:
            joined = []
            grouped.append((resource, joined))
        for scope, encoded in scopes.values():
            same = next((kept for held, kept in joined if held == scope), None)
            if same is None:
                joined.append((scope, encoded))
            else:
                same.extend(encoded)
    return grouped


def encode_spans(spans: Sequence[ReadableSpan]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans``: the message the SDK's
    ``encode_spans(spans)`` builds."""
    request = []
    for resource, scopes in _grouped(spans):
        body = [_resource(resource)]
        for scope, encoded in scopes:
            scope_body = [_scope(scope)]
            scope_body.extend(_SCOPE_SPANS_SPAN + _varint(len(span)) + span for span in encoded)
            if scope is not None and scope.schema_url:
                scope_body.append(_text(_SCOPE_SPANS_SCHEMA, scope.schema_url))
            body.append(_sized(_RESOURCE_SPANS_SCOPE_SPANS, b"".join(scope_body)))
        body.append(_text(_RESOURCE_SPANS_SCHEMA, resource.schema_url or ""))
        request.append(_sized(_REQUEST_RESOURCE_SPANS, b"".join(body)))
    return b"".join(request)
