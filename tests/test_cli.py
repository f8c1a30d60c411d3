"""The `otel-runtime` command, driven as a user drives it: subprocesses, exit codes and output.

`run` runs a flow from a file as a deployment run and prints task runs as they finish; `traces` draws
what was written to the telemetry file, which the tests read back to check the tree; `check` sends a
test span to a live receiver, and to a port where nothing listens.
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from opentelemetry import trace

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime._sdk.otlp_json import encode_spans
from otel_runtime._tools.otlp_read import FlatSpan, iter_spans, read_records
from otel_runtime.testing import CapturedSpans, OtlpReceiver

FLOWS = textwrap.dedent(
    """
    import asyncio
    from otel_runtime import flow, runtime, task

    attempts = {"n": 0}

    @task(retries=1)
    def add(a: int, b: int) -> int:
        return a + b

    @task(retries=1)
    def retried() -> int:
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("try again")
        return attempts["n"]

    @task
    def explode(message: str) -> None:
        raise ValueError(message)

    @flow
    def child(n: int) -> int:
        return add(n, 1)

    @flow(name="etl-flow")
    def etl(count: int, ratio: float = 0.5, verbose: bool = False, tables: list[str] | None = None,
            options: dict | None = None, label: str = "x") -> dict:
        total = add(count, 2)
        retried()
        print("seen:", repr({"count": count, "ratio": ratio, "verbose": verbose, "tables": tables,
                             "options": options, "label": label, "deployment": runtime.deployment.name,
                             "parameters": runtime.deployment.parameters}))
        return child(total)

    @flow
    def broken(message: str = "boom") -> None:
        add(1, 2)
        explode(message)

    @flow
    async def later(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    not_a_flow = 3
    """
)

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def cli(
    *arguments: str, cwd: Path, environment: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m otel_runtime.cli ARGUMENTS` in ``cwd``, with no OTEL_* variable from the outside."""
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("OTEL_") and key != "NO_COLOR"
    }
    env.update(environment or {})
    return subprocess.run(
        [sys.executable, "-m", "otel_runtime.cli", *arguments],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_one_line_error(
    result: subprocess.CompletedProcess[str], command: str, code: int, text: str
) -> None:
    assert result.returncode == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"otel-runtime {command}: error: "), lines[0]
    assert text in lines[0]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def written_spans(folder: Path) -> list[FlatSpan]:
    path = folder / ".otel_runtime" / "telemetry.jsonl"
    return [span for record in read_records(path) for span in iter_spans(record)]


@dataclass
class Recorded:
    """A folder where `otel-runtime run` ran etl-flow (as deployment nightly) and then broken."""

    folder: Path
    etl: subprocess.CompletedProcess[str]
    broken: subprocess.CompletedProcess[str]


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    """Two runs of the command in one folder, their telemetry in the default file there."""
    folder = tmp_path_factory.mktemp("project")
    (folder / "flows.py").write_text(FLOWS)
    etl = cli(
        "run", "flows.py:etl", "--deployment", "nightly", "--param", "count=3", "--param", "ratio=2.5",
        "--param", "verbose=yes", "--param", 'tables=["a", "b"]', "--param", 'options={"k": 1}',
        cwd=folder,
    )  # fmt: skip
    broken = cli("run", "flows.py:broken", "--param", "message=kaput", cwd=folder)
    return Recorded(folder, etl, broken)


# -- help ----------------------------------------------------------------------------------------------


OPTIONS = {
    "run": ["--deployment", "--param"],
    "traces": ["--file", "--last", "--flow-run"],
    "check": ["--endpoint"],
}


@pytest.mark.parametrize("command", ["", "demo", "run", "traces", "check"])
def test_help_explains_the_command_and_each_subcommand(command: str, tmp_path: Path) -> None:
    """`--help` of the command and of each subcommand prints its usage and options and exits 0."""
    result = cli(*command.split(), "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: otel-runtime {command}".rstrip())
    for option in OPTIONS.get(command, []):
        assert option in result.stdout


def test_the_console_script_is_installed(tmp_path: Path) -> None:
    """Installing the package puts an `otel-runtime` command next to the interpreter."""
    script = shutil.which("otel-runtime", path=str(Path(sys.executable).parent))
    if script is None:
        pytest.skip("otel-runtime is not installed as a distribution here")
    result = subprocess.run(
        [script, "--help"], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("usage: otel-runtime")


def test_no_subcommand_is_a_usage_error(tmp_path: Path) -> None:
    """Without a subcommand the command says what it expects and exits 2."""
    result = cli(cwd=tmp_path)
    assert result.returncode == 2
    assert "usage: otel-runtime" in result.stderr


# -- run -----------------------------------------------------------------------------------------------


def test_run_types_parameters_by_the_signature_and_runs_as_the_deployment(recorded: Recorded) -> None:
    """--param values become int, float, bool, list and dict as the flow's annotations say; the flow runs
    as a run of --deployment with those parameters; the command exits 0."""
    assert recorded.etl.returncode == 0, recorded.etl.stderr
    assert recorded.etl.stdout.startswith("running flow etl-flow as deployment nightly\n")
    (seen,) = re.findall(r"^seen: (.*)$", recorded.etl.stdout, re.MULTILINE)
    expected = {
        "count": 3,
        "ratio": 2.5,
        "verbose": True,
        "tables": ["a", "b"],
        "options": {"k": 1},
        "label": "x",
    }
    assert ast.literal_eval(seen) == {  # the repr of the plain data the flow saw
        **expected,
        "deployment": "nightly",
        "parameters": {key: value for key, value in expected.items() if key != "label"},
    }
    assert "result: 6\n" in recorded.etl.stdout


def test_run_prints_each_task_run_as_it_finishes_then_the_ids(recorded: Recorded) -> None:
    """Each task run and subflow run gets a line (mark, name, run name, status, duration, retries) as it
    finishes; at the end the flow run, its id and its trace id, all as written to the telemetry file."""
    spans = [
        s for s in written_spans(recorded.folder) if s["attributes"].get(_keys.DEPLOYMENT_NAME) == "nightly"
    ]
    flow_span = next(s for s in spans if s["name"] == "flow etl-flow")
    progress = [line.strip() for line in recorded.etl.stdout.splitlines() if line.startswith("  ")]
    finished = [s for s in spans if s is not flow_span]
    assert len(progress) == len(finished) == 4  # add, retried, child's add, child
    for span in sorted(finished, key=lambda s: s["end_ns"]):
        attributes = span["attributes"]
        run_name = attributes.get(_keys.TASK_RUN_NAME) or attributes[_keys.FLOW_RUN_NAME]
        (line,) = [line for line in progress if f" · {run_name} · " in line]
        assert re.fullmatch(
            rf"✓ {span['name']} · {run_name} · COMPLETED in [0-9.]+ (µs|ms|s)( · retried 1x)?", line
        )
        assert ("retried 1x" in line) == (attributes.get(_keys.TASK_RUN_RUN_COUNT) == 2)
    assert f"flow run id: {flow_span['attributes'][_keys.FLOW_RUN_ID]}\n" in recorded.etl.stdout
    assert f"trace id: {flow_span['trace_id']}\n" in recorded.etl.stdout
    assert str(recorded.folder / ".otel_runtime" / "telemetry.jsonl") in recorded.etl.stdout


def test_run_exits_non_zero_when_the_flow_run_fails(recorded: Recorded) -> None:
    """A failed flow run: the failed task run and flow run are marked, the traceback shows the user's code
    only, and the command exits 1."""
    result = recorded.broken
    assert result.returncode == 1
    assert re.search(
        r"^  ✗ task explode · explode-\w+ · FAILED in .*: ValueError: kaput$", result.stdout, re.M
    )
    assert re.search(r"^✗ flow broken · [\w-]+ · FAILED in .*: ValueError: kaput$", result.stdout, re.M)
    assert re.search(rf"^flow run id: {UUID}$", result.stdout, re.M)
    assert result.stderr.startswith("Traceback")
    assert 'flows.py", line' in result.stderr
    assert "otel_runtime" not in result.stderr
    assert result.stderr.strip().endswith("ValueError: kaput")


def test_run_drives_an_async_flow(tmp_path: Path) -> None:
    """An async flow is awaited to its end; the flow name can stand for the function name."""
    (tmp_path / "flows.py").write_text(FLOWS)
    result = cli("run", "flows.py:later", "--param", "n=21", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "result: 42\n" in result.stdout
    assert cli("run", "flows.py:etl-flow", "--param", "count=1", cwd=tmp_path).returncode == 0


def test_run_keeps_the_telemetry_set_up_of_a_file_that_configures_itself(tmp_path: Path) -> None:
    """A flow file that calls configure() when imported keeps its choice (service name, file); the
    command reports where that sent the telemetry."""
    (tmp_path / "own.py").write_text(
        textwrap.dedent(
            """
            from otel_runtime import configure, flow
            configure(service_name="own-service", telemetry_file="own.jsonl")

            @flow
            def hello() -> str:
                return "hi"
            """
        )
    )
    result = cli("run", "own.py:hello", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"telemetry written to {tmp_path / 'own.jsonl'}" in result.stdout
    (span,) = [span for record in read_records(tmp_path / "own.jsonl") for span in iter_spans(record)]
    assert (span["name"], span["resource"]["service.name"]) == ("flow hello", "own-service")
    assert not (tmp_path / ".otel_runtime").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["missing.py:etl"], "no such file: missing.py"),
        (["flows.py"], "expected path/to/file.py:flow_function, got 'flows.py'"),
        (["flows.py:nope"], "no flow 'nope' in flows.py; flows there: broken, child, etl, later"),
        (["flows.py:not_a_flow"], "'not_a_flow' in flows.py is not a flow"),
        (["flows.py:etl", "--param", "count"], "malformed --param 'count': expected key=value"),
        (["flows.py:etl", "--param", "count=three"], "--param count='three': count expects an integer"),
        (["flows.py:etl", "--param", "count=1", "--param", "verbose=maybe"], "verbose expects true or false"),
        (["flows.py:etl", "--param", "count=1", "--param", "tables=a,b"], "tables expects list[str] | None"),
        (
            ["flows.py:etl", "--param", "count=1", "--param", "colour=red"],
            "flow 'etl-flow' has no parameter 'colour'",
        ),
        (["flows.py:etl"], "flow 'etl-flow' needs --param count=..."),
    ],
)
def test_run_reports_command_line_mistakes_in_one_line(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    """A bad path, an unknown flow, a malformed or mistyped parameter: one line, no traceback, exit 2."""
    (tmp_path / "flows.py").write_text(FLOWS)
    assert_one_line_error(cli("run", *arguments, cwd=tmp_path), "run", 2, message)


# -- traces --------------------------------------------------------------------------------------------


def tree_lines(output: str) -> list[tuple[int, str]]:
    """(depth, run id) of each run line the command drew."""
    lines = []
    for line in output.splitlines():
        found = re.search(rf"· id ({UUID})$", line)
        if found:
            prefix = re.match(r"^((?:[│ ]   |[├└]── )*)", line)
            assert prefix is not None
            lines.append((len(prefix.group(1)) // 4, found.group(1)))
    return lines


def parents_drawn(output: str) -> dict[str, str | None]:
    """Each run id drawn, and the run id drawn as its parent (None for a root)."""
    parents: dict[str, str | None] = {}
    stack: list[str] = []
    for depth, run_id in tree_lines(output):
        del stack[depth:]
        parents[run_id] = stack[-1] if stack else None
        stack.append(run_id)
    return parents


def run_id(span: FlatSpan) -> str:
    attributes = span["attributes"]
    key = _keys.FLOW_RUN_ID if attributes[_keys.RUN_TYPE] == _keys.RUN_TYPE_FLOW else _keys.TASK_RUN_ID
    return str(attributes[key])


def parents_written(spans: list[FlatSpan]) -> dict[str, str | None]:
    """Each run id in the file, and the run id of its parent span (None for a root)."""
    by_span_id = {span["span_id"]: span for span in spans}
    return {
        run_id(span): run_id(by_span_id[span["parent_span_id"]]) if span["parent_span_id"] else None
        for span in spans
    }


def test_traces_draws_the_written_runs_as_trees(recorded: Recorded) -> None:
    """Every flow, subflow and task run written is drawn once, nested under its parent run, with its name,
    status, deployment and ids; failures and retries stand out in words, not colours, off a terminal."""
    result = cli("traces", cwd=recorded.folder)
    assert result.returncode == 0, result.stderr
    spans = written_spans(recorded.folder)
    assert parents_drawn(result.stdout) == parents_written(spans)
    assert "\x1b[" not in result.stdout
    for span in spans:
        attributes = span["attributes"]
        (line,) = [line for line in result.stdout.splitlines() if line.endswith(f"id {run_id(span)}")]
        assert span["name"] in line
        assert (attributes.get(_keys.TASK_RUN_NAME) or attributes[_keys.FLOW_RUN_NAME]) in line
        failed = span["status_code"] == 2
        assert ("✗" in line and "FAILED" in line and "ValueError: kaput" in line) == failed
        assert ("retried 1x" in line) == (attributes.get(_keys.TASK_RUN_RUN_COUNT) == 2)
    roots = [span for span in spans if span["parent_span_id"] is None]
    for root in roots:
        assert f"trace {root['trace_id']} · started " in result.stdout
    assert re.search(r"^✓ flow etl-flow · .* · deployment nightly · id ", result.stdout, re.M)


def test_traces_skips_other_spans_counts_replayed_lines_once_and_shows_orphans(
    spans: CapturedSpans, tmp_path: Path
) -> None:
    """A task run under a span of other instrumentation is drawn under its flow run; a file holding the
    same spans twice (replayed) draws each run once; a task run whose flow span was never written (a
    flow still running) is drawn as a root of its own."""

    @task
    def inner() -> None:
        pass

    @flow
    def outer() -> None:
        with trace.get_tracer("custom").start_as_current_span("custom work"):
            inner()

    outer()
    first = list(spans.spans)
    spans.clear()
    outer()
    second = [span for span in spans.spans if span.name != "flow outer"]
    path = tmp_path / "telemetry.jsonl"
    path.write_text("\n".join([encode_spans(first), encode_spans(first), encode_spans(second)]) + "\n")

    result = cli("traces", "--file", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    flat = [span for record in read_records(path) for span in iter_spans(record)]
    runs = {run_id(span): span for span in flat if _keys.RUN_TYPE in span["attributes"]}
    (outer_id,) = [key for key, span in runs.items() if span["name"] == "flow outer"]
    inner_ids = sorted(
        (key for key, span in runs.items() if span["name"] == "task inner"), key=lambda k: runs[k]["start_ns"]
    )
    assert parents_drawn(result.stdout) == {outer_id: None, inner_ids[0]: outer_id, inner_ids[1]: None}
    assert len(tree_lines(result.stdout)) == 3
    assert "custom work" not in result.stdout


def test_traces_last_and_flow_run_select_what_is_drawn(recorded: Recorded) -> None:
    """--last 1 draws the latest flow run only; --flow-run draws the one run (any depth) whose id starts
    with the given characters, and its children."""
    spans = written_spans(recorded.folder)
    broken_id = next(run_id(s) for s in spans if s["name"] == "flow broken")
    child_span = next(s for s in spans if s["name"] == "flow child")

    last = cli("traces", "--last", "1", cwd=recorded.folder)
    assert last.returncode == 0
    assert parents_drawn(last.stdout)[broken_id] is None
    assert "etl-flow" not in last.stdout
    assert "(the last 1 run of 2 traces" in last.stdout

    child = cli("traces", "--flow-run", run_id(child_span)[:8], cwd=recorded.folder)
    assert child.returncode == 0
    (add_id,) = [run_id(s) for s in spans if s["parent_span_id"] == child_span["span_id"]]
    assert parents_drawn(child.stdout) == {run_id(child_span): None, add_id: run_id(child_span)}


def test_traces_highlights_failures_in_red_on_a_terminal(recorded: Recorded) -> None:
    """On a terminal, a failed run's status is red; NO_COLOR turns colours off."""
    pty = pytest.importorskip("pty")

    def on_a_terminal(environment: Mapping[str, str]) -> str:
        leader, follower = pty.openpty()
        env = {key: value for key, value in os.environ.items() if key != "NO_COLOR"} | dict(environment)
        process = subprocess.Popen(
            [sys.executable, "-m", "otel_runtime.cli", "traces"], cwd=recorded.folder, env=env,
            stdout=follower, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not chunk:
                break
            chunks.append(chunk)
        os.close(leader)
        assert process.wait(timeout=60) == 0
        return b"".join(chunks).decode()

    coloured = on_a_terminal({})
    assert re.search(r"\x1b\[31mFAILED in [^\x1b]*ValueError: kaput\x1b\[0m", coloured)
    assert "\x1b[" not in on_a_terminal({"NO_COLOR": "1"})


def test_traces_reports_a_missing_file_or_run_in_one_line(recorded: Recorded, tmp_path: Path) -> None:
    """No telemetry file, or no such flow run: one line, no traceback, exit 1."""
    assert_one_line_error(cli("traces", cwd=tmp_path), "traces", 1, "no telemetry file at .otel_runtime")
    missing = cli("traces", "--file", str(tmp_path / "none.jsonl"), cwd=tmp_path)
    assert_one_line_error(missing, "traces", 1, "none.jsonl: pass --file")
    unknown = cli("traces", "--flow-run", "ffffffff", cwd=recorded.folder)
    assert_one_line_error(unknown, "traces", 1, "no flow run 'ffffffff'")


def test_traces_reads_the_file_the_variable_names(recorded: Recorded, tmp_path: Path) -> None:
    """OTEL_RUNTIME_TELEMETRY_FILE points `traces` (like configure()) at another file."""
    path = recorded.folder / ".otel_runtime" / "telemetry.jsonl"
    result = cli("traces", cwd=tmp_path, environment={"OTEL_RUNTIME_TELEMETRY_FILE": str(path)})
    assert result.returncode == 0
    assert parents_drawn(result.stdout) == parents_written(written_spans(recorded.folder))


# -- check ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """One loopback OTLP receiver for the module."""
    with OtlpReceiver() as running:
        yield running


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_check_says_the_endpoint_accepted_the_test_span(
    protocol: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """`check --endpoint` sends one span; it arrives, and the command says so, how fast, and exits 0."""
    receiver.clear()
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    result = cli("check", "--endpoint", endpoint, "--protocol", protocol, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    shown = endpoint if protocol == "grpc" else endpoint + "/v1/traces"
    said = rf"OK: {re.escape(shown)} \({protocol}\) accepted a test span in (\d+) ms"
    found = re.fullmatch(rf"{said} \(trace id ([0-9a-f]{{32}})\)\n", result.stdout)
    assert found is not None, result.stdout
    (span,) = receiver.spans()
    assert span["trace_id"] == found.group(2)
    assert span["resource"]["service.name"] == "otel-runtime"


def test_check_uses_the_configured_endpoint_variables(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """Without --endpoint, `check` sends to OTEL_EXPORTER_OTLP_ENDPOINT with OTEL_EXPORTER_OTLP_PROTOCOL."""
    receiver.clear()
    environment = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.http_endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }
    result = cli("check", cwd=tmp_path, environment=environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"OK: {receiver.http_endpoint}/v1/traces (http/protobuf) accepted")
    assert len(receiver.spans()) == 1


def test_check_reports_a_rejected_span(receiver: OtlpReceiver, tmp_path: Path) -> None:
    """A collector that refuses the span: one line with its answer, exit 1."""
    receiver.fail(times=1, grpc_code=grpc.StatusCode.PERMISSION_DENIED, http_status=403)
    result = cli("check", "--endpoint", receiver.grpc_endpoint, cwd=tmp_path)
    assert_one_line_error(result, "check", 1, "did not accept the test span")
    assert "PERMISSION_DENIED" in result.stderr


def test_check_reports_an_unreachable_endpoint_quickly(tmp_path: Path) -> None:
    """Nothing listening: one line saying so (connection refused), no traceback, exit 1, within the
    3 s default timeout. Both protocols are checked side by side."""
    endpoint = f"http://127.0.0.1:{closed_port()}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    started = time.monotonic()
    command = [sys.executable, "-m", "otel_runtime.cli", "check", "--endpoint", endpoint, "--protocol"]
    running = {
        protocol: subprocess.Popen(
            [*command, protocol],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for protocol in ("grpc", "http/protobuf")
    }
    for process in running.values():
        stdout, stderr = process.communicate(timeout=60)
        result = subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
        assert_one_line_error(result, "check", 1, "did not accept the test span, after ")
        assert "refused" in stderr.lower()
    assert time.monotonic() - started < 6


def test_check_without_an_endpoint_says_what_to_pass(tmp_path: Path) -> None:
    """No --endpoint and no OTEL_EXPORTER_OTLP_*ENDPOINT: one line naming both, exit 2; a malformed
    endpoint likewise."""
    assert_one_line_error(
        cli("check", cwd=tmp_path), "check", 2, "pass --endpoint URL or set OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    malformed = cli("check", "--endpoint", "localhost:4317", cwd=tmp_path)
    assert_one_line_error(malformed, "check", 2, "must be a URL such as http://localhost:4317")
