"""A real OTLP receiver on loopback, for tests and benchmarks: gRPC and HTTP, with fault injection.

>>> with OtlpReceiver() as receiver:  # doctest: +SKIP
...     exporter = OTLPSpanExporter(endpoint=receiver.grpc_endpoint, insecure=True)
...     ...  # export some spans
...     spans = receiver.wait_for_spans(3, timeout=5)

It speaks OTLP/gRPC (the trace and logs services) on one port and OTLP/HTTP on another
(``POST /v1/traces`` and ``/v1/logs``; ``application/x-protobuf`` or ``application/json``; gzip or
deflate bodies). Received data is flattened exactly as ``_otlp_json.iter_spans`` / ``iter_logs``
flatten a telemetry file. ``fail``, ``delay``, ``stop`` and ``start`` (same ports again) simulate a
collector that is overloaded, slow or down.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import socket
import threading
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Literal
from urllib.parse import urlsplit

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError, Message

# googleapis-common-protos (a dependency of the OTLP exporters) ships .pyi files but no py.typed.
from google.rpc.code_pb2 import Code  # type: ignore[import-untyped]
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
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
from otel_runtime._tools.otlp_read import FlatLog, FlatSpan, iter_logs, iter_resources, iter_spans

__all__ = ["OtlpReceiver"]

_Signal = Literal["traces", "logs"]

_HOST: Final = "127.0.0.1"
_HTTP_PATHS: Final[dict[str, _Signal]] = {"/v1/traces": "traces", "/v1/logs": "logs"}
_REQUEST_TYPES: Final[dict[_Signal, type[Message]]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
}
_RESPONSE_TYPES: Final[dict[_Signal, type[Message]]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
}
_MAX_BODY_BYTES: Final = 20 * 1024 * 1024  # the OTLP/HTTP recommended limit, after decompression
_RETRY_INFO_KEY: Final = "google.rpc.retryinfo-bin"
_BAD_DATA: Final = (ValueError, DecodeError, ParseError, OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class _Fault:
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after: float | None
    message: str


_SHUTTING_DOWN: Final = _Fault(grpc.StatusCode.UNAVAILABLE, 503, None, "OtlpReceiver is shutting down")


class OtlpReceiver:
    """An OTLP/gRPC and OTLP/HTTP server on 127.0.0.1 that records what it receives.

    Ports are ephemeral unless given; once bound they are kept, so ``stop()`` then ``start()``
    brings the receiver back where exporters expect it. All methods are thread-safe.
    """

    def __init__(self, *, grpc_port: int = 0, http_port: int = 0) -> None:
        self._grpc_port = grpc_port
        self._http_port = http_port
        self._cond = threading.Condition()
        self._spans: list[FlatSpan] = []
        self._logs: list[FlatLog] = []
        self._resources: list[dict[str, Any]] = []
        self._headers: list[dict[str, str]] = []
        self._requests: Counter[str] = Counter()
        self._fault: _Fault | None = None
        self._fault_remaining: int | None = None
        self._delay = 0.0
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._http_server: _HttpServer | None = None
        self._http_thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> OtlpReceiver:
        """Start both servers (on the ports of the previous start, if any); a no-op when running."""
        with self._lifecycle:
            if self._grpc_server is not None:
                return self
            self._stopping.clear()
            self._start_grpc()
            try:
                self._start_http()
            except BaseException:
                self._stop_grpc(grace=0)
                raise
        return self

    def stop(self, grace: float = 0.5) -> None:
        """Stop both servers and close open connections; in-flight gRPC calls get up to ``grace`` seconds."""
        with self._lifecycle:
            self._stopping.set()  # wakes delayed requests, which then answer "unavailable"
            self._stop_grpc(grace)
            if self._http_server is not None and self._http_thread is not None:
                self._http_server.shutdown()
                self._http_server.close_connections()
                self._http_server.server_close()
                self._http_thread.join()
                self._http_server = self._http_thread = None

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return self._grpc_server is not None

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop(grace=0.1)

    def _start_grpc(self) -> None:
        executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="otlp-receiver-grpc")
        # Without SO_REUSEPORT a port already in use fails loudly instead of being silently shared.
        server = grpc.server(executor, options=[("grpc.so_reuseport", 0)])
        # The generated *_pb2_grpc modules carry no annotations.
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_TraceService(self), server)  # type: ignore[no-untyped-call]
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(_LogsService(self), server)  # type: ignore[no-untyped-call]
        try:
            port = server.add_insecure_port(f"{_HOST}:{self._grpc_port}")
        except RuntimeError as error:  # recent grpcio raises instead of returning 0
            port = 0
            cause: BaseException | None = error
        else:
            cause = None
        if not port:
            executor.shutdown(wait=False)
            raise OSError(f"OtlpReceiver could not bind gRPC to {_HOST}:{self._grpc_port}") from cause
        server.start()
        self._grpc_port = port
        self._grpc_server, self._grpc_executor = server, executor

    def _stop_grpc(self, grace: float) -> None:
        if self._grpc_server is not None and self._grpc_executor is not None:
            self._grpc_server.stop(grace).wait()
            self._grpc_executor.shutdown(wait=True)
            self._grpc_server = self._grpc_executor = None

    def _start_http(self) -> None:
        server = _HttpServer((_HOST, self._http_port), self)
        self._http_port = server.server_address[1]
        self._http_server = server
        self._http_thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="otlp-receiver-http",
            daemon=True,
        )
        self._http_thread.start()

    # -- addresses ------------------------------------------------------------------------------

    @property
    def grpc_port(self) -> int:
        """The gRPC port (known after the first ``start``)."""
        return _known_port(self._grpc_port)

    @property
    def http_port(self) -> int:
        """The HTTP port (known after the first ``start``)."""
        return _known_port(self._http_port)

    @property
    def grpc_endpoint(self) -> str:
        """``http://127.0.0.1:<port>``, for the gRPC exporters' ``endpoint``."""
        return f"http://{_HOST}:{self.grpc_port}"

    @property
    def http_endpoint(self) -> str:
        """The OTLP/HTTP base URL; the HTTP exporters want ``+ "/v1/traces"`` or ``+ "/v1/logs"``."""
        return f"http://{_HOST}:{self.http_port}"

    # -- collected data -------------------------------------------------------------------------

    def spans(self) -> list[FlatSpan]:
        """Every span received so far, in arrival order (shaped like ``_otlp_json.iter_spans``)."""
        with self._cond:
            return list(self._spans)

    def logs(self) -> list[FlatLog]:
        """Every log record received so far, in arrival order (shaped like ``_otlp_json.iter_logs``)."""
        with self._cond:
            return list(self._logs)

    def resources(self) -> list[dict[str, Any]]:
        """The distinct resources (as attribute dicts) seen so far, in arrival order."""
        with self._cond:
            return list(self._resources)

    def request_headers(self) -> list[dict[str, str]]:
        """The headers (gRPC metadata) of each accepted request, in arrival order; names lowercase."""
        with self._cond:
            return [dict(headers) for headers in self._headers]

    @property
    def requests(self) -> dict[str, int]:
        """Accepted requests per ``"<grpc|http>/<traces|logs>"``, and ``"rejected"`` by a fault."""
        with self._cond:
            return dict(self._requests)

    def clear(self) -> None:
        """Forget everything received and every request count."""
        with self._cond:
            self._spans.clear()
            self._logs.clear()
            self._resources.clear()
            self._headers.clear()
            self._requests.clear()

    def wait_for_spans(self, n: int = 1, timeout: float = 5.0) -> list[FlatSpan]:
        """Block until at least ``n`` spans have arrived and return them all; ``TimeoutError`` if not."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._spans) >= n, timeout):
                names = [span["name"] for span in self._spans]
                raise TimeoutError(
                    f"OtlpReceiver got {len(names)} span(s) in {timeout}s, expected at least {n}; "
                    f"names: {names}; requests: {dict(self._requests)}"
                )
            return list(self._spans)

    def wait_for_logs(self, n: int = 1, timeout: float = 5.0) -> list[FlatLog]:
        """Block until at least ``n`` log records have arrived and return them all; else ``TimeoutError``."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self._logs) >= n, timeout):
                bodies = [log["body"] for log in self._logs]
                raise TimeoutError(
                    f"OtlpReceiver got {len(bodies)} log record(s) in {timeout}s, expected at least {n}; "
                    f"bodies: {bodies}; requests: {dict(self._requests)}"
                )
            return list(self._logs)

    # -- fault injection ------------------------------------------------------------------------

    def fail(
        self,
        times: int | None = None,
        grpc_code: grpc.StatusCode = grpc.StatusCode.UNAVAILABLE,
        http_status: int = 503,
        *,
        retry_after: float | None = None,
    ) -> None:
        """Reject the next ``times`` requests (every request while ``None``, until :meth:`recover`).

        gRPC requests get ``grpc_code``, HTTP requests ``http_status``; rejected data is not
        recorded. ``retry_after`` (seconds) is sent as gRPC ``RetryInfo`` and HTTP ``Retry-After``,
        which the OpenTelemetry exporters use instead of their exponential backoff.
        """
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for every request), got {times!r}")
        fault = _Fault(grpc_code, http_status, retry_after, "rejected by OtlpReceiver.fail()")
        with self._cond:
            self._fault, self._fault_remaining = fault, times

    def delay(self, seconds: float) -> None:
        """Answer every request ``seconds`` late (0 to answer at once again)."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds!r}")
        with self._cond:
            self._delay = seconds

    def recover(self) -> None:
        """Cancel :meth:`fail` and :meth:`delay`."""
        with self._cond:
            self._fault = self._fault_remaining = None
            self._delay = 0.0

    # -- request handling, shared by both transports ---------------------------------------------

    def _receive(
        self,
        signal: _Signal,
        transport: str,
        decode: Callable[[], dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> _Fault | None:
        """Record one export request unless a fault rejects it; return that fault.

        ``decode`` gives the request in OTLP/JSON form and raises one of ``_BAD_DATA`` on bad input.
        """
        with self._cond:
            delay = self._delay
        if delay:
            self._stopping.wait(delay)
        if self._stopping.is_set():
            return _SHUTTING_DOWN
        with self._cond:
            fault = self._take_fault()
            if fault is not None:
                self._requests["rejected"] += 1
                return fault
        record = decode()
        spans = list(iter_spans(record))
        logs = list(iter_logs(record))
        with self._cond:
            self._spans.extend(spans)
            self._logs.extend(logs)
            self._resources.extend(
                resource for resource in iter_resources(record) if resource not in self._resources
            )
            self._headers.append({name.lower(): value for name, value in (headers or {}).items()})
            self._requests[f"{transport}/{signal}"] += 1
            self._cond.notify_all()
        return None

    def _take_fault(self) -> _Fault | None:
        fault = self._fault
        if fault is not None and self._fault_remaining is not None:
            self._fault_remaining -= 1
            if self._fault_remaining == 0:
                self._fault = self._fault_remaining = None
        return fault

    def _export_grpc(self, signal: _Signal, request: Message, context: grpc.ServicerContext) -> None:
        metadata = {str(key): str(value) for key, value in context.invocation_metadata() or ()}
        fault = self._receive(signal, "grpc", lambda: to_otlp_json(request), metadata)
        if fault is None:
            return
        if fault.retry_after is not None:
            delay = Duration()
            delay.FromNanoseconds(round(fault.retry_after * 1e9))
            context.set_trailing_metadata(
                ((_RETRY_INFO_KEY, RetryInfo(retry_delay=delay).SerializeToString()),)
            )
        context.abort(fault.grpc_code, fault.message)


def _known_port(port: int) -> int:
    if not port:
        raise RuntimeError("OtlpReceiver has no port yet: call start() first")
    return port


class _TraceService(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name the generated gRPC servicer defines
        self, request: ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> ExportTraceServiceResponse:
        self._receiver._export_grpc("traces", request, context)
        return ExportTraceServiceResponse()


class _LogsService(logs_service_pb2_grpc.LogsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(  # noqa: N802 - the name the generated gRPC servicer defines
        self, request: ExportLogsServiceRequest, context: grpc.ServicerContext
    ) -> ExportLogsServiceResponse:
        self._receiver._export_grpc("logs", request, context)
        return ExportLogsServiceResponse()


class _HttpServer(ThreadingHTTPServer):
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
    server: _HttpServer

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
        if fault is None:
            self._reply(HTTPStatus.OK, _RESPONSE_TYPES[signal](), is_json=is_json)
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


def _decode_http_body(signal: _Signal, body: bytes, encoding: str, *, is_json: bool) -> dict[str, Any]:
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


OtlpReceiver.__module__ = "otel_runtime.testing"
