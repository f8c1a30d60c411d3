"""Real ``os.fork()`` children of a process whose export thread is inside a real OTLP/gRPC call.

The parent configures OTLP/gRPC export to a loopback ``OtlpReceiver`` that holds its first export 2 s,
so the parent's export thread is inside a gRPC call when it forks 30 children; the receiver then answers
at once again. Each child runs a flow (or not) and exits normally, through its exit hooks. The test
counts the children that have not exited within the shutdown bound and a margin, their exit codes, and
the spans at the receiver.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime.testing import OtlpReceiver

CHILDREN = 30
BOUND_S = 2.0
"""The shutdown bound of every process (``OTEL_EXPORTER_OTLP_TIMEOUT``)."""
HUNG_AFTER_S = BOUND_S + 6.0
"""A child that has not exited this long after the last fork is counted hung (and killed)."""

SCRIPT = """
import os, sys, time
import otel_runtime
from otel_runtime import configure, flow

@flow
def job() -> int:
    return 1

configure(endpoint=sys.argv[1], logs_exporter="none", metrics_exporter="none")
job()
time.sleep(0.3)  # the export thread is inside the held gRPC call now
print("in flight", flush=True)
sys.stdin.readline()
children = []
for _ in range(int(sys.argv[2])):
    pid = os.fork()
    if pid == 0:
        if sys.argv[3] == "run":
            job()
        sys.exit(0)  # a normal exit: the exit hooks run
    children.append(pid)
deadline = time.monotonic() + float(sys.argv[4])
pending, codes = set(children), []
while pending and time.monotonic() < deadline:
    for pid in list(pending):
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            pending.discard(pid)
            codes.append(os.waitstatus_to_exitcode(status))
    time.sleep(0.02)
for pid in pending:
    os.kill(pid, 9)
    os.waitpid(pid, 0)
print(f"hung {len(pending)} codes {sorted(set(codes))}", flush=True)
"""


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


def fork_children(tmp_path: Path, receiver: OtlpReceiver, mode: str, fork_support: str | None) -> str:
    """Run the script; its last line (``hung N codes [...]``)."""
    script = tmp_path / "forks.py"
    script.write_text(SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "GRPC_"))}
    environment |= {"OTEL_BSP_SCHEDULE_DELAY": "50", "OTEL_EXPORTER_OTLP_TIMEOUT": str(BOUND_S)}
    if fork_support is not None:
        environment["GRPC_ENABLE_FORK_SUPPORT"] = fork_support
    receiver.delay(2.0)
    parent = subprocess.Popen(
        [sys.executable, str(script), receiver.grpc_endpoint, str(CHILDREN), mode, str(HUNG_AFTER_S)],
        env=environment,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert parent.stdout is not None and parent.stdout.readline() == "in flight\n"
        receiver.delay(0)  # the parent's call stays held; the children's are answered at once
        out, err = parent.communicate("go\n", timeout=120)
    finally:
        parent.kill()
        parent.communicate()
    assert parent.returncode == 0, err
    return out.strip().splitlines()[-1]


@pytest.mark.parametrize("mode", ["run", "exit"])
def test_forked_children_of_a_process_inside_a_grpc_call_exit_and_export_their_runs(
    mode: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """With gRPC's default fork handling, none of 30 children hangs at exit, each exits 0, and each
    child's flow run reaches the collector through a connection of its own (the parent's inherited one
    is never touched in the child)."""
    started = time.monotonic()
    last = fork_children(tmp_path, receiver, mode, None)
    took = time.monotonic() - started
    assert last == "hung 0 codes [0]"
    expected = 1 + (CHILDREN if mode == "run" else 0)
    assert len(receiver.wait_for_spans(expected, timeout=10)) == expected
    print(f"[{mode}] {CHILDREN} children: {last}, {len(receiver.spans())} spans, {took:.1f}s in all")


def test_with_grpc_fork_support_off_children_drop_counted_and_do_not_crash(
    receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """``GRPC_ENABLE_FORK_SUPPORT=0``: a new gRPC channel in a forked child crashes it (SIGSEGV/SIGABRT),
    so is the inherited one; the children make neither, count their span dropped and exit 0."""
    last = fork_children(tmp_path, receiver, "run", "0")
    assert last == "hung 0 codes [0]"
    time.sleep(0.5)
    assert len(receiver.spans()) == 1  # the parent's
