"""otel_runtime's own propagation functions put spec-correct W3C baggage on the wire (a space is
``%20``, a ``+`` is ``%2B``) whatever the global propagators are, with or without ``configure()``, with
the SDK disabled, and under ``opentelemetry-instrument``; ``OTEL_PROPAGATORS`` still chooses the other
formats, here the real B3 and Jaeger propagators (opentelemetry-propagator-b3 / -jaeger). Each case is
a new Python process, so the global propagators are built from the environment as a user's are."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

INSTRUMENT = Path(sys.executable).with_name("opentelemetry-instrument")
NAME = "Nightly ETL + reports/été"

CALLER = textwrap.dedent(
    f"""
    import json, sys
    import otel_runtime
    from otel_runtime import deployment, flow, propagation

    if sys.argv[1] == "own-sdk":  # a user who sets OpenTelemetry up themselves, without configure()
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        trace.set_tracer_provider(TracerProvider())
    elif sys.argv[1] != "none":
        otel_runtime.configure(traces_exporter=sys.argv[1], logs_exporter="none")
        otel_runtime.configure(traces_exporter=sys.argv[1], logs_exporter="none")

    @flow
    def caller() -> dict:
        return propagation.inject()

    with deployment({NAME!r}):
        print(json.dumps(caller()))
    """
)

WORKER = textwrap.dedent(
    """
    import json, sys
    from otel_runtime import flow, propagation, runtime
    from opentelemetry import trace

    @flow
    def worker() -> dict:
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        return {"deployment": runtime.deployment.name, "trace_id": trace_id}

    from opentelemetry.sdk.trace import TracerProvider
    trace.set_tracer_provider(TracerProvider())
    with propagation.attach(json.loads(sys.argv[1])):
        print(json.dumps(worker()))
    """
)


def run(tmp_path: Path, script: str, *arguments: str, instrument: bool = False, **environment: str) -> Any:
    """Run ``script`` in a new process with only ``environment`` of the OTEL_* variables; its JSON line."""
    (tmp_path / "script.py").write_text(script)
    environ = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    environ |= {"OTEL_METRICS_EXPORTER": "none", "OTEL_RUNTIME_RUN_EVENTS": "false", **environment}
    command = [sys.executable, "script.py", *arguments]
    if instrument:
        command = [str(INSTRUMENT), *command]
    result = subprocess.run(
        command, cwd=tmp_path, env=environ, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", result.stderr  # no warning from the SDK or from us
    return json.loads(result.stdout.strip().splitlines()[-1])


def baggage_entries(header: str) -> dict[str, str]:
    """The W3C reading of a baggage header: percent-decoding only (a raw ``+`` is a ``+``)."""
    return {key: unquote(value) for key, _, value in (member.partition("=") for member in header.split(","))}


@pytest.mark.parametrize(
    ("setup", "environment"),
    [
        ("none", {}),  # no OpenTelemetry set-up at all: the API's default propagators
        ("own-sdk", {"OTEL_PROPAGATORS": "tracecontext,baggage"}),
        ("file", {}),
        ("file", {"OTEL_SDK_DISABLED": "true"}),
    ],
    ids=["nothing-set-up", "own-sdk-set-up", "configure", "sdk-disabled"],
)
def test_baggage_is_percent_encoded_whatever_sets_up_opentelemetry(
    setup: str, environment: dict[str, str], tmp_path: Path
) -> None:
    """inject() writes ``deployment.name=Nightly%20ETL%20%2B%20reports%2F%C3%A9t%C3%A9``: a W3C receiver
    reads the name back exactly."""
    carrier = run(tmp_path, CALLER, setup, **environment)
    assert "deployment.name=Nightly%20ETL%20%2B%20reports" in carrier["baggage"]
    assert "+" not in carrier["baggage"]
    assert baggage_entries(carrier["baggage"])["deployment.name"] == NAME


def test_b3_and_jaeger_from_otel_propagators_are_still_written_and_read(tmp_path: Path) -> None:
    """OTEL_PROPAGATORS=tracecontext,baggage,b3multi,jaeger: the carrier has B3 and Jaeger headers for
    the same trace beside spec-correct baggage; a worker whose OTEL_PROPAGATORS is b3multi,baggage joins
    the trace from the B3 headers alone and reads the deployment name exactly."""
    propagators = "tracecontext,baggage,b3multi,jaeger"
    carrier = run(tmp_path, CALLER, "own-sdk", OTEL_PROPAGATORS=propagators)
    trace_id = carrier["traceparent"].split("-")[1]
    assert carrier["x-b3-traceid"] == trace_id
    assert carrier["uber-trace-id"].split(":")[0].rjust(32, "0") == trace_id
    assert baggage_entries(carrier["baggage"])["deployment.name"] == NAME

    b3_only = {key: value for key, value in carrier.items() if key.startswith("x-b3-") or key == "baggage"}
    seen = run(tmp_path, WORKER, json.dumps(b3_only), OTEL_PROPAGATORS="b3multi,baggage")
    assert seen == {"deployment": NAME, "trace_id": trace_id}


@pytest.mark.skipif(not INSTRUMENT.exists(), reason="opentelemetry-distro is not installed")
@pytest.mark.parametrize("disabled", ["false", "true"])
def test_under_opentelemetry_instrument_too(disabled: str, tmp_path: Path) -> None:
    """Under opentelemetry-instrument with B3 configured, enabled or with OTEL_SDK_DISABLED=true, inject()
    writes spec-correct baggage and the B3 header."""
    carrier = run(
        tmp_path,
        CALLER,
        "none",
        instrument=True,
        OTEL_PROPAGATORS="tracecontext,baggage,b3",
        OTEL_SDK_DISABLED=disabled,
        OTEL_TRACES_EXPORTER="none",
        OTEL_LOGS_EXPORTER="none",
    )
    assert baggage_entries(carrier["baggage"])["deployment.name"] == NAME
    assert ("b3" in carrier) is (disabled == "false")  # a disabled SDK makes no span to propagate


@pytest.mark.parametrize("value", ["yes", "1", "disabled"])
def test_an_otel_sdk_disabled_that_is_not_true_or_false_warns_once(value: str, tmp_path: Path) -> None:
    """OTEL_SDK_DISABLED=yes is read as false (telemetry is exported) and says so in one warning, however
    often configure() is called."""
    (tmp_path / "script.py").write_text(CALLER)
    environ = {name: value for name, value in os.environ.items() if not name.startswith("OTEL_")}
    environ |= {
        "OTEL_METRICS_EXPORTER": "none",
        "OTEL_RUNTIME_RUN_EVENTS": "false",
        "OTEL_SDK_DISABLED": value,
    }
    result = subprocess.run(
        [sys.executable, "script.py", "file"], cwd=tmp_path, env=environ, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    lines = result.stderr.strip().splitlines()
    assert lines == [f"OTEL_SDK_DISABLED={value!r} is neither 'true' nor 'false'; read as false"]
    assert (tmp_path / ".otel_runtime" / "telemetry.jsonl").read_text().count('"flow caller"') == 1
