"""OTLP/JSON, the format of the OpenTelemetry Collector's ``file`` exporter: encoding for export.

Each line is one ``TracesData`` or ``LogsData`` object in the OTLP JSON mapping: the proto3 JSON
mapping with lowerCamelCase keys, 64-bit integers as decimal strings and enums as integers, except
that trace and span ids are lowercase hex instead of base64. The Collector's ``otlpjsonfile``
receiver reads such lines back, and an OTLP/HTTP endpoint accepts each one as an
``application/json`` request body.

Encoding goes through OpenTelemetry's own protobuf encoders, so the file holds exactly what the OTLP
exporters would send. Reading the lines back into plain dicts is the tools' job (``_tools/otlp_read.py``).

>>> line = encode_spans(finished_spans)               # doctest: +SKIP
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast

from google.protobuf.json_format import MessageToDict, ParseDict
from google.protobuf.message import Message
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs as _encode_logs_proto
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as _encode_spans_proto
from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["encode_logs", "encode_spans", "from_otlp_json", "to_otlp_json"]

# The fields the OTLP JSON mapping writes as hex rather than base64, wherever they occur
# (Span, Span.Link, LogRecord). No other object key in OTLP is spelled like these.
_ID_KEYS = frozenset({"traceId", "spanId", "parentSpanId"})

_MessageT = TypeVar("_MessageT", bound=Message)


def to_otlp_json(message: Message) -> dict[str, Any]:
    """The OTLP/JSON form of an OTLP protobuf message, such as an export request."""
    # MessageToDict's defaults already give lowerCamelCase keys and 64-bit integers as strings.
    data = MessageToDict(message, use_integers_for_enums=True)
    return cast("dict[str, Any]", _convert_ids(data, _base64_to_hex))


def from_otlp_json(data: Mapping[str, Any], message_type: type[_MessageT]) -> _MessageT:
    """Parse an OTLP/JSON object into ``message_type``; unknown fields are ignored, as OTLP requires.

    Raises ``ValueError`` or ``google.protobuf.json_format.ParseError`` on malformed input.
    """
    message = message_type()
    ParseDict(_convert_ids(data, _hex_to_base64), message, ignore_unknown_fields=True)
    return message


def encode_spans(spans: Sequence[ReadableSpan]) -> str:
    """One OTLP/JSON line (no trailing newline) holding ``spans``."""
    return _dumps(to_otlp_json(_encode_spans_proto(spans)))


def encode_logs(batch: Sequence[ReadableLogRecord]) -> str:
    """One OTLP/JSON line (no trailing newline) holding the log records of ``batch``."""
    return _dumps(to_otlp_json(_encode_logs_proto(batch)))


def _dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _base64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def _hex_to_base64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode("ascii")


def _convert_ids(node: Any, convert: Callable[[str], str]) -> Any:
    """A copy of ``node`` with every id field passed through ``convert``."""
    if isinstance(node, Mapping):
        return {
            key: (
                convert(value) if key in _ID_KEYS and isinstance(value, str) else _convert_ids(value, convert)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_convert_ids(item, convert) for item in node]
    return node
