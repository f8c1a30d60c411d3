"""SIGTERM, as Kubernetes, systemd and ``docker stop`` send it, to a real child process running flows.

The child configures OTLP/gRPC export to a loopback ``OtlpReceiver``, finishes a few flow runs, then starts
one whose task runs (one in the flow's thread, one submitted to the thread pool) block. The test sends
SIGTERM and counts at the receiver.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime.testing import OtlpReceiver

BOUND_S = 2.0
"""The shutdown bound the child is given (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""

SCRIPT = """
import signal, sys, time
from otel_runtime import configure, flow, task

@task
def step(x: int) -> int:
    return x + 1

@task
def stuck() -> None:
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    time.sleep(60)

@flow
def done() -> int:
    return step(1)

@flow
def hangs() -> None:
    if sys.argv[2] == "none":  # a sys.exit() would wait for a busy pool thread: Python's rule
        stuck.submit()
    stuck()

def own_handler(signum, frame):
    print("own handler called", flush=True)
    sys.exit(3)

if sys.argv[2] == "before":
    signal.signal(signal.SIGTERM, own_handler)
configure(endpoint=sys.argv[1], logs_exporter="none", metrics_exporter="none")
if sys.argv[2] == "after":
    signal.signal(signal.SIGTERM, own_handler)
for _ in range(3):
    done()
hangs()
"""

COMPLETED = 6
"""Three ``done`` runs: a flow span and a task span each."""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


def terminate_child(
    tmp_path: Path, endpoint: str, handler: str
) -> tuple[subprocess.CompletedProcess[str], float]:
    """Run the script until its stuck tasks run, send SIGTERM; its result and how long it took to die."""
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment["OTEL_EXPORTER_OTLP_TIMEOUT"] = str(BOUND_S)
    child = subprocess.Popen(
        [sys.executable, str(script), endpoint, handler],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    try:
        assert child.stdout is not None
        for _ in range(2 if handler == "none" else 1):  # the stuck task runs have started
            assert child.stdout.readline() == "ready\n"
        started = time.monotonic()
        child.send_signal(signal.SIGTERM)
        stdout, stderr = child.communicate(timeout=30)
        took = time.monotonic() - started
    finally:
        child.kill()
        child.communicate()
    return subprocess.CompletedProcess(child.args, child.returncode, stdout, stderr), took


def states(receiver: OtlpReceiver) -> list[tuple[str, str, int, str]]:
    """Each received span's name, state type, status code and status description."""
    return sorted(
        (
            span["name"],
            span["attributes"].get("flow_run.state.type") or span["attributes"].get("task_run.state.type"),
            span["status_code"],
            span["status_message"],
        )
        for span in receiver.spans()
    )


def test_sigterm_exports_the_ended_runs_ends_the_open_ones_cancelled_and_dies_of_the_signal(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """With SIGTERM's default action, the child still dies of SIGTERM (status -15) within the shutdown
    bound, but first every run that had ended reaches the collector, and the flow run and both task runs
    still running reach it too, ended CANCELLED with an ERROR status that says SIGTERM."""
    result, took = terminate_child(tmp_path, receiver.grpc_endpoint, "none")
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert took < BOUND_S + 1.0, f"the child took {took:.2f}s to die"
    received = states(receiver)
    assert [name for name, state, _, _ in received if state == "COMPLETED"] == ["flow done"] * 3 + [
        "task step"
    ] * 3
    cancelled = [(name, code, message) for name, state, code, message in received if state == "CANCELLED"]
    error = 2
    assert cancelled == [
        ("flow hangs", error, "Cancelled: the process received SIGTERM"),
        ("task stuck", error, "Cancelled: the process received SIGTERM"),
        ("task stuck", error, "Cancelled: the process received SIGTERM"),
    ]
    assert len(received) == COMPLETED + 3
    assert "Traceback" not in result.stderr and "WARNING" not in result.stderr, result.stderr
    print(f"SIGTERM: died after {took:.3f}s, {len(received)} spans received")


@pytest.mark.parametrize("installed", ["before", "after"])
def test_sigterm_calls_the_programs_own_handler_and_its_exit_still_exports(
    installed: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A SIGTERM handler the program installed itself (before or after ``configure()``) is called, and
    what it does stands: its ``sys.exit(3)`` ends the open runs as cancelled through the normal path, the
    exit code is 3, and the exit hook exports every span within the bound."""
    result, took = terminate_child(tmp_path, receiver.grpc_endpoint, installed)
    assert "own handler called" in result.stdout
    assert result.returncode == 3, result.stderr
    assert took < BOUND_S + 1.0
    received = states(receiver)
    assert len([state for _, state, _, _ in received if state == "COMPLETED"]) == COMPLETED
    assert ("flow hangs", "CANCELLED") in [(name, state) for name, state, _, _ in received]


def test_sigterm_with_the_collector_down_still_dies_within_the_shutdown_bound(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """Nothing listens at the endpoint: the exporters are retrying when SIGTERM comes. The child dies of
    SIGTERM within the shutdown bound, not after the exporters' retries."""
    receiver.stop(grace=0)
    result, took = terminate_child(tmp_path, receiver.grpc_endpoint, "none")
    assert result.returncode == -signal.SIGTERM, result.stderr
    assert took < BOUND_S + 1.0, f"the child took {took:.2f}s to die"
    print(f"SIGTERM with the collector down: died after {took:.3f}s (bound {BOUND_S}s)")
