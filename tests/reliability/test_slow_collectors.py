"""A collector that is slow or black-holed (it accepts the connection and never answers) slows no flow.

Each test runs a real program in a subprocess, configured from the environment as a user would, whose
flows run task runs in a ``ProcessPoolTaskRunner`` (fork and spawn), a thread pool, or the flow's own
thread, and times the flow in the program. The black hole is a TCP listener on loopback that accepts
connections and never reads from them: the OTLP exporter's first export waits out its whole timeout.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime.testing import OtlpReceiver

EXPORT_TIMEOUT_S = 4
"""``OTEL_EXPORTER_OTLP_TIMEOUT``: what one export may wait, and the bound on shutdown at exit."""
TASKS, WORKERS, NAP_S = 6, 2, 0.2

SCRIPT = """
import logging, sys, time
logging.basicConfig(format="%(name)s %(levelname)s %(message)s")
from otel_runtime import configure, flow, task
from otel_runtime.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner

@task
def nap(i: int) -> int:
    time.sleep(NAP_S)
    return i

def runner():
    if sys.argv[1] == "threads":
        return ThreadPoolTaskRunner(max_workers=WORKERS)
    return ProcessPoolTaskRunner(max_workers=WORKERS, mp_context=sys.argv[1])

if __name__ == "__main__":
    configure()
    @flow(task_runner=runner())
    def fan_out() -> list:
        return [future.result() for future in nap.map(range(TASKS))]
    started = time.monotonic()
    assert fan_out() == list(range(TASKS))
    print(f"flow took {time.monotonic() - started:.3f}", flush=True)
"""


class BlackHole:
    """A TCP listener on 127.0.0.1 that accepts every connection and never reads or answers."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._accepted: list[socket.socket] = []
        self._closing = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self._closing:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._accepted.append(connection)

    @property
    def connections(self) -> int:
        return len(self._accepted)

    def close(self) -> None:
        self._closing = True
        self._listener.close()
        for connection in self._accepted:
            connection.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    hole = BlackHole()
    try:
        yield hole
    finally:
        hole.close()


def run_flow(tmp_path: Path, runner: str, endpoint: str, protocol: str = "grpc") -> tuple[float, float, str]:
    """Run the script's flow in a new program; the flow's time, the program's time, and its stderr."""
    script = tmp_path / "fan_out.py"
    script.write_text(
        SCRIPT.replace("WORKERS", str(WORKERS)).replace("TASKS", str(TASKS)).replace("NAP_S", str(NAP_S))
    )
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment |= {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": protocol,
        "OTEL_EXPORTER_OTLP_TIMEOUT": str(EXPORT_TIMEOUT_S),
        "OTEL_METRICS_EXPORTER": "none",
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(script), runner],
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    program_s = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    match = re.search(r"flow took ([0-9.]+)", result.stdout)
    assert match is not None, result.stdout
    return float(match.group(1)), program_s, result.stderr


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


@pytest.mark.parametrize("runner", ["fork", "spawn", "threads"])
def test_a_black_holed_collector_does_not_slow_a_flow_in_any_runner(
    runner: str, black_hole: BlackHole, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """Six task runs of 0.2 s on two workers: against a collector that never answers, the flow takes about
    what it takes against a healthy one (before, each worker's first task run waited out the export
    timeout); the program still exits within the shutdown bound."""
    healthy_s, _, _ = run_flow(tmp_path, runner, receiver.grpc_endpoint)
    assert receiver.wait_for_spans(TASKS + 1, timeout=5)
    blocked_s, program_s, stderr = run_flow(tmp_path, runner, black_hole.endpoint)
    assert black_hole.connections >= 1  # the exporters did reach it
    print(f"[{runner}] flow: {healthy_s:.3f}s healthy, {blocked_s:.3f}s black hole; program {program_s:.2f}s")
    assert blocked_s < healthy_s + EXPORT_TIMEOUT_S / 2, (
        f"the flow took {blocked_s:.2f}s (healthy {healthy_s:.2f}s)"
    )
    assert program_s < blocked_s + EXPORT_TIMEOUT_S + 3, f"the program took {program_s:.2f}s to exit"
    assert "otel_runtime dropped" in stderr, stderr  # the parent's flow span, counted at its exit


@pytest.mark.parametrize("runner", ["fork", "spawn"])
def test_a_slow_collector_slows_no_pool_flow_and_still_gets_every_span(
    runner: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A collector that answers each export 0.5 s late: the task runs do not wait for it, every span (the
    flow's and the six task runs' from the workers) still arrives, the workers' at their exit, which the
    end of the flow waits for (the pool's shutdown): about one late answer, not one per task run."""
    healthy_s, _, _ = run_flow(tmp_path, runner, receiver.grpc_endpoint)
    receiver.wait_for_spans(TASKS + 1, timeout=5)
    receiver.clear()
    receiver.delay(0.5)
    slow_s, _, stderr = run_flow(tmp_path, runner, receiver.grpc_endpoint)
    print(f"[{runner}] flow: {healthy_s:.3f}s healthy, {slow_s:.3f}s with a collector 0.5 s late")
    assert slow_s < healthy_s + 2.0, f"the flow took {slow_s:.2f}s (healthy {healthy_s:.2f}s)"
    spans = receiver.wait_for_spans(TASKS + 1, timeout=5)
    assert sorted(span["name"] for span in spans) == ["flow fan_out"] + ["task nap"] * TASKS
    assert "dropped" not in stderr, stderr
