"""Flow runs exported by configure() reach a real OTLP receiver on 127.0.0.1, over gRPC and over HTTP.

The receiver decodes what arrived; the tests check the span tree (tasks under their flow, a subflow under
its caller), the attributes of DESIGN section 3, the resource, and log records with their trace context.
Each test starts from no global provider, as a new process does, so configure() installs its own.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from opentelemetry import _logs
from opentelemetry._logs import SeverityNumber
from opentelemetry.semconv.attributes.code_attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from otel_runtime import Telemetry, configure, deployment, flow, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import FlatSpan
from otel_runtime.testing import OtlpReceiver, use_logger_provider, use_tracer_provider

PROTOCOLS = ["grpc", "http/protobuf"]
SPAN_KIND_INTERNAL = 1  # OTLP Span.SpanKind
STATUS_ERROR = 2  # OTLP Status.StatusCode

_attempts: dict[str, int] = {}


@task
def double(x: int) -> int:
    _logs.get_logger("pipeline").emit(
        body=f"doubling {x}", severity_number=SeverityNumber.INFO, severity_text="INFO", attributes={"x": x}
    )
    return 2 * x


@task(retries=1, tags=["flaky"])
def flaky(key: str) -> str:
    _attempts[key] = _attempts.get(key, 0) + 1
    if _attempts[key] == 1:
        raise ConnectionError("first attempt fails")
    return runtime.task_run.id or ""


@flow
def child(x: int) -> int:
    return double(x)


@flow(version="3", tags=["etl"])
def pipeline(n: int, key: str) -> dict[str, Any]:
    doubled = double(n)
    mapped = [future.result() for future in double.map([10, 20])]
    flaky_run = flaky(key)
    return {
        "result": child(doubled) + sum(mapped),
        "flow_run_id": runtime.flow_run.id,
        "flow_run_name": runtime.flow_run.name,
        "flaky_task_run_id": flaky_run,
    }


@flow
def broken() -> None:
    raise ValueError("boom")


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """One loopback OTLP receiver for the module."""
    with OtlpReceiver() as running:
        yield running


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, receiver: OtlpReceiver) -> None:
    """No OTEL_* variable from the outside; the receiver starts empty."""
    for name in list(os.environ):
        # conftest's switches for run events and metrics stay (test_run_* and test_metrics_* cover those)
        if name.startswith("OTEL_") and name not in ("OTEL_RUNTIME_RUN_EVENTS", "OTEL_METRICS_EXPORTER"):
            monkeypatch.delenv(name)
    receiver.clear()


@contextmanager
def exporting(receiver: OtlpReceiver, protocol: str, **options: Any) -> Iterator[Telemetry]:
    """configure() towards ``receiver`` in a process-like state with no providers; all shut down after."""
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    with use_tracer_provider(None), use_logger_provider(None):
        telemetry = configure(endpoint=endpoint, protocol=protocol, **options)
        try:
            yield telemetry
            assert telemetry.force_flush()
        finally:
            telemetry.shutdown()
            for provider in (telemetry.tracer_provider, telemetry.logger_provider):
                if provider is not None:
                    provider.shutdown()


def by_name(spans: list[FlatSpan]) -> dict[str, list[FlatSpan]]:
    grouped: dict[str, list[FlatSpan]] = {}
    for span in sorted(spans, key=lambda span: span["start_ns"]):
        grouped.setdefault(span["name"], []).append(span)
    return grouped


def run_pipeline(
    receiver: OtlpReceiver, protocol: str, key: str
) -> tuple[dict[str, Any], dict[str, list[FlatSpan]]]:
    with exporting(receiver, protocol, service_name="etl-service"), deployment("nightly", version="7"):
        outcome = pipeline(2, key)
    return outcome, by_name(receiver.wait_for_spans(7))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_flow_task_and_subflow_spans_arrive_as_one_tree(protocol: str, receiver: OtlpReceiver) -> None:
    """One trace: the flow span is the root, its task runs and its subflow are its children, and the
    subflow's task run is the subflow's child. Span names carry no run ids; every span is INTERNAL."""
    outcome, spans = run_pipeline(receiver, protocol, key=f"tree-{protocol}")
    assert outcome["result"] == 2 * 2 * 2 + 20 + 40
    flow_span = spans["flow pipeline"][0]
    child_span = spans["flow child"][0]
    doubles = spans["task double"]
    assert len(doubles) == 4
    assert set(spans) == {"flow pipeline", "flow child", "task double", "task flaky"}
    all_spans = [span for group in spans.values() for span in group]
    assert len(all_spans) == 7
    assert {span["trace_id"] for span in all_spans} == {flow_span["trace_id"]}
    assert flow_span["parent_span_id"] is None
    assert child_span["parent_span_id"] == flow_span["span_id"]
    in_child = [span for span in doubles if span["parent_span_id"] == child_span["span_id"]]
    in_flow = [span for span in doubles if span["parent_span_id"] == flow_span["span_id"]]
    assert (len(in_child), len(in_flow)) == (1, 3)
    assert spans["task flaky"][0]["parent_span_id"] == flow_span["span_id"]
    assert {span["kind"] for span in all_spans} == {SPAN_KIND_INTERNAL}
    for span in all_spans:
        assert span["name"].startswith((_keys.FLOW_SPAN_PREFIX, _keys.TASK_SPAN_PREFIX))
        assert outcome["flow_run_id"] not in span["name"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_spans_carry_the_attributes_of_design_section_3(protocol: str, receiver: OtlpReceiver) -> None:
    """Flow, subflow and task spans carry their run, deployment, parameter and code attributes; the
    retried task its run count and retry event."""
    outcome, spans = run_pipeline(receiver, protocol, key=f"attributes-{protocol}")
    flow_attributes = spans["flow pipeline"][0]["attributes"]
    flow_run_id = outcome["flow_run_id"]
    deployment_attributes = {
        _keys.DEPLOYMENT_NAME: "nightly",
        _keys.DEPLOYMENT_VERSION: "7",
        _keys.DEPLOYMENT_ID: flow_attributes[_keys.DEPLOYMENT_ID],
    }
    assert flow_attributes[_keys.DEPLOYMENT_ID]
    assert {key: flow_attributes.get(key) for key in (_keys.RUN_TYPE, *deployment_attributes)} == {
        _keys.RUN_TYPE: _keys.RUN_TYPE_FLOW,
        **deployment_attributes,
    }
    assert flow_attributes[_keys.FLOW_NAME] == "pipeline"
    assert flow_attributes[_keys.FLOW_VERSION] == "3"
    assert flow_attributes[_keys.FLOW_RUN_ID] == flow_run_id
    assert flow_attributes[_keys.FLOW_RUN_NAME] == outcome["flow_run_name"]
    assert flow_attributes[_keys.FLOW_RUN_TAGS] == ["etl"]
    assert flow_attributes[_keys.FLOW_RUN_RUN_COUNT] == 1
    assert flow_attributes[_keys.FLOW_RUN_ROOT_ID] == flow_run_id
    assert _keys.FLOW_RUN_PARENT_ID not in flow_attributes
    assert flow_attributes[_keys.FLOW_RUN_PARAMETER_PREFIX + "n"] == "2"
    assert flow_attributes[CODE_FUNCTION_NAME].endswith("pipeline")
    assert flow_attributes[CODE_FILE_PATH] == __file__
    assert isinstance(flow_attributes[CODE_LINE_NUMBER], int)

    child_attributes = spans["flow child"][0]["attributes"]
    assert child_attributes[_keys.FLOW_RUN_PARENT_ID] == flow_run_id
    assert child_attributes[_keys.FLOW_RUN_ROOT_ID] == flow_run_id
    assert child_attributes[_keys.FLOW_RUN_ID] != flow_run_id
    assert {key: child_attributes.get(key) for key in deployment_attributes} == deployment_attributes

    for span in spans["task double"]:
        attributes = span["attributes"]
        assert attributes[_keys.RUN_TYPE] == _keys.RUN_TYPE_TASK
        assert attributes[_keys.TASK_NAME] == "double"
        assert attributes[_keys.TASK_RUN_NAME].startswith("double-")
        assert attributes[_keys.TASK_RUN_ID]
        assert attributes[_keys.TASK_RUN_RUN_COUNT] == 1
        assert attributes[_keys.TASK_RUN_PARAMETER_PREFIX + "x"] in {"2", "4", "10", "20"}
        assert {key: attributes.get(key) for key in deployment_attributes} == deployment_attributes
    assert {span["attributes"][_keys.FLOW_RUN_ID] for span in spans["task double"]} == {
        flow_run_id,
        child_attributes[_keys.FLOW_RUN_ID],
    }

    flaky_span = spans["task flaky"][0]
    assert flaky_span["attributes"][_keys.TASK_RUN_ID] == outcome["flaky_task_run_id"]
    assert flaky_span["attributes"][_keys.TASK_RUN_RUN_COUNT] == 2
    assert flaky_span["attributes"][_keys.TASK_RUN_TAGS] == ["flaky"]
    assert [event["name"] for event in flaky_span["events"]] == ["exception", _keys.RETRY_EVENT]
    assert flaky_span["events"][1]["attributes"][_keys.RETRY_FAILED_ATTEMPT] == 1
    assert flaky_span["status_code"] != STATUS_ERROR


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_failed_flow_run_arrives_with_error_status_and_error_type(
    protocol: str, receiver: OtlpReceiver
) -> None:
    """The failure is on the wire: status ERROR "ValueError: boom", error.type and an exception event."""
    with exporting(receiver, protocol), pytest.raises(ValueError, match="boom"):
        broken()
    (span,) = receiver.wait_for_spans(1)
    assert (span["status_code"], span["status_message"]) == (STATUS_ERROR, "boom")
    assert span["attributes"][ERROR_TYPE] == "ValueError"
    assert [event["name"] for event in span["events"]] == ["exception"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_log_records_arrive_with_the_trace_context_of_their_run(
    protocol: str, receiver: OtlpReceiver
) -> None:
    """A log record emitted inside a task run reaches the collector with that span's trace and span ids,
    its body, severity and attributes, and the service's resource."""
    with exporting(receiver, protocol, service_name="etl-service", traces_exporter="otlp"):
        child(21)
    (span,) = [span for span in receiver.wait_for_spans(2) if span["name"] == "task double"]
    (log,) = receiver.wait_for_logs(1)
    assert (log["trace_id"], log["span_id"]) == (span["trace_id"], span["span_id"])
    assert (log["body"], log["severity_number"], log["severity_text"]) == ("doubling 21", 9, "INFO")
    assert log["attributes"]["x"] == 21
    assert log["resource"]["service.name"] == "etl-service"
    transport = "grpc" if protocol == "grpc" else "http"
    assert receiver.requests[f"{transport}/logs"] >= 1


@pytest.mark.parametrize(
    ("environment", "options", "expected"),
    [
        pytest.param({}, {}, {"service.name": "otel-runtime"}, id="default"),
        pytest.param(
            {
                "OTEL_SERVICE_NAME": "from-env",
                "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=staging,team=data",
            },
            {},
            {"service.name": "from-env", "deployment.environment": "staging", "team": "data"},
            id="variables",
        ),
        pytest.param(
            {"OTEL_RESOURCE_ATTRIBUTES": "service.name=from-attributes"},
            {},
            {"service.name": "from-attributes"},
            id="service-name-in-resource-attributes",
        ),
        pytest.param(
            {"OTEL_SERVICE_NAME": "from-env", "OTEL_RESOURCE_ATTRIBUTES": "team=data,region=eu"},
            {"service_name": "from-argument", "resource_attributes": {"team": "ml"}},
            {"service.name": "from-argument", "team": "ml", "region": "eu"},
            id="arguments-win",
        ),
    ],
)
def test_the_resource_names_the_service(
    environment: dict[str, str],
    options: dict[str, Any],
    expected: dict[str, str],
    receiver: OtlpReceiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Spans and logs carry service.name and attributes from configure(), OTEL_SERVICE_NAME and
    OTEL_RESOURCE_ATTRIBUTES (arguments over variables, OTEL_SERVICE_NAME over the attribute list),
    and otel-runtime when nothing names the service."""
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with exporting(receiver, "grpc", **options):
        child(1)
    spans = receiver.wait_for_spans(2)
    logs = receiver.wait_for_logs(1)
    for resource in [span["resource"] for span in spans] + [log["resource"] for log in logs]:
        assert {key: resource.get(key) for key in expected} == expected
        assert resource["telemetry.sdk.name"] == "opentelemetry"
