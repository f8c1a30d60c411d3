"""configure(): the standard OTEL_* variables, keyword arguments over them, calling it twice, an SDK provider
installed before, flushing at exit and a bounded shutdown when the endpoint is down."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import _logs

from otel_runtime import Telemetry, configure, flow, task
from otel_runtime._base.settings import settings as runtime_settings
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime.testing import CapturedSpans, OtlpReceiver, use_logger_provider, use_tracer_provider

Configure = Callable[..., Telemetry]


@task
def increment(value: int) -> int:
    return value + 1


@flow
def two_tasks(value: int) -> int:
    return increment(increment(value))


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """One loopback OTLP receiver (gRPC and HTTP) for the module."""
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, receiver: OtlpReceiver) -> None:
    """No OTEL_* variable from the outside, the working directory a fresh folder, the receiver empty."""
    for name in list(os.environ):
        # conftest's switches for run events and metrics stay (test_run_* and test_metrics_* cover those)
        if name.startswith("OTEL_") and name not in ("OTEL_RUNTIME_RUN_EVENTS", "OTEL_METRICS_EXPORTER"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    receiver.clear()


@pytest.fixture(autouse=True)
def fresh_logger_provider() -> Iterator[None]:
    """No global logger provider, as in a new process: configure() installs its own, shut down after."""
    with use_logger_provider(None):
        yield
        installed = _logs.get_logger_provider()
    shutdown = getattr(installed, "shutdown", None)
    if callable(shutdown):
        shutdown()


@pytest.fixture
def configured() -> Iterator[Configure]:
    """configure(), with everything it set up shut down after the test."""
    made: list[Telemetry] = []

    def call(**options: Any) -> Telemetry:
        telemetry = configure(**options)
        made.append(telemetry)
        return telemetry

    yield call
    for telemetry in reversed(made):
        telemetry.shutdown(timeout_millis=1_000)


def names(receiver: OtlpReceiver) -> list[str]:
    return sorted(span["name"] for span in receiver.spans())


# -- endpoints and protocols -------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_endpoint_argument_exports_spans_with_the_protocol(
    protocol: str, receiver: OtlpReceiver, configured: Configure
) -> None:
    """endpoint= and protocol= send every span of a run to the collector, over gRPC or OTLP/HTTP."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    telemetry = configured(endpoint=endpoint, protocol=protocol)
    assert telemetry.traces_exporters == ("otlp",)
    assert telemetry.logs_exporters == ("otlp",)
    two_tasks(1)
    assert telemetry.force_flush()
    assert names(receiver) == ["flow two_tasks", "task increment", "task increment"]
    transport = "grpc" if protocol == "grpc" else "http"
    assert set(receiver.requests) == {f"{transport}/traces"}


def test_generic_endpoint_variable_gets_the_signal_path_for_http(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_ENDPOINT is a base URL: over HTTP spans go to <base>/v1/traces."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.http_endpoint + "/")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    telemetry = configured()
    two_tasks(1)
    assert telemetry.force_flush()
    assert len(receiver.spans()) == 3  # the receiver only answers on /v1/traces


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_per_signal_endpoint_variable_wins_over_the_generic_one_and_is_used_as_is(
    protocol: str, receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_ENDPOINT beats OTEL_EXPORTER_OTLP_ENDPOINT, and gets no path added."""
    signal_endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint + "/v1/traces"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", signal_endpoint)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    telemetry = configured(logs_exporter="none")
    assert telemetry.traces_exporters == ("otlp",)
    two_tasks(1)
    assert telemetry.force_flush()
    assert len(receiver.spans()) == 3


def test_per_signal_endpoint_alone_makes_otlp_the_default_for_that_signal_only(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With only a traces endpoint, traces go over OTLP and logs to the local file."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.grpc_endpoint)
    telemetry = configured()
    assert (telemetry.traces_exporters, telemetry.logs_exporters) == (("otlp",), ("file",))


def test_per_signal_protocol_variables_choose_the_transport_of_each_signal(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_TRACES_PROTOCOL / _LOGS_PROTOCOL win over OTEL_EXPORTER_OTLP_PROTOCOL."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", receiver.http_endpoint + "/v1/traces")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", receiver.grpc_endpoint)
    telemetry = configured()
    two_tasks(1)
    assert telemetry.logger_provider is not None
    telemetry.logger_provider.get_logger("test").emit(body="over gRPC")
    assert telemetry.force_flush()
    assert set(receiver.requests) == {"http/traces", "grpc/logs"}


def test_endpoint_and_protocol_arguments_override_the_variables(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyword arguments win: endpoint= over OTEL_EXPORTER_OTLP_*ENDPOINT, protocol= over *_PROTOCOL."""
    down = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", down)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", down)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    telemetry = configured(endpoint=receiver.http_endpoint, protocol="http/protobuf", logs_exporter="none")
    two_tasks(1)
    assert telemetry.force_flush()
    assert receiver.requests == {"http/traces": 1}


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_headers_from_the_variable_and_the_argument_reach_the_collector(
    protocol: str, receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_EXPORTER_OTLP_HEADERS is sent; headers= is sent instead (names as gRPC wants, lowercase)."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=from-env")
    telemetry = configured(endpoint=endpoint, protocol=protocol, logs_exporter="none")
    two_tasks(1)
    assert telemetry.force_flush()
    assert receiver.request_headers()[-1]["x-tenant"] == "from-env"

    telemetry = configured(
        endpoint=endpoint, protocol=protocol, logs_exporter="none", headers={"X-Api-Key": "s3cret"}
    )
    two_tasks(1)
    assert telemetry.force_flush()
    assert receiver.request_headers()[-1]["x-api-key"] == "s3cret"


# -- exporter selection ------------------------------------------------------------------------------


def test_without_an_endpoint_both_signals_go_to_the_local_file(configured: Configure, tmp_path: Path) -> None:
    """The embedded default: spans (and logs) are appended to .otel_runtime/telemetry.jsonl here."""
    telemetry = configured()
    assert (telemetry.traces_exporters, telemetry.logs_exporters) == (("file",), ("file",))
    assert telemetry.telemetry_file == tmp_path / ".otel_runtime" / "telemetry.jsonl"
    two_tasks(1)
    assert telemetry.force_flush()
    spans = [span for record in read_records(telemetry.telemetry_file) for span in iter_spans(record)]
    assert sorted(span["name"] for span in spans) == ["flow two_tasks", "task increment", "task increment"]


def test_exporter_variables_choose_exporters_and_none_exports_nothing(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """OTEL_TRACES_EXPORTER=file,otlp uses both; OTEL_LOGS_EXPORTER=none none; the telemetry file moves
    with OTEL_RUNTIME_TELEMETRY_FILE."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "file, otlp")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_RUNTIME_TELEMETRY_FILE", str(tmp_path / "elsewhere.jsonl"))
    telemetry = configured()
    assert (telemetry.traces_exporters, telemetry.logs_exporters) == (("file", "otlp"), ())
    two_tasks(1)
    assert telemetry.force_flush()
    assert len(receiver.spans()) == 3
    assert len([line for line in (tmp_path / "elsewhere.jsonl").read_text().splitlines() if line]) >= 1

    telemetry = configured(traces_exporter="none", logs_exporter="console")
    assert (telemetry.traces_exporters, telemetry.logs_exporters, telemetry.telemetry_file) == (
        (),
        ("console",),
        None,
    )
    receiver.clear()
    two_tasks(1)
    assert telemetry.force_flush()
    assert receiver.spans() == []


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("OTEL_TRACES_EXPORTER", "statsd", "unknown traces exporter 'statsd' (from OTEL_TRACES_EXPORTER)"),
        ("OTEL_LOGS_EXPORTER", "otlp,bogus", "unknown logs exporter 'bogus' (from OTEL_LOGS_EXPORTER)"),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json", "must be 'grpc' or 'http/protobuf', got 'http/json'"),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon", "OTEL_EXPORTER_OTLP_TIMEOUT must be a positive number"),
    ],
)
def test_bad_configuration_raises_a_clear_error(
    variable: str, value: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable configure() cannot honour raises ValueError naming it, before anything is installed."""
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317")
    monkeypatch.setenv(variable, value)
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        configure()


def test_bad_arguments_raise_a_clear_error() -> None:
    """An endpoint that is not an http(s) URL, an unknown exporter or a non-positive timeout: ValueError."""
    with pytest.raises(ValueError, match="must be a URL such as http://localhost:4317, got 'localhost:4317'"):
        configure(endpoint="localhost:4317")
    with pytest.raises(ValueError, match=r"unknown traces exporter 'jaeger' \(from configure\(\)\)"):
        configure(traces_exporter="jaeger")
    with pytest.raises(ValueError, match="export_timeout must be a positive number of seconds"):
        configure(export_timeout=0)


def test_sdk_disabled_installs_nothing_and_stops_what_was_installed(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_SDK_DISABLED=true: no providers, no exporters, and an earlier configure() stops exporting."""
    configured(endpoint=receiver.grpc_endpoint)
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    telemetry = configured()
    assert telemetry == Telemetry(None, None, (), (), None)
    two_tasks(1)
    assert telemetry.force_flush()
    time.sleep(0.2)
    assert receiver.spans() == []
    assert configured(disabled=False, endpoint=receiver.grpc_endpoint).force_flush()  # the argument wins


@pytest.mark.parametrize(
    ("value", "disabled", "records_parameters"),
    [
        ("TRUE", True, True),
        ("False", False, False),
        ("1", False, True),
        ("yes", False, True),
        ("", False, True),
    ],
)
def test_boolean_variables_follow_the_opentelemetry_rule(
    value: str,
    disabled: bool,
    records_parameters: bool,
    configured: Configure,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OTEL_SDK_DISABLED and OTEL_RUNTIME_RECORD_PARAMETERS read ``true`` / ``false`` in any case; any
    other value (``1``, ``yes``, blank) leaves the default: enabled, parameters recorded."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", value)
    monkeypatch.setenv("OTEL_RUNTIME_RECORD_PARAMETERS", value)
    try:
        telemetry = configured(traces_exporter="none", logs_exporter="none")
        assert (telemetry.tracer_provider is None) is disabled
        assert runtime_settings.record_parameters is records_parameters
    finally:
        runtime_settings.record_parameters = True


# -- batch processor settings ------------------------------------------------------------------------


def test_batch_span_processor_follows_otel_bsp_variables(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_BSP_SCHEDULE_DELAY=50 exports without a flush within moments (the default waits 5 s), and
    OTEL_BSP_MAX_EXPORT_BATCH_SIZE=1 sends one span per request."""
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
    configured(endpoint=receiver.grpc_endpoint, logs_exporter="none")
    two_tasks(1)
    receiver.wait_for_spans(3, timeout=2)
    assert receiver.requests == {"grpc/traces": 3}


def test_batch_log_processor_follows_otel_blrp_variables(
    receiver: OtlpReceiver, configured: Configure, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OTEL_BLRP_SCHEDULE_DELAY=50 exports log records without a flush within moments."""
    monkeypatch.setenv("OTEL_BLRP_SCHEDULE_DELAY", "50")
    telemetry = configured(endpoint=receiver.http_endpoint, protocol="http/protobuf", traces_exporter="none")
    assert telemetry.logger_provider is not None
    telemetry.logger_provider.get_logger("test").emit(body="soon")
    assert [log["body"] for log in receiver.wait_for_logs(1, timeout=2)] == ["soon"]


# -- calling it again, and providers installed before ------------------------------------------------


def test_a_second_call_replaces_the_exporters_instead_of_adding_more(
    receiver: OtlpReceiver, configured: Configure, tmp_path: Path
) -> None:
    """Configured twice for the same endpoint, each span arrives once; a third call moving to the file
    stops OTLP export."""
    first = configured(endpoint=receiver.grpc_endpoint)
    second = configured(endpoint=receiver.grpc_endpoint)
    assert second.tracer_provider is first.tracer_provider
    two_tasks(1)
    assert second.force_flush()
    time.sleep(0.1)
    spans = receiver.spans()
    assert len(spans) == 3
    assert len({span["span_id"] for span in spans}) == 3

    third = configured(traces_exporter="file", telemetry_file=tmp_path / "after.jsonl")
    receiver.clear()
    two_tasks(1)
    assert third.force_flush()
    assert receiver.spans() == []
    assert (tmp_path / "after.jsonl").exists()


def test_an_sdk_tracer_provider_installed_before_is_kept_and_added_to(
    receiver: OtlpReceiver, configured: Configure, spans: CapturedSpans
) -> None:
    """The provider installed before (here the test's in-memory one) stays global, keeps its processors
    and resource, and also exports to the configured endpoint."""
    telemetry = configured(endpoint=receiver.grpc_endpoint, service_name="ignored-for-the-kept-provider")
    assert telemetry.tracer_provider is spans.provider
    two_tasks(1)
    assert telemetry.force_flush()
    assert len(spans.spans) == 3
    received = receiver.spans()
    assert len(received) == 3
    assert {span["resource"]["service.name"] for span in received} == {"otel-runtime-test"}


def test_an_sdk_logger_provider_installed_before_is_kept_and_added_to(
    receiver: OtlpReceiver, configured: Configure
) -> None:
    """A LoggerProvider set before configure() stays the global one, and its records reach the endpoint."""
    from opentelemetry.sdk._logs import LoggerProvider

    mine = LoggerProvider(shutdown_on_exit=False)
    with use_logger_provider(mine):
        telemetry = configured(endpoint=receiver.grpc_endpoint, traces_exporter="none")
        assert telemetry.logger_provider is mine
        _logs.get_logger("test").emit(body="kept")
        assert telemetry.force_flush()
    mine.shutdown()
    assert [log["body"] for log in receiver.logs()] == ["kept"]


# -- flush and shutdown ------------------------------------------------------------------------------


def test_force_flush_and_shutdown_return_in_time_when_the_endpoint_is_down(configured: Configure) -> None:
    """With nothing listening, force_flush(300) gives up (False) and shutdown(500) returns, each in
    about that time instead of the exporter's 10 s of retries."""
    telemetry = configured(endpoint=f"http://127.0.0.1:{closed_port()}")
    two_tasks(1)
    started = time.monotonic()
    assert telemetry.force_flush(300) is False
    flushed_in = time.monotonic() - started
    started = time.monotonic()
    telemetry.shutdown(timeout_millis=500)
    shut_down_in = time.monotonic() - started
    assert flushed_in < 1.5
    assert shut_down_in < 2.0


def test_shutdown_stops_only_this_configuration(receiver: OtlpReceiver, configured: Configure) -> None:
    """After Telemetry.shutdown() runs are no longer exported; the provider stays installed."""
    telemetry = configured(endpoint=receiver.grpc_endpoint)
    two_tasks(1)
    telemetry.shutdown()
    assert len(receiver.spans()) == 3  # flushed by the shutdown
    two_tasks(1)
    time.sleep(0.1)
    assert len(receiver.spans()) == 3


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from opentelemetry import _logs
    from otel_runtime import configure, flow, task

    @task
    def step(value: int) -> int:
        _logs.get_logger("exit-test").emit(body=f"step {value}")
        return value + 1

    @flow
    def child(value: int) -> int:
        return step(value)

    @flow
    def parent() -> int:
        return child(step(1))

    configure(endpoint=sys.argv[1], protocol=sys.argv[2])
    parent()
    print("done", flush=True)
    """
)


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_what_is_buffered_is_exported_at_process_exit(
    protocol: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A program that configures, runs a flow and exits without flushing still delivers its spans and logs."""
    script = tmp_path / "exits.py"
    script.write_text(EXIT_SCRIPT)
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    result = subprocess.run(
        [sys.executable, str(script), endpoint, protocol],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert names(receiver) == ["flow child", "flow parent", "task step", "task step"]
    assert sorted(log["body"] for log in receiver.logs()) == ["step 1", "step 2"]


def test_exit_is_bounded_when_the_endpoint_is_down(tmp_path: Path) -> None:
    """With the collector down, a program still exits promptly after its flow: within the 5 s exit
    timeout by default (not the exporters' 10 s per signal of retries), sooner with
    OTEL_EXPORTER_OTLP_TIMEOUT. The three programs run side by side."""
    script = tmp_path / "down.py"
    script.write_text(EXIT_SCRIPT)
    endpoint = f"http://127.0.0.1:{closed_port()}"
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    cases = {
        "grpc": (["grpc"], environment),
        "http/protobuf": (["http/protobuf"], environment),
        "grpc, OTEL_EXPORTER_OTLP_TIMEOUT=1": (["grpc"], {**environment, "OTEL_EXPORTER_OTLP_TIMEOUT": "1"}),
    }
    started = time.monotonic()
    running = {
        case: subprocess.Popen(
            [sys.executable, str(script), endpoint, *arguments],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for case, (arguments, env) in cases.items()
    }
    took: dict[str, float] = {}
    while len(took) < len(running) and time.monotonic() - started < 60:
        for case, process in running.items():
            if case not in took and process.poll() is not None:
                took[case] = time.monotonic() - started
        time.sleep(0.02)
    for process in running.values():
        stdout, stderr = process.communicate(timeout=5)
        assert process.returncode == 0, stderr
        assert stdout == "done\n"
    print(f"exit with the endpoint down took: { {case: round(t, 2) for case, t in took.items()} }")
    assert took["grpc"] < 9
    assert took["http/protobuf"] < 9
    assert took["grpc, OTEL_EXPORTER_OTLP_TIMEOUT=1"] < took["grpc"]


def test_with_no_provider_installed_configure_installs_its_own(
    configured: Configure, receiver: OtlpReceiver
) -> None:
    """With no tracer provider installed yet, configure() installs its own SDK provider globally."""
    from opentelemetry import trace

    with use_tracer_provider(None):
        telemetry = configured(endpoint=receiver.grpc_endpoint)
        assert trace.get_tracer_provider() is telemetry.tracer_provider
        two_tasks(1)
        assert telemetry.force_flush()
    assert telemetry.tracer_provider is not None
    telemetry.tracer_provider.shutdown()
    assert len(receiver.spans()) == 3
