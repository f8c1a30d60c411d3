"""The OTLP/gRPC services and the OTLP/HTTP server behind ``OtlpReceiver``: they decode, it records."""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import zlib
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import urlsplit

import grpc
from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError, Message

# googleapis-common-protos (a dependency of the OTLP exporters) ships .pyi files but no py.typed.
from google.rpc.code_pb2 import Code  # type: ignore[import-untyped]
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otel_runtime._sdk.otlp_json import from_otlp_json, to_otlp_json
from otel_runtime._sdk.signals import Signal

if TYPE_CHECKING:
    from otel_runtime._tools.receiver import OtlpReceiver

__all__ = ["HttpServer", "LogsService", "TraceService", "known_port"]


_HOST: Final = "127.0.0.1"
_HTTP_PATHS: Final[dict[str, Signal]] = {"/v1/traces": "traces", "/v1/logs": "logs"}
_REQUEST_TYPES: Final[dict[Signal, type[Message]]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_RESPONSE_TYPES: Final[dict[Signal, type[Message]]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
}
_MAX_BODY_BYTES: Final = 20 * 1024 * 1024  # the OTLP/HTTP recommended limit, after decompression
_RETRY_INFO_KEY: Final = "google.rpc.retryinfo-bin"
_BAD_DATA: Final = (ValueError, DecodeError, ParseError, OSError, EOFError, zlib.error)


def known_port(port: int) -> int:
    if not port:
        raise RuntimeError("OtlpReceiver has no port yet: call start() first")
    return port


class TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name the generated gRPC servicer defines
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        return self._receiver._export_grpc("traces", request, context)  # type: ignore[return-value]


class LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name the generated gRPC servicer defines
        self, request: ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> ExportLogsServiceResponse:
        return self._receiver._export_grpc("logs", request, context)  # type: ignore[return-value]


class HttpServer(ThreadingHTTPServer):
    """A threading HTTP server that can close its open keep-alive connections on stop.

    Without that, a client's pooled connection would keep reaching a handler thread of a
    "stopped" receiver, and ``stop()`` could not wait for those threads.
    """

    daemon_threads = True

    def __init__(self, address: tuple[str, int], receiver: OtlpReceiver) -> None:
        self.receiver = receiver
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__(address, _HttpHandler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Registered here, before the thread starts, so close_connections() cannot miss it.
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name="otlp-receiver-http-conn",
            daemon=True,
        )
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.pop(request, None)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on every open connection and wait for its handler thread."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()


class _HttpHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the exporters' connection pools expect
    timeout = 10  # seconds an idle connection is kept
    server: HttpServer

    def do_POST(self) -> None:
        # OTLP/HTTP answers in the encoding it was sent, errors included.
        is_json = self.headers.get_content_type() == "application/json"
        signal = _HTTP_PATHS.get(urlsplit(self.path).path)
        if signal is None:
            self._fail(
                HTTPStatus.NOT_FOUND, Code.NOT_FOUND, f"no OTLP signal at {self.path}", is_json=is_json
            )
            return
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            self.close_connection = True
            self._fail(
                HTTPStatus.LENGTH_REQUIRED, Code.INVALID_ARGUMENT, "Content-Length required", is_json=is_json
            )
            return
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            self._fail(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE, Code.INVALID_ARGUMENT, "body too large", is_json=is_json
            )
            return
        body = self.rfile.read(length)
        encoding = self.headers.get("Content-Encoding", "identity").strip().lower()
        try:
            fault = self.server.receiver._receive(
                signal,
                "http",
                lambda: _decode_http_body(signal, body, encoding, is_json=is_json),
                dict(self.headers.items()),
            )
        except _BAD_DATA as error:
            message = f"bad OTLP request: {error}"
            self._fail(HTTPStatus.BAD_REQUEST, Code.INVALID_ARGUMENT, message, is_json=is_json)
            return
        if isinstance(fault, bytes):  # OtlpReceiver.reply_garbage()
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(fault)))
            self.end_headers()
            self.wfile.write(fault)
            return
        if isinstance(fault, Message):
            self._reply(HTTPStatus.OK, fault, is_json=is_json)
            return
        headers = {} if fault.retry_after is None else {"Retry-After": f"{fault.retry_after:g}"}
        self._fail(fault.http_status, Code.UNAVAILABLE, fault.message, is_json=is_json, headers=headers)

    def _fail(
        self, status: int, code: int, message: str, *, is_json: bool, headers: dict[str, str] | None = None
    ) -> None:
        """Answer with the ``google.rpc.Status`` body OTLP/HTTP requires on every error."""
        self._reply(status, Status(code=code, message=message), is_json=is_json, headers=headers)

    def _reply(
        self, status: int, message: Message, *, is_json: bool, headers: dict[str, str] | None = None
    ) -> None:
        body = json.dumps(to_otlp_json(message)).encode() if is_json else message.SerializeToString()
        self.send_response(status)
        self.send_header("Content-Type", "application/json" if is_json else "application/x-protobuf")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet: no access log on stderr."""


def _decode_http_body(signal: Signal, body: bytes, encoding: str, *, is_json: bool) -> dict[str, Any]:
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    elif encoding not in ("identity", "none", ""):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}")
    if len(body) > _MAX_BODY_BYTES:
        raise ValueError("body too large after decompression")
    request_type = _REQUEST_TYPES[signal]
    # JSON goes through the protobuf message too, so it is validated and normalized alike.
    message = from_otlp_json(json.loads(body), request_type) if is_json else request_type.FromString(body)
    return to_otlp_json(message)
