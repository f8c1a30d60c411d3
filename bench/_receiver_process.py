"""An ``OtlpReceiver`` in a child process, as a collector would be: the exporter gets the whole GIL.

Run as ``python -m bench._receiver_process``: prints the gRPC endpoint, then answers each line
``<count> <timeout seconds>`` on stdin, once ``count`` spans arrived or the timeout passed, with
``<spans received> <distinct span ids>``. An empty line or end of input stops it.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from otel_runtime.testing import OtlpReceiver

__all__ = ["receiver_process"]


def _serve() -> None:
    with OtlpReceiver() as receiver:
        print(receiver.grpc_endpoint, flush=True)
        for line in sys.stdin:
            if not line.strip():
                break
            count, timeout = line.split()
            try:
                spans = receiver.wait_for_spans(int(count), float(timeout))
            except TimeoutError:
                spans = receiver.spans()
            print(len(spans), len({span["span_id"] for span in spans}), flush=True)


@contextmanager
def receiver_process() -> Iterator[tuple[str, Callable[[int, float], tuple[int, int]]]]:
    """Start the child; yield its gRPC endpoint and ``received(count, timeout) -> (spans, distinct ids)``."""
    child = subprocess.Popen(
        [sys.executable, "-m", "bench._receiver_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert child.stdin is not None
    assert child.stdout is not None
    stdin, stdout = child.stdin, child.stdout

    def received(count: int, timeout: float) -> tuple[int, int]:
        stdin.write(f"{count} {timeout}\n")
        stdin.flush()
        spans, distinct = stdout.readline().split()
        return int(spans), int(distinct)

    try:
        yield stdout.readline().strip(), received
    finally:
        stdin.close()
        child.wait(timeout=30)


if __name__ == "__main__":
    _serve()
