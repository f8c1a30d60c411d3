"""An exporter wrapper that keeps one oversized span or log record from sinking its batch.

A collector refuses a request over its size limit (4 MiB for OTLP/gRPC by default:
``max_recv_msg_size_mib``), and the OTLP exporters then retry the whole batch until they give up, so
one huge item loses every item exported with it. :class:`SplittingExporter` estimates each item's
encoded size before export (the length of its texts, cheap to add up) and:

- exports a batch estimated over :data:`MAX_REQUEST_BYTES` in parts that each fit;
- cuts an item that does not fit alone: each text value longer than :data:`MAX_TRIMMED_TEXT` (an
  attribute, an event attribute, the status description, a log body) is cut with a marker, so the item
  still arrives, with its ids, times and short attributes whole.

It sits between the SDK's batch processor and the counting exporter, so each part is counted exported
or dropped on its own. The estimate is of the texts only (protobuf framing adds a few bytes per value);
the bound leaves a quarter of the limit for that.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, Generic

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from otel_runtime._core.exception_text import bounded_text
from otel_runtime._sdk.counting_exporter import Exporter
from otel_runtime._sdk.signals import LOGS, SPANS, ItemT, ResultT, SignalResults

__all__ = [
    "MAX_REQUEST_BYTES",
    "MAX_TRIMMED_TEXT",
    "SplittingExporter",
    "SplittingLogExporter",
    "SplittingSpanExporter",
    "log_record_size",
    "span_size",
]

MAX_REQUEST_BYTES: Final = 3 * 1024 * 1024
"""The estimated size above which a batch is exported in parts: 3 MiB, under the 4 MiB gRPC default."""
MAX_TRIMMED_TEXT: Final = 64 * 1024
"""The characters kept of each long text of an item too big to be exported alone."""

_ITEM_OVERHEAD: Final = 64  # ids, times, kind, flags and framing of a span or log record
_VALUE_OVERHEAD: Final = 8  # framing of one attribute value


def _value_size(value: object) -> int:
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode("utf-8", "replace"))
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if isinstance(value, Mapping):
        return sum(len(str(key)) + _value_size(item) + _VALUE_OVERHEAD for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return sum(_value_size(item) + _VALUE_OVERHEAD for item in value)
    return _VALUE_OVERHEAD


def _attributes_size(attributes: Mapping[str, Any] | None) -> int:
    if not attributes:
        return 0
    return sum(len(key) + _value_size(value) + _VALUE_OVERHEAD for key, value in attributes.items())


def span_size(span: ReadableSpan) -> int:
    """About how many bytes ``span`` takes in an OTLP request."""
    size = _ITEM_OVERHEAD + len(span.name) + _attributes_size(span.attributes)
    size += len(span.status.description or "")
    for event in span.events:
        size += _ITEM_OVERHEAD + len(event.name) + _attributes_size(event.attributes)
    for link in span.links:
        size += _ITEM_OVERHEAD + _attributes_size(link.attributes)
    return size


def log_record_size(record: ReadableLogRecord) -> int:
    """About how many bytes ``record`` takes in an OTLP request."""
    log = record.log_record
    return _ITEM_OVERHEAD + _value_size(log.body) + _attributes_size(log.attributes)


def _trimmed_value(value: Any) -> Any:
    if isinstance(value, str):
        return bounded_text(value, MAX_TRIMMED_TEXT)
    if isinstance(value, (bytes, bytearray)):
        return bytes(value[:MAX_TRIMMED_TEXT])
    if isinstance(value, Mapping):
        return {key: _trimmed_value(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_trimmed_value(item) for item in value)
    return value


def _trimmed_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {key: _trimmed_value(value) for key, value in (attributes or {}).items()}


def trim_span(span: ReadableSpan) -> ReadableSpan:
    """A copy of ``span`` with every long text cut to :data:`MAX_TRIMMED_TEXT` characters."""
    description = span.status.description
    return ReadableSpan(
        name=bounded_text(span.name, MAX_TRIMMED_TEXT),
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=_trimmed_attributes(span.attributes),
        events=[
            Event(event.name, _trimmed_attributes(event.attributes), event.timestamp) for event in span.events
        ],
        links=[Link(link.context, _trimmed_attributes(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(
            span.status.status_code,
            None if description is None else bounded_text(description, MAX_TRIMMED_TEXT),
        ),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


def trim_log_record(record: ReadableLogRecord) -> ReadableLogRecord:
    """A copy of ``record`` with its body and attribute texts cut to :data:`MAX_TRIMMED_TEXT` characters."""
    log = copy.copy(record.log_record)
    log.body = _trimmed_value(log.body)
    log.attributes = _trimmed_attributes(log.attributes)
    return dataclasses.replace(record, log_record=log)


class SplittingExporter(Generic[ItemT, ResultT]):
    """Exports each batch through ``exporter`` in parts estimated under ``max_bytes`` each."""

    def __init__(
        self,
        results: SignalResults[ItemT, ResultT],
        exporter: Exporter[ItemT, ResultT],
        size: Callable[[ItemT], int],
        trim: Callable[[ItemT], ItemT],
        *,
        max_bytes: int = MAX_REQUEST_BYTES,
    ) -> None:
        self.results = results
        self.exporter = exporter
        self._size = size
        self._trim = trim
        self._max_bytes = max_bytes

    def export(self, batch: Sequence[ItemT]) -> ResultT:
        """Export ``batch`` (in parts when it is too big); ``SUCCESS`` when every part was exported."""
        try:
            sizes = [self._size(item) for item in batch]
        except Exception:  # an item we cannot size: export as the SDK would
            return self.exporter.export(batch)
        if sum(sizes) <= self._max_bytes:
            return self.exporter.export(batch)
        ok = True
        for part in self._parts(batch, sizes):
            ok = self.exporter.export(part) == self.results.success and ok
        return self.results.success if ok else self.results.failure

    def _parts(self, batch: Sequence[ItemT], sizes: Sequence[int]) -> Iterator[list[ItemT]]:
        part: list[ItemT] = []
        used = 0
        for original, estimate in zip(batch, sizes, strict=True):
            item, size = self._fitted(original, estimate)
            if part and used + size > self._max_bytes:
                yield part
                part, used = [], 0
            part.append(item)
            used += size
        if part:
            yield part

    def _fitted(self, item: ItemT, size: int) -> tuple[ItemT, int]:
        """``item`` and its size, its texts cut if it is too big alone (else as it is: it goes alone)."""
        if size <= self._max_bytes:
            return item, size
        try:
            trimmed = self._trim(item)
            return trimmed, self._size(trimmed)
        except Exception:
            return item, size

    def shutdown(self) -> None:
        """Shut the wrapped exporter down."""
        self.exporter.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Flush the wrapped exporter."""
        return bool(self.exporter.force_flush(timeout_millis))


# The SDK's processors take a SpanExporter or a LogRecordExporter (different base classes with
# differently typed ``export`` methods), so each signal keeps a class that only adds its base.
class SplittingSpanExporter(SplittingExporter[ReadableSpan, SpanExportResult], SpanExporter):
    """A span exporter that exports an oversized batch in parts, cutting a span too big alone."""

    def __init__(self, exporter: SpanExporter, *, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        super().__init__(SPANS, exporter, span_size, trim_span, max_bytes=max_bytes)


class SplittingLogExporter(SplittingExporter[ReadableLogRecord, LogRecordExportResult], LogRecordExporter):
    """A log record exporter that exports an oversized batch in parts, cutting a record too big alone."""

    def __init__(self, exporter: LogRecordExporter, *, max_bytes: int = MAX_REQUEST_BYTES) -> None:
        super().__init__(LOGS, exporter, log_record_size, trim_log_record, max_bytes=max_bytes)
