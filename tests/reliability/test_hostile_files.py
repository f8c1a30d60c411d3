"""The command line against hostile telemetry files and hostile run text, driven in subprocesses.

A telemetry file can come from anywhere (a replayed file, another writer, a writer killed mid-line),
and run names and exception messages are user text. So:

- ``otel-runtime traces`` skips a line that is JSON but not OTLP (``{"resourceSpans": 5}``, a timestamp
  that is not a number or does not fit ``fixed64``, brackets nested deeper than the parser goes), says
  how many it skipped, and draws the good runs; ``--follow`` does the same;
- ``run`` and ``traces`` print run names and exception messages escaped: a newline cannot fake a
  ``✓ flow ...`` line, and no ESC, OSC, CSI or carriage return reaches the terminal;
- a big file is streamed: the peak memory of ``traces`` does not grow with the file.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import resource
import secrets
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

RECORD = textwrap.dedent(
    """
    import sys
    from otel_runtime import configure, flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def good_one() -> int:
        return sum(double(i) for i in range(3))

    @flow
    def good_two() -> int:
        return double(21)

    configure()
    for name in sys.argv[1:]:
        globals()[name]()
    """
)

HOSTILE_RUNS = textwrap.dedent(
    """
    from otel_runtime import flow, task

    @task(task_run_name="sub\\r\\n  ✓ task forged · COMPLETED")
    def step() -> int:
        return 1

    @flow(flow_run_name="evil\\n✓ flow forged · fake-run · COMPLETED in 1 ms\\x1b]0;pwned\\x07\\x1b[2J")
    def evil() -> None:
        step()
        raise ValueError("boom\\r✓ flow forged-too · COMPLETED\\x1b[31m\\x9b2J\\u202e")
    """
)

CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e]")
"""What must never reach the terminal: C0 (but tab and newline), DEL, C1, line separators, bidi overrides."""


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.pop("NO_COLOR", None)
    env.update(extra or {})
    return env


def cli(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m otel_runtime.cli ARGUMENTS`` in ``cwd``, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "otel_runtime.cli", *arguments],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def record(folder: Path, *flows: str) -> Path:
    """Run the flows named in a real child process writing the default telemetry file; return the file."""
    (folder / "record.py").write_text(RECORD)
    subprocess.run([sys.executable, "record.py", *flows], cwd=folder, env=clean_env(), check=True, timeout=60)
    return folder / ".otel_runtime" / "telemetry.jsonl"


def span_lines(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if line.startswith('{"resourceSpans"')]


def with_fresh_trace_ids(line: str, shift_ns: int = 0) -> str:
    """The line with each trace id replaced by a new one and its times ``shift_ns`` later."""
    fresh: dict[str, str] = {}

    def trace_id(match: re.Match[str]) -> str:
        return f'"traceId":"{fresh.setdefault(match[1], secrets.token_hex(16))}"'

    def later(match: re.Match[str]) -> str:
        return f'"{match[1]}":"{int(match[2]) + shift_ns}"'

    line = re.sub(r'"traceId":"([0-9a-f]{32})"', trace_id, line)
    return re.sub(r'"((?:start|end)TimeUnixNano|timeUnixNano)":"(\d+)"', later, line)


def hostile_lines(good: str) -> list[str]:
    """Lines that are JSON but not OTLP, or not JSON at all; each one holds (or claims to hold) spans."""
    copy = with_fresh_trace_ids(good)
    nested_value = '{"stringValue":"x"}'
    for _ in range(3000):
        nested_value = '{"arrayValue":{"values":[' + nested_value + "]}}"
    return [
        '{"resourceSpans": 5}',
        '{"resourceSpans": [{"scopeSpans": [{"spans": [5]}]}]}',
        '{"resourceSpans": [{"scopeSpans": {"spans": "abc"}}]}',
        re.sub(r'"startTimeUnixNano":"\d+"', '"startTimeUnixNano":"yesterday"', copy, count=1),
        re.sub(r'"endTimeUnixNano":"\d+"', '"endTimeUnixNano":"1' + "0" * 30 + '"', copy, count=1),
        re.sub(r'"startTimeUnixNano":"\d+"', '"startTimeUnixNano":-5', copy, count=1),
        '{"resourceSpans": ' + "[" * 100_000 + "]" * 100_000 + "}",
        '{"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": [{"key": "k", "value": '
        + nested_value
        + "}]}]}]}]}",
        "[" * 200_000,
        copy[: len(copy) // 2],  # a writer killed mid-line
    ]


def assert_no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr


def test_traces_skips_lines_that_are_not_otlp_counts_them_and_draws_the_good_runs(tmp_path: Path) -> None:
    """Ten hostile lines between and after real runs: exit 0, no traceback, every good run and its task
    runs drawn, and one stderr line saying 10 lines were skipped."""
    path = record(tmp_path, "good_one", "good_two")
    good = span_lines(path)
    assert good
    hostile = hostile_lines(good[0])
    with path.open("a") as file:
        for line in hostile[:5]:
            file.write(line + "\n")
    record(tmp_path, "good_two")  # a good line between the hostile ones
    with path.open("a") as file:
        for line in hostile[5:]:
            file.write(line + "\n")

    result = cli("traces", cwd=tmp_path)
    assert_no_traceback(result)
    assert len(re.findall(r"^✓ flow good_one · ", result.stdout, re.M)) == 1
    assert len(re.findall(r"^✓ flow good_two · ", result.stdout, re.M)) == 2
    assert len(re.findall(r"── ✓ task double · ", result.stdout)) == 3 + 1 + 1
    assert f"skipped {len(hostile)} lines of " in result.stderr
    assert "not OTLP/JSON spans" in result.stderr


def test_traces_with_only_hostile_lines_says_no_runs(tmp_path: Path) -> None:
    """A file of hostile lines only: 'no flow runs recorded', the count of skipped lines, exit 0."""
    path = record(tmp_path, "good_one")
    hostile = hostile_lines(span_lines(path)[0])
    path.write_text("\n".join(hostile) + "\n")
    result = cli("traces", cwd=tmp_path)
    assert_no_traceback(result)
    assert result.stdout.startswith("no flow runs recorded in ")
    assert f"skipped {len(hostile)} lines" in result.stderr


def test_traces_follow_keeps_following_past_hostile_lines(tmp_path: Path) -> None:
    """``traces --follow`` (piped) reads hostile lines without dying and then shows a run that ends after
    them; Ctrl-C ends it with exit 0."""
    path = record(tmp_path, "good_one")
    follower = subprocess.Popen(
        [sys.executable, "-m", "otel_runtime.cli", "traces", "--follow"],
        cwd=tmp_path,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(1.0)  # let it read the file as it is; the hostile lines come while it follows
        with path.open("a") as file:
            for line in hostile_lines(span_lines(path)[0]):
                file.write(line + "\n")
        record(tmp_path, "good_two")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and follower.poll() is None:
            time.sleep(0.2)
            if "good_two" in path.read_text():  # written: give the follower two ticks to draw it
                time.sleep(1.5)
                break
        follower.send_signal(signal.SIGINT)
        stdout, stderr = follower.communicate(timeout=30)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert follower.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert re.search(r"✓ flow good_two · ", stdout), stdout


def test_run_and_traces_print_run_names_and_messages_escaped(tmp_path: Path) -> None:
    """A run name with a newline and OSC/CSI sequences, a task run name with CR LF, an exception message
    with CR, CSI, a C1 CSI and a bidi override: ``run`` and ``traces`` print every run on one line, with
    the characters escaped (``\\n``, ``\\x1b``), so no forged ``✓`` line and no escape sequence appears."""
    (tmp_path / "hostile.py").write_text(HOSTILE_RUNS)
    ran = cli("run", "hostile.py:evil", cwd=tmp_path)
    assert ran.returncode == 1
    drawn = cli("traces", cwd=tmp_path)
    assert_no_traceback(drawn)
    for output in (ran.stdout, ran.stderr, drawn.stdout, drawn.stderr):
        assert not CONTROL.search(output), repr(output)
        assert not re.search(r"^\s*(\S+ )?✓ (flow|task) forged", output, re.M), output
    for output in (ran.stdout, drawn.stdout):
        (line,) = [line for line in output.splitlines() if "✗ flow evil · " in line]
        assert "evil\\n✓ flow forged · fake-run · COMPLETED in 1 ms\\x1b]0;pwned\\x07\\x1b[2J" in line
        assert "FAILED in " in line
        assert "ValueError: boom\\r✓ flow forged-too · COMPLETED\\x1b[31m\\x9b2J\\u202e" in line
        (task_line,) = [line for line in output.splitlines() if "✓ task step · " in line]
        assert "sub\\r\\n  ✓ task forged · COMPLETED" in task_line


def test_traces_escapes_hostile_text_in_a_foreign_file(tmp_path: Path) -> None:
    """A foreign file whose service name, trace id and run attributes carry escape sequences: drawn with
    them escaped."""
    path = record(tmp_path, "good_two")
    line = span_lines(path)[0]
    record_ = json.loads(line)
    resource = record_["resourceSpans"][0]["resource"]["attributes"]
    resource.append({"key": "service.name", "value": {"stringValue": "svc\x1b]8;;http://evil\x07link"}})
    for span in record_["resourceSpans"][0]["scopeSpans"][0]["spans"]:
        for attribute in span["attributes"]:
            if attribute["key"] in ("flow_run.name", "task_run.name", "deployment.name"):
                attribute["value"] = {"stringValue": "x\n✓ flow forged\x1b[2J"}
    path.write_text(json.dumps(record_) + "\n")
    result = cli("traces", cwd=tmp_path)
    assert_no_traceback(result)
    assert not CONTROL.search(result.stdout), repr(result.stdout)
    assert not re.search(r"^\s*✓ flow forged", result.stdout, re.M)
    assert "x\\n✓ flow forged\\x1b[2J" in result.stdout
    assert "svc\\x1b]8;;http://evil\\x07link" in result.stdout


def peak_rss_mib(*arguments: str, cwd: Path) -> float:
    """Peak RSS of one ``otel-runtime traces`` run in a fresh interpreter (``wait4``), in MiB."""
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_runtime.cli", *arguments],
        cwd=cwd,
        env=clean_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    assert status == 0
    return usage.ru_maxrss / 1024 if sys.platform != "darwin" else usage.ru_maxrss / 2**20


@pytest.mark.skipif(not hasattr(os, "wait4") or not hasattr(resource, "getrusage"), reason="needs wait4")
def test_traces_streams_a_big_file_memory_bounded_by_what_is_shown(tmp_path: Path) -> None:
    """A 60 MB file of 2,000+ recorded flow runs costs ``traces`` no more memory than a file of one run,
    give or take 20 MiB (it streams the file; reading it whole took over 150 MiB more), and draws the
    last 10 runs."""
    path = record(tmp_path, "good_one")
    small = peak_rss_mib("traces", cwd=tmp_path)
    lines = [line + "\n" for line in span_lines(path)]
    big = tmp_path / "big.jsonl"
    with big.open("w") as file:
        for copy in itertools.count(1):
            if file.tell() > 60_000_000:
                break
            file.writelines(with_fresh_trace_ids(line, copy * 10**9) for line in lines)
    grown = peak_rss_mib("traces", "--file", str(big), cwd=tmp_path)
    assert grown - small < 20, (small, grown)
    result = cli("traces", "--file", str(big), cwd=tmp_path)
    assert_no_traceback(result)
    assert len(re.findall(r"^✓ flow good_one · ", result.stdout, re.M)) == 10
