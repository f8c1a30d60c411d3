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

import threading
import zlib
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, TypeVar

import grpc
from google.protobuf.duration_pb2 import Duration
from google.protobuf.json_format import ParseError
from google.protobuf.message import DecodeError, Message

# googleapis-common-protos (a dependency of the OTLP exporters) ships .pyi files but no py.typed.
from google.rpc.error_details_pb2 import RetryInfo  # type: ignore[import-untyped]
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

from otel_runtime._sdk.otlp_json import to_otlp_json
from otel_runtime._sdk.signals import Signal
from otel_runtime._tools.otlp_read import FlatLog, FlatSpan, iter_logs, iter_resources, iter_spans
from otel_runtime._tools.receiver_transports import (
    HttpServer,
    LogsService,
    TraceService,
    known_port,
)

__all__ = ["OtlpReceiver"]

ItemT = TypeVar("ItemT")

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


@dataclass(frozen=True)
class _Fault:
    grpc_code: grpc.StatusCode
    http_status: int
    retry_after: float | None
    message: str


@dataclass(frozen=True)
class _Reply:
    """An accepted request answered with an OTLP partial success, or (HTTP) a body that is not OTLP."""

    rejected: int
    message: str
    garbage: bool = False

    def response(self, signal: Signal, count: int) -> Message:
        """The partial-success response to a request of ``count`` items."""
        response = _RESPONSE_TYPES[signal]()
        rejected = min(self.rejected, count)
        if rejected:
            partial = response.partial_success  # type: ignore[attr-defined]
            setattr(partial, "rejected_spans" if signal == "traces" else "rejected_log_records", rejected)
            partial.error_message = self.message
        return response


_GARBAGE: Final = b"\xff\xffthis is not an OTLP response"

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
        self._reply: _Reply | None = None
        self._delay = 0.0
        self._stopping = threading.Event()
        self._lifecycle = threading.Lock()
        self._grpc_server: grpc.Server | None = None
        self._grpc_executor: ThreadPoolExecutor | None = None
        self._http_server: HttpServer | None = None
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
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(TraceService(self), server)  # type: ignore[no-untyped-call]
        logs_service_pb2_grpc.add_LogsServiceServicer_to_server(LogsService(self), server)  # type: ignore[no-untyped-call]
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
        server = HttpServer((_HOST, self._http_port), self)
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
        return known_port(self._grpc_port)

    @property
    def http_port(self) -> int:
        """The HTTP port (known after the first ``start``)."""
        return known_port(self._http_port)

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
        return self._wait_for(
            self._spans, n, timeout, noun="span(s)", shown="names", show=lambda span: span["name"]
        )

    def wait_for_logs(self, n: int = 1, timeout: float = 5.0) -> list[FlatLog]:
        """Block until at least ``n`` log records have arrived and return them all; else ``TimeoutError``."""
        return self._wait_for(
            self._logs, n, timeout, noun="log record(s)", shown="bodies", show=lambda log: log["body"]
        )

    def _wait_for(
        self,
        items: list[ItemT],
        n: int,
        timeout: float,
        *,
        noun: str,
        shown: str,
        show: Callable[[ItemT], Any],
    ) -> list[ItemT]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(items) >= n, timeout):
                raise TimeoutError(
                    f"OtlpReceiver got {len(items)} {noun} in {timeout}s, expected at least {n}; "
                    f"{shown}: {[show(item) for item in items]}; requests: {dict(self._requests)}"
                )
            return list(items)

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

    def reject_partially(
        self, rejected: int, message: str = "rejected by OtlpReceiver.reject_partially()"
    ) -> None:
        """Accept every request but answer with an OTLP partial success: its last ``rejected`` items (spans or
        log records) are rejected and not recorded, ``message`` says why. Until :meth:`recover`."""
        if rejected < 1:
            raise ValueError(f"rejected must be at least 1, got {rejected!r}")
        with self._cond:
            self._reply = _Reply(rejected, message)

    def reply_garbage(self) -> None:
        """Answer every OTLP/HTTP request ``200 OK`` with a body that is not an OTLP response (the data is
        recorded). gRPC requests are answered as usual. Until :meth:`recover`."""
        with self._cond:
            self._reply = _Reply(0, "", garbage=True)

    def delay(self, seconds: float) -> None:
        """Answer every request ``seconds`` late (0 to answer at once again)."""
        if seconds < 0:
            raise ValueError(f"seconds must not be negative, got {seconds!r}")
        with self._cond:
            self._delay = seconds

    def recover(self) -> None:
        """Cancel :meth:`fail`, :meth:`delay`, :meth:`reject_partially` and :meth:`reply_garbage`."""
        with self._cond:
            self._fault = self._fault_remaining = self._reply = None
            self._delay = 0.0

    # -- request handling, shared by both transports ---------------------------------------------

    def _receive(
        self,
        signal: Signal,
        transport: str,
        decode: Callable[[], dict[str, Any]],
        headers: dict[str, str] | None = None,
    ) -> _Fault | Message | bytes:
        """Record one export request unless a fault rejects it; return that fault, or the response
        (a message, or for :meth:`reply_garbage` the raw bytes of a body that is not one).

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
            reply = self._reply
        response: Message | bytes = _RESPONSE_TYPES[signal]()
        if reply is not None and not reply.garbage:
            items = spans if signal == "traces" else logs
            response = reply.response(signal, len(items))
            del items[max(0, len(items) - reply.rejected) :]
        elif reply is not None and transport == "http":
            response = _GARBAGE
        with self._cond:
            self._spans.extend(spans)
            self._logs.extend(logs)
            self._resources.extend(
                resource for resource in iter_resources(record) if resource not in self._resources
            )
            self._headers.append({name.lower(): value for name, value in (headers or {}).items()})
            self._requests[f"{transport}/{signal}"] += 1
            self._cond.notify_all()
        return response

    def _take_fault(self) -> _Fault | None:
        fault = self._fault
        if fault is not None and self._fault_remaining is not None:
            self._fault_remaining -= 1
            if self._fault_remaining == 0:
                self._fault = self._fault_remaining = None
        return fault

    def _export_grpc(self, signal: Signal, request: Message, context: grpc.ServicerContext) -> Message:
        metadata = {str(key): str(value) for key, value in context.invocation_metadata() or ()}
        fault = self._receive(signal, "grpc", lambda: to_otlp_json(request), metadata)
        if isinstance(fault, Message):
            return fault
        assert isinstance(fault, _Fault)  # bytes are for HTTP only
        if fault.retry_after is not None:
            delay = Duration()
            delay.FromNanoseconds(round(fault.retry_after * 1e9))
            context.set_trailing_metadata(
                ((_RETRY_INFO_KEY, RetryInfo(retry_delay=delay).SerializeToString()),)
            )
        context.abort(fault.grpc_code, fault.message)
        raise AssertionError("unreachable: abort() raises")  # pragma: no cover


OtlpReceiver.__module__ = "otel_runtime.testing"
