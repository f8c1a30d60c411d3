"""Structured logs that join traces: add_run_context, configure_logging, the run logger, OTLP log records."""

from __future__ import annotations

import io
import json
import logging
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
import structlog
from opentelemetry import baggage, propagate, trace
from opentelemetry import context as otel_context
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadableLogRecord, ReadWriteLogRecord
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)
from opentelemetry.semconv.attributes import exception_attributes
from structlog.testing import LogCapture

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime._sdk.file_export import JsonLinesLogExporter
from otel_runtime._tools.otlp_read import iter_logs, read_records
from otel_runtime.context import MissingContextError
from otel_runtime.logging import (
    OTelLogHandler,
    add_run_context,
    configure_logging,
    get_run_logger,
    instrument_logging,
)
from otel_runtime.testing import CapturedSpans, OtlpReceiver

FIELDS = _keys.LOG_FIELDS
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


@pytest.fixture
def exported() -> Iterator[InMemoryLogRecordExporter]:
    """A local SDK LoggerProvider fed by the root logger's OTel handler, recording in memory."""
    exporter = InMemoryLogRecordExporter()
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument_logging(provider)
    try:
        yield exporter
    finally:
        provider.shutdown()


def stamp(**explicit: Any) -> dict[str, Any]:
    """The event dict add_run_context makes of one log call in the active context."""
    return dict(add_run_context(None, "info", {"event": "hello", **explicit}))


def fail(error: Exception) -> NoReturn:
    raise error


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def attributes(record: ReadableLogRecord) -> dict[str, Any]:
    return dict(record.log_record.attributes or {})


def span_hex(span: Any) -> tuple[str, str]:
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


# -- add_run_context --------------------------------------------------------------------------------


def test_outside_any_run_every_field_is_present_and_none() -> None:
    """Outside a run the processor still adds all seven fields, each None, and keeps the event."""
    event = stamp()
    assert event == {"event": "hello", **dict.fromkeys(FIELDS)}
    assert list(event)[1:] == list(FIELDS)


def test_inside_a_task_the_fields_are_the_runs_and_its_spans(spans: CapturedSpans) -> None:
    """In a task of a deployed flow: deployment, flow run, task run, and the task span's trace/span ids."""
    seen: dict[str, Any] = {}

    @task
    def work() -> None:
        seen.update(stamp())
        seen["expected_task_run_id"] = runtime.task_run.id
        seen["expected_task_run_name"] = runtime.task_run.name

    @flow(flow_run_name="nightly-{x}")
    def pipeline(x: int) -> None:
        seen["expected_flow_run_id"] = runtime.flow_run.id
        work()

    with deployment("nightly-etl"):
        pipeline(7)
    trace_id, span_id = span_hex(spans.find("task work"))
    assert seen[_keys.LOG_DEPLOYMENT_NAME] == "nightly-etl"
    assert seen[_keys.LOG_FLOW_RUN_ID] == seen["expected_flow_run_id"]
    assert seen[_keys.LOG_FLOW_RUN_NAME] == "nightly-7"
    assert seen[_keys.LOG_TASK_RUN_ID] == seen["expected_task_run_id"]
    assert seen[_keys.LOG_TASK_RUN_NAME] == seen["expected_task_run_name"]
    assert (seen[_keys.LOG_TRACE_ID], seen[_keys.LOG_SPAN_ID]) == (trace_id, span_id)


def test_in_a_flow_without_deployment_the_task_and_deployment_fields_are_none(spans: CapturedSpans) -> None:
    """A flow run outside any deployment: deployment_name and the task fields are None, not missing."""
    seen: dict[str, Any] = {}

    @flow
    def plain() -> None:
        seen.update(stamp())

    plain()
    assert seen[_keys.LOG_DEPLOYMENT_NAME] is None
    assert seen[_keys.LOG_TASK_RUN_ID] is None
    assert seen[_keys.LOG_TASK_RUN_NAME] is None
    assert seen[_keys.LOG_SPAN_ID] == span_hex(spans.find("flow plain"))[1]


def test_values_passed_explicitly_win_over_the_run_context() -> None:
    """An explicit deployment_name / trace_id on the call is kept (setdefault), the rest is stamped."""
    seen: dict[str, Any] = {}

    @flow
    def explicit() -> None:
        seen.update(stamp(deployment_name="mine", trace_id="t" * 32))

    explicit()
    assert seen[_keys.LOG_DEPLOYMENT_NAME] == "mine"
    assert seen[_keys.LOG_TRACE_ID] == "t" * 32
    assert seen[_keys.LOG_FLOW_RUN_ID] is not None


def test_a_thread_that_received_a_carrier_gets_the_runs_fields(spans: CapturedSpans) -> None:
    """A thread that only attaches a carrier (baggage + traceparent) logs the run's ids and names."""
    seen: dict[str, Any] = {}

    def worker(carrier: dict[str, str]) -> None:
        token = otel_context.attach(propagate.extract(carrier))
        try:
            seen.update(stamp())
        finally:
            otel_context.detach(token)

    @task
    def hand_off() -> None:
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        seen["expected"] = (runtime.flow_run.id, runtime.flow_run.name, runtime.task_run.id)
        thread = threading.Thread(target=worker, args=(carrier,))
        thread.start()
        thread.join()

    @flow
    def parent() -> None:
        hand_off()

    with deployment("remote-etl"):
        parent()
    assert seen[_keys.LOG_DEPLOYMENT_NAME] == "remote-etl"
    assert (seen[_keys.LOG_FLOW_RUN_ID], seen[_keys.LOG_FLOW_RUN_NAME], seen[_keys.LOG_TASK_RUN_ID]) == seen[
        "expected"
    ]
    assert seen[_keys.LOG_TASK_RUN_NAME] is None  # not in baggage
    assert (seen[_keys.LOG_TRACE_ID], seen[_keys.LOG_SPAN_ID]) == span_hex(spans.find("task hand_off"))


CHILD = """
import json, sys
from opentelemetry import context, propagate
from otel_runtime.logging import add_run_context
context.attach(propagate.extract(json.loads(sys.argv[1])))
print(json.dumps(add_run_context(None, "info", {"event": "child"})))
"""


def test_a_process_that_received_a_carrier_gets_the_runs_fields() -> None:
    """Another process that attaches the carrier stamps the flow run and deployment of the caller."""
    carrier = {
        "traceparent": TRACEPARENT,
        "baggage": "deployment.name=nightly,flow_run.id=fr-1,flow_run.name=brave-otter,task_run.id=tr-1",
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(carrier)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    event = json.loads(done.stdout)
    assert event == {
        "event": "child",
        "deployment_name": "nightly",
        "flow_run_id": "fr-1",
        "flow_run_name": "brave-otter",
        "task_run_id": "tr-1",
        "task_run_name": None,
        "trace_id": "0af7651916cd43dd8448eb211c80319c",
        "span_id": "b7ad6b7169203331",
    }


def test_concurrent_task_runs_in_threads_each_log_their_own_fields() -> None:
    """Task runs interleaving on a thread pool never see each other's run fields."""
    barrier = threading.Barrier(4, timeout=10)

    @task
    def worker(n: int) -> list[tuple[Any, ...]]:
        lines = []
        for _ in range(50):
            event = stamp()
            lines.append((event[_keys.LOG_TASK_RUN_ID], event[_keys.LOG_SPAN_ID], runtime.task_run.id))
            if len(lines) == 1:
                barrier.wait()
        return lines

    @flow
    def fan_out() -> list[list[tuple[Any, ...]]]:
        return [future.result() for future in worker.map(range(4))]

    results = fan_out()
    ids = {lines[0][2] for lines in results}
    assert len(ids) == 4
    for lines in results:
        assert {(task_run_id, expected) for task_run_id, _, expected in lines} == {(lines[0][2], lines[0][2])}
        assert len({span_id for _, span_id, _ in lines}) == 1


def test_a_broken_span_in_the_context_gives_empty_fields_instead_of_raising() -> None:
    """If reading the context fails, the line is still logged, with every run field None."""

    class BrokenSpan(trace.NonRecordingSpan):
        def get_span_context(self) -> trace.SpanContext:
            raise RuntimeError("broken")

    token = otel_context.attach(trace.set_span_in_context(BrokenSpan(trace.INVALID_SPAN_CONTEXT)))
    try:
        event = stamp(user="kept")
    finally:
        otel_context.detach(token)
    assert event == {"event": "hello", "user": "kept", **dict.fromkeys(FIELDS)}


# -- configure_logging -----------------------------------------------------------------------------


def test_json_lines_parse_back_with_run_fields_level_logger_and_timestamp(spans: CapturedSpans) -> None:
    """configure_logging(json=True): one JSON object per line with the event, its fields and the run's."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)

    @task
    def work() -> None:
        structlog.get_logger("etl").info("loaded", rows=3)

    @flow
    def pipeline() -> None:
        work()

    with deployment("nightly-etl"):
        pipeline()
    (line,) = json_lines(stream)
    assert line["event"] == "loaded"
    assert line["rows"] == 3
    assert line["level"] == "info"
    assert line["logger"] == "etl"
    assert line["timestamp"].endswith("Z")
    assert line["deployment_name"] == "nightly-etl"
    assert line["task_run_id"] is not None
    assert (line["trace_id"], line["span_id"]) == span_hex(spans.find("task work"))


def test_stdlib_logging_lines_from_other_libraries_are_stamped_too() -> None:
    """A third-party library's logging call inside a task goes through the same processors."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    seen: dict[str, Any] = {}

    @task
    def work() -> None:
        seen["task_run_id"] = runtime.task_run.id
        logging.getLogger("thirdparty").warning("retrying %s", "GET /x", extra={"attempt": 2})

    @flow
    def pipeline() -> None:
        work()

    pipeline()
    (line,) = json_lines(stream)
    assert line["event"] == "retrying GET /x"
    assert line["logger"] == "thirdparty"
    assert line["level"] == "warning"
    assert line["attempt"] == 2
    assert line["task_run_id"] == seen["task_run_id"]
    assert line["flow_run_id"] is not None


def test_exceptions_render_as_structured_json_and_as_a_console_traceback() -> None:
    """exc_info is not lost: a structured traceback in JSON (no locals), a traceback on the console."""
    for as_json in (True, False):
        stream = io.StringIO()
        configure_logging(json=as_json, stream=stream)
        secret = "hunter2"
        try:
            fail(ValueError(f"bad row {len(secret)}"))
        except ValueError:
            structlog.get_logger().exception("failed")
            logging.getLogger("thirdparty").exception("also failed")
        text = stream.getvalue()
        if as_json:
            structured, plain = json_lines(stream)
            assert structured["exception"][0]["exc_type"] == "ValueError"
            assert structured["exception"][0]["exc_value"] == "bad row 7"
            assert plain["exception"][0]["exc_type"] == "ValueError"
            assert "hunter2" not in text
        else:
            assert text.count("Traceback (most recent call last)") == 2
            assert "ValueError: bad row 7" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_console_renderer_is_the_default_on_a_terminal_and_json_elsewhere() -> None:
    """json=None: a terminal gets the console renderer (None run fields left out), a file JSON lines."""
    terminal = _Terminal()
    configure_logging(stream=terminal)
    structlog.get_logger().info("for humans", n=1)
    line = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())  # a terminal gets colors
    assert "for humans" in line
    assert "n=1" in line
    assert "flow_run_id" not in line  # None outside a run: not worth a reader's attention
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)

    piped = io.StringIO()
    configure_logging(stream=piped)
    structlog.get_logger().info("for machines")
    (parsed,) = json_lines(piped)
    assert parsed["event"] == "for machines"
    assert parsed["flow_run_id"] is None


def test_configure_logging_is_idempotent() -> None:
    """Calling configure_logging again replaces the first set-up: still one line per call."""
    first, second = io.StringIO(), io.StringIO()
    configure_logging(json=True, stream=first)
    handler = configure_logging(json=True, stream=second)
    structlog.get_logger().info("once")
    logging.getLogger("thirdparty").warning("once too")
    assert first.getvalue() == ""
    assert [line["event"] for line in json_lines(second)] == ["once", "once too"]
    assert logging.getLogger().handlers.count(handler) == 1


def test_lines_below_the_level_are_dropped() -> None:
    """level=WARNING drops info lines from structlog and from logging alike."""
    stream = io.StringIO()
    configure_logging(json=True, level=logging.WARNING, stream=stream)
    structlog.get_logger().info("dropped")
    logging.getLogger("thirdparty").info("dropped too")
    structlog.get_logger().warning("kept")
    assert [line["event"] for line in json_lines(stream)] == ["kept"]


def test_the_default_stream_is_stderr_at_the_time_of_the_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Without a stream, lines go to whatever sys.stderr is when they are written."""
    configure_logging(json=True)
    structlog.get_logger().info("to stderr")
    captured = capsys.readouterr()
    assert json.loads(captured.err)["event"] == "to stderr"
    assert captured.out == ""


def test_user_processors_run_on_every_line_after_the_run_fields() -> None:
    """processors=[...] see the run fields and can add their own, for structlog and logging lines."""
    stream = io.StringIO()

    def add_team(logger: Any, method_name: str, event_dict: Any) -> Any:
        event_dict["team"] = "data" if event_dict["flow_run_id"] else "none"
        return event_dict

    configure_logging(json=True, stream=stream, processors=[add_team])

    @flow
    def pipeline() -> None:
        structlog.get_logger().info("a")
        logging.getLogger("thirdparty").warning("b")

    pipeline()
    assert [line["team"] for line in json_lines(stream)] == ["data", "data"]


# -- baggage and run names cannot forge lines ------------------------------------------------------


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "console"])
@pytest.mark.parametrize(
    ("encoded", "propagator_rejects"),
    [('evil%0A{"fake":1}', True), ("evil%0A%7B%22fake%22%3A1%7D", False)],
    ids=["raw-quotes", "percent-encoded"],
)
def test_a_newline_in_a_received_deployment_name_cannot_forge_a_line(
    as_json: bool, encoded: str, propagator_rejects: bool
) -> None:
    """deployment.name=evil%0A{"fake":1} in a carrier never starts a line of its own, JSON or console.

    OpenTelemetry's baggage propagator rejects the raw quotes (and logs that, one line); the
    percent-encoded form passes it, and otel_runtime drops the unprintable value: deployment_name None.
    """
    carrier = {"traceparent": TRACEPARENT, "baggage": f"deployment.name={encoded},flow_run.id=fr-1"}
    stream = io.StringIO()
    configure_logging(json=as_json, stream=stream)
    received = propagate.extract(carrier)
    if not propagator_rejects:
        assert baggage.get_baggage("deployment.name", received) == 'evil\n{"fake":1}'
    token = otel_context.attach(received)
    try:
        structlog.get_logger().info("remote work")
    finally:
        otel_context.detach(token)
    lines = stream.getvalue().splitlines()
    assert len(lines) == (2 if propagator_rejects else 1)
    assert not any(line.startswith('{"fake"') for line in lines)
    (ours,) = [line for line in lines if "remote work" in line]
    assert "flow_run_id=fr-1" in ours or json.loads(ours)["flow_run_id"] == "fr-1"
    if as_json:
        assert all(json.loads(line)["deployment_name"] is None for line in lines)
    else:
        assert "deployment_name" not in ours


def test_a_run_name_with_a_newline_is_escaped_in_every_renderer() -> None:
    """A flow_run_name template filled with a newline renders as one line (escaped), console or JSON."""
    outputs = []
    for as_json in (True, False):
        stream = io.StringIO()
        configure_logging(json=as_json, stream=stream)

        @flow(flow_run_name="load-{source}")
        def load(source: str) -> None:
            structlog.get_logger().info("loading")

        load('x\n2026-01-01 [info] {"fake": 1}\x1b[2J')
        outputs.append(stream.getvalue())
    as_json_text, console_text = outputs
    assert len(as_json_text.splitlines()) == 1
    assert json.loads(as_json_text)["flow_run_name"] == 'load-x\\n2026-01-01 [info] {"fake": 1}\\x1b[2J'
    assert len(console_text.splitlines()) == 1
    assert "\x1b" not in console_text


def test_the_console_escapes_control_characters_from_any_message() -> None:
    """A library message with an escape sequence or carriage return cannot drive the terminal."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)
    logging.getLogger("thirdparty").warning("bad header `x\x1b[2J\rINFO forged`", extra={"raw": "a\x1bb"})
    text = stream.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    assert "x\\x1b[2J\\rINFO forged" in text
    assert len(text.splitlines()) == 1


# -- capture_logs, the run logger and log_prints ----------------------------------------------------


def test_add_run_context_in_a_chain_ending_in_structlogs_log_capture() -> None:
    """Users testing their own logs put add_run_context before structlog.testing.LogCapture."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, add_run_context, capture])

    @flow
    def pipeline() -> str | None:
        structlog.get_logger().info("step", n=1)
        return runtime.flow_run.id

    flow_run_id = pipeline()
    (entry,) = capture.entries
    assert entry["event"] == "step"
    assert entry["n"] == 1
    assert entry["flow_run_id"] == flow_run_id
    assert entry["log_level"] == "info"
    assert set(FIELDS) <= set(entry)


def test_contextvars_bound_by_the_user_win_over_the_run_context() -> None:
    """merge_contextvars runs first, so a value bound with bind_contextvars beats the ambient one."""
    capture = LogCapture()
    structlog.configure(processors=[structlog.contextvars.merge_contextvars, add_run_context, capture])

    @flow
    def pipeline() -> None:
        with structlog.contextvars.bound_contextvars(deployment_name="pinned"):
            structlog.get_logger().info("step")

    pipeline()
    assert capture.entries[0]["deployment_name"] == "pinned"


def test_get_run_logger_outside_a_run_raises_missing_context_error() -> None:
    """As in Prefect, asking for the run logger outside any run is an error."""
    with pytest.raises(MissingContextError):
        get_run_logger()


def test_log_prints_go_through_configure_logging_once_and_export_once(
    exported: InMemoryLogRecordExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    """A print in a log_prints flow is one JSON line and one OTel record; stderr and outside prints stay."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)

    @flow(log_prints=True)
    def chatty() -> None:
        print("hello", "world")
        print("to stderr", file=sys.stderr)

    chatty()
    print("outside")
    (line,) = json_lines(stream)
    assert line["event"] == "hello world"
    assert line["logger"] == "otel_runtime.run"
    assert line["flow_run_id"] is not None
    (record,) = exported.get_finished_logs()
    assert record.log_record.body == "hello world"
    captured = capsys.readouterr()
    assert captured.out == "outside\n"
    assert captured.err == "to stderr\n"


def test_a_structlog_event_is_printed_once_and_exported_once_with_ids_and_fields(
    exported: InMemoryLogRecordExporter, spans: CapturedSpans
) -> None:
    """One structlog call: one console line and one OTel record (body, severity, span ids, attributes)."""
    stream = io.StringIO()
    configure_logging(json=False, stream=stream)

    @task
    def work() -> None:
        structlog.get_logger("etl").info("loaded", rows=3, table="events", note=None, tags=["a", "b"])

    @flow
    def pipeline() -> None:
        work()

    with deployment("nightly-etl"):
        pipeline()
    assert len(stream.getvalue().splitlines()) == 1
    (record,) = exported.get_finished_logs()
    log = record.log_record
    trace_id, span_id = span_hex(spans.find("task work"))
    assert log.body == "loaded"
    assert log.severity_text == "INFO"
    assert log.severity_number is not None
    assert log.severity_number.name == "INFO"
    assert (trace.format_trace_id(log.trace_id or 0), trace.format_span_id(log.span_id or 0)) == (
        trace_id,
        span_id,
    )
    assert record.instrumentation_scope is not None
    assert record.instrumentation_scope.name == "etl"
    attrs = attributes(record)
    assert attrs["rows"] == 3
    assert attrs["table"] == "events"
    assert list(attrs["tags"]) == ["a", "b"]
    assert attrs["deployment_name"] == "nightly-etl"
    assert attrs["trace_id"] == trace_id
    assert attrs["span_id"] == span_id
    assert attrs["task_run_id"] is not None
    assert attrs["task_run_name"] is not None
    assert "note" not in attrs  # None: OTLP attributes have no null
    assert None not in attrs.values()
    assert not {"event", "level", "timestamp", "logger"} & set(attrs)  # carried by the record's own fields


def test_a_stdlib_record_is_exported_with_the_run_fields_and_its_extra(
    exported: InMemoryLogRecordExporter, spans: CapturedSpans
) -> None:
    """A plain logging call (no configure_logging) in a flow: run fields and extra= become attributes."""
    logging.getLogger().setLevel(logging.INFO)

    @flow
    def pipeline() -> None:
        logging.getLogger("thirdparty").info(
            "fetched %d rows", 5, extra={"url": "http://x", "flow_run_id": "mine"}
        )

    pipeline()
    (record,) = exported.get_finished_logs()
    assert record.log_record.body == "fetched 5 rows"
    assert record.log_record.severity_text == "INFO"
    attrs = attributes(record)
    assert attrs["url"] == "http://x"
    assert attrs["flow_run_id"] == "mine"  # explicit wins
    assert attrs["flow_run_name"] is not None
    assert attrs["span_id"] == span_hex(spans.find("flow pipeline"))[1]
    assert "deployment_name" not in attrs
    assert not {"msg", "args", "levelname", "pathname"} & set(attrs)


def test_exceptions_export_as_semantic_convention_attributes(exported: InMemoryLogRecordExporter) -> None:
    """exc_info, from structlog or logging, exports exception.type, .message and .stacktrace."""
    configure_logging(json=True, stream=io.StringIO())

    class RowError(ValueError):
        pass

    try:
        fail(RowError("bad row 7"))
    except RowError:
        structlog.get_logger().exception("failed")
        logging.getLogger("thirdparty").error("also failed", exc_info=True)
    for record in exported.get_finished_logs():
        attrs = attributes(record)
        assert attrs[exception_attributes.EXCEPTION_TYPE] == f"{__name__}.{RowError.__qualname__}"
        assert attrs[exception_attributes.EXCEPTION_MESSAGE] == "bad row 7"
        assert "fail(RowError" in attrs[exception_attributes.EXCEPTION_STACKTRACE]
        assert record.log_record.severity_text == "ERROR"
    assert len(exported.get_finished_logs()) == 2


def test_values_otlp_cannot_carry_are_exported_as_their_repr(exported: InMemoryLogRecordExporter) -> None:
    """Objects become their repr (as in JSON lines), huge ints a string, mappings stay mappings."""
    configure_logging(json=True, stream=io.StringIO())

    class Point:
        def __repr__(self) -> str:
            return "Point(1, 2)"

    structlog.get_logger().info("odd values", point=Point(), huge=2**80, nested={"k": [1, None, Point()]})
    attrs = attributes(exported.get_finished_logs()[0])
    assert attrs["point"] == "Point(1, 2)"
    assert attrs["huge"] == str(2**80)
    assert dict(attrs["nested"])["k"] == (1, None, "Point(1, 2)")


def test_outside_a_run_a_record_has_no_trace_ids_and_no_run_attributes(
    exported: InMemoryLogRecordExporter,
) -> None:
    """A line logged outside any run and span exports without trace context or run fields."""
    configure_logging(json=True, stream=io.StringIO())
    structlog.get_logger().info("idle")
    (record,) = exported.get_finished_logs()
    assert not record.log_record.trace_id
    assert not set(FIELDS) & set(attributes(record))


def test_lines_of_the_opentelemetry_loggers_are_not_exported(exported: InMemoryLogRecordExporter) -> None:
    """The exporters' own complaints are printed but never fed back into the export."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    logging.getLogger("opentelemetry.sdk._logs").warning("exporter trouble")
    logging.getLogger("opentelemetry_lookalike").warning("a user library")
    assert [record.log_record.body for record in exported.get_finished_logs()] == ["a user library"]
    assert len(json_lines(stream)) == 2


def test_a_failing_log_pipeline_never_reaches_the_logging_call() -> None:
    """A log record processor that raises: the call returns, the line is printed, at most one warning."""

    class Exploding(LogRecordProcessor):
        def on_emit(self, log_record: ReadWriteLogRecord) -> None:
            raise RuntimeError("processor down")

        def shutdown(self) -> None:
            pass

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return True

    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(Exploding())
    instrument_logging(provider)
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)
    structlog.get_logger().info("still logged")
    structlog.get_logger().info("and again")
    events = [line["event"] for line in json_lines(stream)]
    warning = "otel_runtime could not export a log record"
    assert [event for event in events if event != warning] == ["still logged", "and again"]
    assert events.count(warning) <= 1  # reported once per process


def test_instrument_logging_is_idempotent_and_replaces_an_opentelemetry_handler() -> None:
    """Calling it twice keeps one handler; an SDK LoggingHandler on root is removed (no double export)."""
    from opentelemetry.sdk._logs import LoggingHandler

    provider = LoggerProvider(shutdown_on_exit=False)
    with pytest.warns(DeprecationWarning, match="deprecated"):
        sdk_handler = LoggingHandler(logger_provider=provider)
    root = logging.getLogger()
    root.addHandler(sdk_handler)
    first = instrument_logging(provider)
    second = instrument_logging(provider)
    assert first is second
    assert isinstance(first, OTelLogHandler)
    assert sdk_handler not in root.handlers
    assert [handler for handler in root.handlers if isinstance(handler, OTelLogHandler)] == [first]
    provider.shutdown()


def test_log_records_reach_a_real_otlp_grpc_receiver(spans: CapturedSpans) -> None:
    """Through the OTLP/gRPC exporter: body, severity, trace/span ids and run attributes arrive intact."""
    with OtlpReceiver() as receiver:
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
        )
        instrument_logging(provider)
        configure_logging(json=True, stream=io.StringIO())

        @task
        def work() -> None:
            structlog.get_logger("etl").warning("slow source", seconds=2.5)
            logging.getLogger("thirdparty").info("plain line")

        @flow
        def pipeline() -> None:
            work()

        try:
            with deployment("nightly-etl"):
                pipeline()
            assert provider.force_flush(10_000)
            logs = receiver.wait_for_logs(2, timeout=10)
        finally:
            provider.shutdown()
    trace_id, span_id = span_hex(spans.find("task work"))
    by_body = {log["body"]: log for log in logs}
    slow = by_body["slow source"]
    assert (slow["severity_number"], slow["severity_text"]) == (13, "WARN")
    assert (slow["trace_id"], slow["span_id"]) == (trace_id, span_id)
    assert slow["scope"] == "etl"
    assert slow["attributes"]["seconds"] == 2.5
    assert slow["attributes"]["deployment_name"] == "nightly-etl"
    assert slow["attributes"]["trace_id"] == trace_id
    assert slow["attributes"]["flow_run_id"] is not None
    assert slow["attributes"]["task_run_id"] is not None
    plain = by_body["plain line"]
    assert (plain["severity_number"], plain["trace_id"]) == (9, trace_id)
    assert plain["attributes"]["deployment_name"] == "nightly-etl"


def test_log_records_land_in_the_local_telemetry_file(tmp_path: Path, spans: CapturedSpans) -> None:
    """The embedded default: records appended as OTLP/JSON lines, with ids and run attributes, read back."""
    exporter = JsonLinesLogExporter(tmp_path / "telemetry.jsonl")
    provider = LoggerProvider(shutdown_on_exit=False)
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    instrument_logging(provider)
    configure_logging(json=True, stream=io.StringIO())

    @flow
    def pipeline() -> None:
        structlog.get_logger().error("to the file", code=7)

    try:
        with deployment("nightly-etl"):
            pipeline()
    finally:
        provider.shutdown()
    (log,) = [log for record in read_records(exporter.path) for log in iter_logs(record)]
    trace_id, span_id = span_hex(spans.find("flow pipeline"))
    assert (log["body"], log["severity_text"], log["trace_id"], log["span_id"]) == (
        "to the file",
        "ERROR",
        trace_id,
        span_id,
    )
    assert log["attributes"]["code"] == 7
    assert log["attributes"]["deployment_name"] == "nightly-etl"
    assert log["attributes"]["flow_run_name"] is not None
