"""What the collector answered to an export: the OTLP partial success the SDK's exporters ignore.

An OTLP collector that accepts a request but rejects some of its items (a partial success) answers
``OK`` with ``partial_success.rejected_spans`` / ``rejected_log_records`` set; the OpenTelemetry
exporters return ``SUCCESS`` for it all the same, and over HTTP they do not read the body at all, so a
200 reply that is not an OTLP response passes as a success too. :class:`ReplyReader` puts a recording
wrapper around the exporter's gRPC stub or HTTP transport (private attributes of the SDK's OTLP
exporters, looked up defensively: an exporter it does not know is left alone and read as before), so the
counting exporter can count the rejected items dropped, and a reply it cannot read as not confirmed.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from otel_runtime._base.guard import internal_logger

__all__ = ["ReplyReader"]

_REJECTED_FIELDS: Final = ("rejected_spans", "rejected_log_records")


class ReplyReader:
    """Records, per thread, the reply to the latest export of one OTLP exporter."""

    def __init__(self, exporter: object) -> None:
        self._local = threading.local()
        self.reads = _wrap_grpc(exporter, self._record) or _wrap_http(exporter, self._record)

    def _record(self, reply: object) -> None:
        self._local.reply = reply

    def begin(self) -> None:
        """An export starts on this thread: forget the reply to the one before."""
        self._local.reply = None

    def rejected(self, count: int) -> tuple[int, str | None]:
        """Of the ``count`` items the exporter reported exported, how many the reply did not confirm, and
        why (``(0, None)`` when it confirmed them all or was not recorded)."""
        reply = getattr(self._local, "reply", None)
        self._local.reply = None
        if reply is None:
            return 0, None
        if isinstance(reply, _HttpReply):
            reply = reply.parse()
            if reply is None:
                return count, "the collector's reply is not an OTLP response: the items are not confirmed"
        try:
            if not reply.HasField("partial_success"):
                return 0, None
            partial = reply.partial_success
            fields = [getattr(partial, name) for name in _REJECTED_FIELDS if hasattr(partial, name)]
            rejected = fields[0] if fields else 0
            message = str(partial.error_message or "") or None
        except Exception:
            internal_logger.debug("could not read an OTLP reply", exc_info=True)
            return 0, None
        rejected = min(max(int(rejected), 0), count)
        if not rejected:
            return 0, None
        reason = f"the collector rejected {rejected} of {count}" + (f": {message}" if message else "")
        return rejected, reason


class _RecordingStub:
    """A gRPC stub whose ``Export`` records its response."""

    def __init__(self, stub: Any, record: Any) -> None:
        self._stub = stub
        self._record = record

    def Export(self, *args: Any, **kwargs: Any) -> Any:  # noqa: N802 - the name of the stub's method
        response = self._stub.Export(*args, **kwargs)
        self._record(response)
        return response


def _wrap_grpc(exporter: object, record: Any) -> bool:
    stub_type = getattr(exporter, "_stub", None)
    if not callable(stub_type) or not hasattr(exporter, "_initialize_channel_and_stub"):
        return False

    def recording_stub(channel: Any) -> _RecordingStub:
        return _RecordingStub(stub_type(channel), record)

    # A reconnect (after UNAVAILABLE) makes its new stub with this.
    exporter._stub = recording_stub  # type: ignore[attr-defined]
    client = getattr(exporter, "_client", None)
    if client is not None:
        exporter._client = _RecordingStub(client, record)  # type: ignore[attr-defined]
    return True


class _HttpReply:
    """A 2xx reply of an OTLP/HTTP export, parsed on demand with the signal's response type."""

    __slots__ = ("_body", "_response_type")

    def __init__(self, response_type: Any, body: bytes) -> None:
        self._response_type = response_type
        self._body = body

    def parse(self) -> Any:
        """The response message, or ``None`` if the body is not one."""
        try:
            response = self._response_type()
            response.ParseFromString(self._body)
        except Exception:
            return None
        return response


class _RecordingTransport:
    """An OTLP/HTTP transport whose 2xx results are recorded with their bodies."""

    def __init__(self, transport: Any, response_type: Any, record: Any) -> None:
        self._transport = transport
        self._response_type = response_type
        self._record = record

    def request(self, *args: Any, **kwargs: Any) -> Any:
        result = self._transport.request(*args, **kwargs)
        status = getattr(result, "status_code", None)
        if isinstance(status, int) and 200 <= status < 300:
            try:
                body = bytes(result.content())
            except Exception:
                body = b"\xff"  # an unreadable body: not an OTLP response
            self._record(_HttpReply(self._response_type, body))
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _wrap_http(exporter: object, record: Any) -> bool:
    client = getattr(exporter, "_client", None)
    transport = getattr(client, "_transport", None)
    kind = getattr(client, "_kind", None)
    if not callable(getattr(transport, "request", None)) or kind not in ("spans", "logs"):
        return False
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

    reply: Any = (
        trace_service_pb2.ExportTraceServiceResponse
        if kind == "spans"
        else logs_service_pb2.ExportLogsServiceResponse
    )
    client._transport = _RecordingTransport(transport, reply, record)  # type: ignore[union-attr]
    return True
