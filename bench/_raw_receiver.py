"""A gRPC OTLP trace endpoint that answers without decoding, in a child process: it measures our side.

Run as ``python -m bench._raw_receiver``: prints the endpoint, serves until its stdin closes, then
prints ``<requests> <bytes>``. Each export gets the empty ``ExportTraceServiceResponse`` (zero bytes
on the wire) without its request being parsed, so the exporter, not the receiver, sets the pace.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from pathlib import Path

import grpc

__all__ = ["raw_receiver"]

_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _serve() -> None:
    lock = threading.Lock()
    counts = [0, 0]

    def export(request: bytes, _context: grpc.ServicerContext) -> bytes:
        with lock:
            counts[0] += 1
            counts[1] += len(request)
        return b""

    handler = grpc.unary_unary_rpc_method_handler(export)  # no (de)serializers: raw bytes both ways

    class _Handler(grpc.GenericRpcHandler):
        def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
            return handler if details.method == _EXPORT else None

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((_Handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(0)
    print(*counts, flush=True)


@contextmanager
def raw_receiver() -> Iterator[tuple[str, list[int]]]:
    """Start the child; yield its endpoint and a list that holds ``[requests, bytes]`` after the block."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench._raw_receiver"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    counts: list[int] = []
    try:
        yield child.stdout.readline().strip(), counts
    finally:
        child.stdin.close()
        counts.extend(int(value) for value in child.stdout.readline().split())
        child.wait(timeout=30)


if __name__ == "__main__":
    _serve()
