"""Hostile ``traceparent``, ``tracestate`` and ``baggage`` headers, fuzzed: nothing raises, nothing is forged.

A carrier is whatever a remote caller sent. Hypothesis draws malformed, oversized and adversarial
headers (control characters, newlines in plain and percent-encoded form, invalid UTF-8 behind percent
escapes, too many entries, duplicate keys, our own keys with values that are not ids)
and the tests extract them with the global propagators, as an instrumented server would:

- ``propagate.extract``, ``propagation.extract`` / ``attach``, every accessor, ``add_run_context`` and a
  flow run (with a task) started inside never raise;
- every run id the program sees (accessors, log fields, span attributes) passes ``is_valid_id``, and
  every name is printable;
- a rendered log line (JSON and console) is exactly one line;
- the spans record only our attribute keys, never a key or a value smuggled in by the carrier.
"""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, propagate
from opentelemetry import context as otel_context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.semconv.attributes.code_attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE

from otel_runtime import flow, propagation, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime._core.identity import is_valid_id, is_valid_name
from otel_runtime.logging import add_run_context, configure_logging
from otel_runtime.testing import capture_spans

FUZZ = settings(
    max_examples=60,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

ID_ATTRIBUTES = frozenset(
    {
        _keys.DEPLOYMENT_ID,
        _keys.FLOW_RUN_ID,
        _keys.TASK_RUN_ID,
        _keys.FLOW_RUN_PARENT_ID,
        _keys.FLOW_RUN_ROOT_ID,
    }
)
NAME_ATTRIBUTES = frozenset(
    {_keys.DEPLOYMENT_NAME, _keys.FLOW_RUN_NAME, _keys.FLOW_NAME, _keys.TASK_RUN_NAME}
)
OUR_ATTRIBUTES = frozenset(
    {
        *_keys.SPAN_ATTRIBUTES,
        CODE_FUNCTION_NAME,
        CODE_FILE_PATH,
        CODE_LINE_NUMBER,
        ERROR_TYPE,
        f"{_keys.FLOW_RUN_PARAMETER_PREFIX}note",
        f"{_keys.TASK_RUN_PARAMETER_PREFIX}x",
    }
)

# -- strategies ------------------------------------------------------------------------------------------

# Every code point but lone surrogates, which no HTTP header can hold (servers decode headers as latin-1);
# they come from environment variables (see the last tests).
ANY_CHAR = st.characters(exclude_categories=("Cs",))
NASTY = [
    "\n",
    "\r\n",
    "%0A",
    "%0D%0Aevent=forged",
    "\x1b[2J",
    "%1B%5B31m",
    "\u2028",
    "\x00",
    "%00",
    "%",
    "%zz",
    "%FF%FE%FD",
    "%C3%28",
    "%ED%A0%80",
    "a=b",
    "a;b=c",
    ",",
    '"quoted"',
    "+ +",
    "null",
    "flow_run.id=abc",
    "ab\ncd",
    'nightly\n{"level": "error", "event": "forged"}',
]
TEXT = st.text(ANY_CHAR, max_size=40)
HEX = st.text("0123456789abcdefABCDEF", min_size=0, max_size=40)
PERCENT_BYTES = st.binary(max_size=24).map(lambda raw: "".join(f"%{byte:02X}" for byte in raw))
VALUES = st.one_of(
    TEXT,
    st.sampled_from(NASTY),
    PERCENT_BYTES,
    st.uuids().map(str),
    st.tuples(st.uuids().map(str), st.sampled_from(NASTY)).map("".join),
    st.integers(200, 9000).map(lambda n: "x" * n),
)
KEYS = st.one_of(st.sampled_from(_keys.BAGGAGE_KEYS), st.sampled_from(["evil", "task_run.parameter.x"]), TEXT)
MEMBER = st.one_of(
    st.tuples(KEYS, VALUES).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(KEYS, VALUES, TEXT).map(lambda kvp: f"{kvp[0]}={kvp[1]};{kvp[2]}"),
    TEXT,
)
BAGGAGE = st.one_of(
    st.lists(MEMBER, max_size=12).map(",".join),
    st.lists(MEMBER, max_size=6).map(lambda members: ",".join(members * 3)),  # duplicate keys
    st.integers(100, 400).map(lambda n: ",".join(f"k{i}=v{i}" for i in range(n))),  # too many entries
    st.tuples(st.sampled_from(_keys.BAGGAGE_KEYS), st.integers(5_000, 20_000)).map(
        lambda kn: f"{kn[0]}={'a' * kn[1]}"  # one oversized member
    ),
    TEXT,
)
TRACEPARENT_OK = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACEPARENT = st.one_of(
    st.tuples(HEX, HEX, HEX, HEX).map("-".join),
    st.tuples(st.sampled_from(["00", "ff", "01", "cc"]), HEX, HEX, st.sampled_from(["00", "01", "ff"])).map(
        "-".join
    ),
    st.sampled_from(
        [
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0AF7651916CD43DD8448EB211C80319C-B7AD6B7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\n",
        ]
    ),
    TEXT,
    st.integers(1_000, 10_000).map(lambda n: "0" * n),
)
TRACESTATE = st.one_of(
    st.lists(st.tuples(TEXT, TEXT).map("=".join), max_size=40).map(",".join),
    st.integers(33, 200).map(lambda n: ",".join(f"k{i}=v" for i in range(n))),
    st.lists(st.just("dup=1"), min_size=2, max_size=5).map(",".join),
    TEXT,
)
CARRIERS = st.fixed_dictionaries(
    {},
    optional={"traceparent": TRACEPARENT, "tracestate": TRACESTATE, "baggage": BAGGAGE},
)
# What an environment variable can hold besides: lone surrogates, for bytes that are not UTF-8.
UNICODE_MISFITS = st.text(st.characters(exclude_categories=()), max_size=40)
ANY_CARRIERS = st.fixed_dictionaries(
    {},
    optional={
        "traceparent": TRACEPARENT | UNICODE_MISFITS,
        "tracestate": TRACESTATE | UNICODE_MISFITS,
        "baggage": BAGGAGE | st.tuples(st.sampled_from(_keys.BAGGAGE_KEYS), UNICODE_MISFITS).map("=".join),
    },
)


# -- what is checked ------------------------------------------------------------------------------------


@task
def inner(x: int) -> dict[str, Any]:
    return {**accessor_reads(), "log": add_run_context(None, "info", {"event": "in task"})}


@flow
def received(note: str) -> dict[str, Any]:
    return {**accessor_reads(), "task": inner(1), "log": add_run_context(None, "info", {"event": note})}


def accessor_reads() -> dict[str, Any]:
    return {
        "deployment.id": runtime.deployment.id,
        "deployment.name": runtime.deployment.name,
        "deployment.flow_run_id": runtime.deployment.flow_run_id,
        "deployment.parameters": runtime.deployment.parameters,
        "flow_run.id": runtime.flow_run.id,
        "flow_run.name": runtime.flow_run.name,
        "flow_run.flow_name": runtime.flow_run.flow_name,
        "flow_run.parent_flow_run_id": runtime.flow_run.parent_flow_run_id,
        "flow_run.parent_deployment_id": runtime.flow_run.parent_deployment_id,
        "flow_run.root_flow_run_id": runtime.flow_run.root_flow_run_id,
        "flow_run.trace_id": runtime.flow_run.trace_id,
        "flow_run.parameters": runtime.flow_run.parameters,
        "task_run.id": runtime.task_run.id,
        "task_run.name": runtime.task_run.name,
        "task_run.trace_id": runtime.task_run.trace_id,
    }


def assert_well_formed(reads: dict[str, Any]) -> None:
    """Ids are ids, names are printable names, whatever the carrier said."""
    for key, value in reads.items():
        if value is None or key in ("task", "log") or key.endswith("parameters"):
            continue
        if key.endswith(("id", "_id")) and not key.endswith("trace_id"):
            assert is_valid_id(value), (key, value)
        elif key.endswith("trace_id"):
            assert isinstance(value, str) and len(value) == 32 and int(value, 16), (key, value)
        else:
            assert is_valid_name(value), (key, value)
    log = reads.get("log")
    if log is not None:
        for key in (_keys.LOG_FLOW_RUN_ID, _keys.LOG_TASK_RUN_ID):
            assert log[key] is None or is_valid_id(log[key]), (key, log[key])
        for key in (_keys.LOG_DEPLOYMENT_NAME, _keys.LOG_FLOW_RUN_NAME, _keys.LOG_TASK_RUN_NAME):
            assert log[key] is None or is_valid_name(log[key]), (key, log[key])


def assert_spans_hold_only_our_keys(spans: Any) -> None:
    for span in spans.spans:
        attributes = dict(span.attributes or {})
        assert set(attributes) <= OUR_ATTRIBUTES, set(attributes) - OUR_ATTRIBUTES
        for key, value in attributes.items():
            if key in ID_ATTRIBUTES:
                assert is_valid_id(value), (key, value)
            elif key in NAME_ATTRIBUTES:
                assert is_valid_name(value), (key, value)
        assert span.name in ("flow received", "task inner")
        assert span.end_time is not None


@pytest.mark.parametrize("key", ["flow_run", "deployment"])
def test_a_value_that_passes_as_a_name_is_still_refused_as_an_id(key: str) -> None:
    """The same string sent as ``<x>.name`` and ``<x>.id`` is a fine name but no id: the name is taken and
    the id refused, whichever is read first (validity is decided per kind of key, not per string)."""
    carrier = {"baggage": f"{key}.name=not%20an%20id!,{key}.id=not%20an%20id!"}
    accessor = runtime.flow_run if key == "flow_run" else runtime.deployment
    for _ in range(2):
        with propagation.attach(carrier):
            assert accessor.name == "not an id!"
            assert accessor.id is None or is_valid_id(accessor.id)
            assert add_run_context(None, "info", {"event": "x"})[_keys.LOG_FLOW_RUN_ID] is None


@pytest.fixture(params=["sdk-baggage", "otel_runtime-baggage"])
def global_propagators(request: pytest.FixtureRequest) -> Iterator[TextMapPropagator]:
    """The global propagators an instrumented server would use: the SDK default (W3C trace context and
    baggage), and the same with otel_runtime's spec-encoded baggage propagator, which percent-decodes."""
    previous = propagate.get_global_textmap()
    try:
        if request.param == "otel_runtime-baggage":
            yield propagation.install_baggage_propagator()
        else:
            yield previous
    finally:
        propagate.set_global_textmap(previous)


@FUZZ
@given(carrier=CARRIERS)
@example(carrier={"baggage": "flow_run.name=not%20an%20id,flow_run.id=not%20an%20id"})
def test_hostile_headers_never_raise_and_never_yield_a_malformed_run_id(
    carrier: dict[str, str], global_propagators: TextMapPropagator
) -> None:
    """Extracted with ``propagate.extract`` and attached, any carrier leaves the accessors and the log
    fields well formed (ids pass is_valid_id, names are printable) or empty; a flow run with a task
    started inside raises nothing, sees only well-formed ids, and its spans record only our attribute
    keys with validated values; afterwards the context is as it was."""
    context = propagate.extract(carrier)
    token = otel_context.attach(context)
    try:
        outside = {**accessor_reads(), "log": add_run_context(None, "info", {"event": "received"})}
        assert_well_formed(outside)
        with capture_spans() as spans:
            inside = received("handled")
        assert_well_formed(inside)
        assert_well_formed(inside["task"])
        assert inside["flow_run.id"] != outside["flow_run.id"]
        assert inside["flow_run.parent_flow_run_id"] == outside["flow_run.id"]
        assert_spans_hold_only_our_keys(spans)
        assert len(spans.spans) == 2
    finally:
        otel_context.detach(token)
    assert runtime.flow_run.id is None and dict(baggage.get_all()) == {}


@FUZZ
@given(carrier=ANY_CARRIERS)
def test_hostile_headers_through_propagation_attach_never_raise(
    carrier: dict[str, str], global_propagators: TextMapPropagator
) -> None:
    """``propagation.extract`` and ``propagation.attach`` (trusted and not) take any carrier, with header
    names in any case or as a bare traceparent string, values that are not valid Unicode text included,
    without raising; the accessors stay well formed."""
    shouted = {key.upper(): value for key, value in carrier.items()}
    for given_carrier in (carrier, shouted, carrier.get("traceparent", "")):
        propagation.extract(given_carrier)
        for trust in (True, False):
            with propagation.attach(given_carrier, trust=trust):
                assert_well_formed(accessor_reads())
    assert runtime.flow_run.id is None


@dataclass
class Rendered:
    """What configure_logging() wrote, and how many log records its handler rendered."""

    stream: io.StringIO
    records: list[logging.LogRecord]

    def reset(self) -> None:
        self.stream.seek(0)
        self.stream.truncate()
        self.records.clear()


@pytest.fixture(params=["json", "console"])
def rendered(request: pytest.FixtureRequest) -> Rendered:
    """configure_logging() writing to a buffer, as JSON lines or through the console renderer."""
    stream = io.StringIO()
    handler = configure_logging(json=request.param == "json", stream=stream)
    records: list[logging.LogRecord] = []

    def count(record: logging.LogRecord) -> bool:
        records.append(record)
        return True

    handler.addFilter(count)
    return Rendered(stream, records)


@FUZZ
@given(carrier=CARRIERS)
@example(carrier={"baggage": "a=b\n2026-01-01 [error    ] forged: admin logged in,k=v"})
@example(carrier={"tracestate": "k=v\n[error] forged", "traceparent": TRACEPARENT_OK})
@example(carrier={"baggage": "deployment.name=%0A%1B%5B2Jforged,flow_run.name=a%0D%0Ab"})
def test_a_received_value_cannot_forge_a_log_line(
    carrier: dict[str, str], global_propagators: TextMapPropagator, rendered: Rendered
) -> None:
    """Logged under a hostile carrier, outside and inside a flow run, every record renders as exactly one
    line (JSON or console), the OpenTelemetry propagators' own complaints about the carrier included: no
    newline, carriage return or escape sequence from the carrier gets into the output; a JSON line
    parses and carries only well-formed run fields."""
    rendered.reset()
    logger = structlog.get_logger("received")

    @flow
    def logs_inside() -> None:
        logger.info("inside")

    with propagation.attach(carrier):
        logger.info("outside")
        logs_inside()
    text = rendered.stream.getvalue()
    lines = text.split("\n")
    assert lines[-1] == "" and len(lines) == len(rendered.records) + 1, text
    assert "\r" not in text and "\x1b" not in text and "\u2028" not in text
    if text.startswith("{"):
        events = [json.loads(line) for line in lines[:-1]]
        assert [e["event"] for e in events if e["logger"] == "received"] == ["outside", "inside"]
        for event in events:
            assert_well_formed({"log": event})


# -- carriers that are not valid Unicode text ---------------------------------------------------------------


def test_a_carrier_that_is_not_valid_unicode_is_ignored_not_raised(
    global_propagators: TextMapPropagator,
) -> None:
    """``propagation.attach`` of a baggage value with a lone surrogate ignores that value, never raises;
    the rest of the carrier (the caller's span) still counts."""
    with propagation.attach({"traceparent": TRACEPARENT_OK, "baggage": "deployment.name=caf\udce9"}):
        assert runtime.deployment.name is None
        assert received("x")["flow_run.trace_id"] == TRACEPARENT_OK.split("-")[1]


ENV_SCRIPT = """
import json
from otel_runtime import flow, runtime
from otel_runtime.testing import capture_spans

@flow
def job() -> str | None:
    return runtime.flow_run.id

with capture_spans() as captured:
    flow_run_id = job()
print(json.dumps({"flow_run_id": flow_run_id, "spans": len(captured.spans)}))
"""


def test_a_child_process_with_a_baggage_variable_that_is_not_utf8_still_traces_its_flows() -> None:
    """A process started with ``BAGGAGE`` holding latin-1 bytes (``deployment.name=café``, not UTF-8) and a
    valid ``TRACEPARENT``: its flow runs are still traced (they join the parent's trace, the bad value is
    ignored) rather than run untraced."""
    environment = {key.encode(): value.encode() for key, value in os.environ.items()}
    environment[b"TRACEPARENT"] = TRACEPARENT_OK.encode()
    environment[b"BAGGAGE"] = b"deployment.name=caf\xe9"
    result = subprocess.run(
        [sys.executable, "-c", ENV_SCRIPT], env=environment, capture_output=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["flow_run_id"] is not None and seen["spans"] == 1, result.stderr.decode(errors="replace")
