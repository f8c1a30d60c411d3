"""The OTLP/gRPC span exporter ``configure()`` builds: the SDK's, sending requests ``otlp_spans`` wrote.

Everything but the encoding is the SDK's exporter: its channel, credentials, headers, compression,
retries and reconnects. Its request is the bytes :func:`otlp_spans.encode_spans` writes, sent through a
stub that passes them on unchanged, instead of the message tree the SDK builds and then serializes,
which cost the export thread (and through the GIL, the program) about five times as much per span.

The stub and channel are private attributes of the SDK's exporter. An SDK version without them gets
the SDK's own request, and so does a batch our encoder fails on (with one warning).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from opentelemetry.sdk.trace import ReadableSpan

from otel_runtime._base.guard import warn_once
from otel_runtime._sdk.otlp_spans import encode_spans

__all__ = ["GrpcSpanExporter"]

_EXPORT: Final = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _EncodedTraceService:
    """A ``TraceService`` stub whose ``Export`` sends a request already serialized."""

    def __init__(self, channel: Any) -> None:
        self.Export = channel.unary_unary(  # the name of the service's method
            _EXPORT,
            request_serializer=None,  # gRPC sends bytes as they are
            response_deserializer=ExportTraceServiceResponse.FromString,
        )


class GrpcSpanExporter(OTLPSpanExporter):
    """``OTLPSpanExporter`` (gRPC) with a faster request encoder; the same options and behaviour."""

    exports_as: Final = OTLPSpanExporter
    """The class whose destination this is, for finding an exporter a provider already has."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._encoded = hasattr(self, "_stub") and hasattr(self, "_channel") and hasattr(self, "_client")
        if self._encoded:
            self._stub = _EncodedTraceService  # a reconnect builds its stub with this
            self._client = _EncodedTraceService(self._channel)  # type: ignore[assignment]

    def _translate_data(self, data: Sequence[ReadableSpan]) -> Any:
        if not self._encoded:
            return sdk_encode_spans(data)
        try:
            return encode_spans(data)
        except Exception:
            message = "otel_runtime could not encode spans; using the SDK's encoder"
            warn_once("span-encoding", message, exc_info=True)
            return sdk_encode_spans(data).SerializeToString()
