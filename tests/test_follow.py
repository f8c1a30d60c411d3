"""The live run tree: runs appear as they start, end with their state, and a killed run shows as lost."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime import configure, flow, task
from otel_runtime._sdk.configure import Telemetry
from otel_runtime._tools.follow import Follower, follow, process_alive
from otel_runtime._tools.tree import Style
from otel_runtime.testing import use_logger_provider

PLAIN = Style(color=False, unicode=True)


@pytest.fixture
def telemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Telemetry]:
    """configure() writing spans and logs (run events on) to a file in the test's folder."""
    monkeypatch.delenv("OTEL_RUNTIME_RUN_EVENTS")
    with use_logger_provider(None):
        configured = configure(
            telemetry_file=tmp_path / "telemetry.jsonl", traces_exporter="file", logs_exporter="file"
        )
        try:
            yield configured
        finally:
            configured.shutdown()


@task
def step() -> int:
    return 1


def test_a_running_flow_shows_with_its_elapsed_time_then_with_its_state(telemetry: Telemetry) -> None:
    """Mid-run, the follower has the flow as RUNNING (with the finished task under it); after, COMPLETED."""
    assert telemetry.telemetry_file is not None
    follower = Follower(telemetry.telemetry_file)
    during: list[str] = []
    changes_during: list[tuple[str, str]] = []

    @flow(flow_run_name="watched-run")
    def watched() -> None:
        step()
        telemetry.force_flush()
        changes_during.extend((c.what, c.run.name) for c in follower.poll())
        during.extend(follower.render(PLAIN))

    watched()
    telemetry.force_flush()
    after = [(c.what, c.run.name) for c in follower.poll()]
    # The span batch is written before the log batch: the task's span is read before its start event.
    assert sorted(changes_during) == [("ended", "step"), ("started", "watched")]
    assert "▶ flow watched · watched-run · RUNNING for" in during[1]
    assert during[2].startswith("└── ✓ task step")
    assert after == [("ended", "watched")]
    assert "✓ flow watched · watched-run · COMPLETED in" in follower.render(PLAIN)[1]


def test_only_complete_lines_are_read_and_a_rotation_loses_nothing(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    """A half-written line waits for its end; lines written before a rotation to .1 are still read."""
    path = tmp_path / "copy.jsonl"
    assert telemetry.telemetry_file is not None
    step()
    telemetry.force_flush()
    lines = telemetry.telemetry_file.read_bytes().splitlines(keepends=True)
    follower = Follower(path)
    path.write_bytes(lines[0][:10])
    assert follower.poll() == []
    with path.open("ab") as file:
        file.write(lines[0][10:])
    first = [c.what for c in follower.poll()]
    with path.open("ab") as file:
        file.write(b"".join(lines[1:]))
    os.replace(path, tmp_path / "copy.jsonl.1")
    path.write_bytes(b"")
    follower.poll()
    assert first == ["ended"]  # the span line
    (run,) = follower.runs.values()
    assert run.pid == os.getpid()  # from the start event, in a line read after the rotation


SLEEPER = """
import time
from otel_runtime import configure, flow
@flow(flow_run_name="doomed")
def sleeper() -> None:
    time.sleep(60)
configure()
sleeper()
"""


def test_a_flow_killed_mid_run_shows_as_running_then_lost(tmp_path: Path) -> None:
    """A flow whose process is SIGKILLed never ends: the follower shows it running, then LOST."""
    script = tmp_path / "sleeper.py"
    script.write_text(SLEEPER)
    telemetry = tmp_path / "telemetry.jsonl"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment |= {"OTEL_RUNTIME_TELEMETRY_FILE": str(telemetry), "OTEL_BLRP_SCHEDULE_DELAY": "100"}
    process = subprocess.Popen([sys.executable, str(script)], env=environment, cwd=tmp_path)
    follower = Follower(telemetry)
    try:
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while "started" not in seen and time.monotonic() < deadline:
            seen += [change.what for change in follower.poll()]
            time.sleep(0.05)
        assert seen == ["started"]
        assert "RUNNING for" in follower.render(PLAIN)[1]
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert not process_alive(process.pid)
    assert [(c.what, c.run.run_name) for c in follower.poll()] == [("lost", "doomed")]
    line = follower.render(PLAIN)[1]
    assert line.startswith("? flow sleeper · doomed · LOST after")
    assert f"process {process.pid} is gone" in line
    assert follower.poll() == []  # said once


def test_a_run_of_a_process_on_another_host_is_not_declared_lost(
    tmp_path: Path, telemetry: Telemetry
) -> None:
    """Only processes of this host can be checked: a run started elsewhere stays running."""
    assert telemetry.telemetry_file is not None
    follower = Follower(telemetry.telemetry_file, host="another-host", alive=lambda pid: False)

    @flow
    def elsewhere() -> None:
        telemetry.force_flush()
        assert [c.what for c in follower.poll()] == ["started"]

    elsewhere()
    assert follower.runs


class _Output(io.StringIO):
    """A stream another thread writes to while the test reads it."""


def _follow_while(path: Path, work: object, *, terminal: bool) -> str:
    out = _Output()
    running = threading.Event()
    running.set()
    thread = threading.Thread(
        target=follow,
        args=(path, out, PLAIN),
        kwargs={"terminal": terminal, "interval": 0.05, "keep_going": running.is_set},
    )
    thread.start()
    try:
        work()  # type: ignore[operator]
    finally:
        running.clear()
        thread.join(10)
    return out.getvalue()


def test_piped_follow_appends_one_line_per_start_and_end(telemetry: Telemetry) -> None:
    """Piped, each run that starts and ends adds a line: started, then its outcome, with a clock time."""
    assert telemetry.telemetry_file is not None

    @flow(flow_run_name="piped-run")
    def piped() -> None:
        telemetry.force_flush()
        time.sleep(0.3)

    def work() -> None:
        piped()
        telemetry.force_flush()
        time.sleep(0.3)

    lines = _follow_while(telemetry.telemetry_file, work, terminal=False).splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("▶ flow piped · piped-run · started · id " + lines[0].rsplit("id ", 1)[1])
    assert "✓ flow piped · piped-run · COMPLETED in" in lines[1]
    assert "\033[" not in "".join(lines)


def test_terminal_follow_redraws_the_tree_in_place(telemetry: Telemetry) -> None:
    """On a terminal, the tree is redrawn: cursor up and clear, then the runs with their elapsed time."""
    assert telemetry.telemetry_file is not None

    @flow
    def drawn() -> None:
        telemetry.force_flush()
        time.sleep(0.3)

    output = _follow_while(telemetry.telemetry_file, drawn, terminal=True)
    assert "\033[J" in output
    assert "\033[2F" in output  # up over the two lines drawn before: header and run
    assert "▶ flow drawn" in output


def test_the_traces_command_follows_the_file_until_interrupted(tmp_path: Path, telemetry: Telemetry) -> None:
    """`otel-runtime traces --follow`, piped: a line when a flow starts, one when it ends; Ctrl-C exits 0."""
    assert telemetry.telemetry_file is not None
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    command = [
        sys.executable,
        "-m",
        "otel_runtime.cli",
        "traces",
        "--follow",
        "--file",
        str(telemetry.telemetry_file),
    ]
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    lines: list[str] = []
    try:
        time.sleep(1.0)  # the command is up and has read the (empty) file

        @flow(flow_run_name="followed-run")
        def followed() -> None:
            telemetry.force_flush()
            time.sleep(1.0)

        followed()
        telemetry.force_flush()
        time.sleep(1.5)
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=10)
    lines = out.splitlines()
    assert process.returncode == 0, err
    assert any("▶ flow followed · followed-run · started" in line for line in lines), out
    assert any("✓ flow followed · followed-run · COMPLETED in" in line for line in lines), out
