"""get_run_logger(): a stdlib logging logger bound to the run, as Prefect's (caplog, %-args, extra=, exc_info,
stacklevel, level), with structlog's key-value style, exported as OTLP log records with trace ids."""

from __future__ import annotations

import inspect
import io
import json
import logging
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import (
    BatchLogRecordProcessor,
    InMemoryLogRecordExporter,
    SimpleLogRecordProcessor,
)

from otel_runtime import deployment, flow, runtime, task
from otel_runtime.logging import configure_logging, get_run_logger, instrument_logging
from otel_runtime.testing import CapturedSpans, OtlpReceiver

RUN_LOGGER = "otel_runtime.run"


def run_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == RUN_LOGGER]


def fail(error: Exception) -> NoReturn:
    raise error


def span_hex(span: Any) -> tuple[str, str]:
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


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


def test_caplog_sees_run_logger_records_with_the_run_fields_as_attributes(
    caplog: pytest.LogCaptureFixture, spans: CapturedSpans
) -> None:
    """Records go through logging: caplog sees each once, with the run fields, Prefect's flow_name and
    task_name, and the trace and span ids of the line's span as record attributes."""
    seen: dict[str, Any] = {}

    @task
    def extract() -> None:
        seen["task"] = (runtime.task_run.id, runtime.task_run.name)
        get_run_logger().info("extracting")

    @flow
    def etl() -> None:
        seen["flow"] = (runtime.flow_run.id, runtime.flow_run.name)
        get_run_logger().warning("starting")
        extract()

    with deployment("nightly"):
        etl()
    started, extracting = run_records(caplog)
    assert (started.levelname, started.getMessage()) == ("WARNING", "starting")
    assert (started.flow_run_id, started.flow_run_name) == seen["flow"]  # type: ignore[attr-defined]
    assert (started.flow_name, started.task_run_id, started.task_name) == ("etl", None, None)  # type: ignore[attr-defined]
    assert started.deployment_name == "nightly"  # type: ignore[attr-defined]
    assert (started.trace_id, started.span_id) == span_hex(spans.find("flow etl"))  # type: ignore[attr-defined]
    assert (extracting.task_run_id, extracting.task_run_name) == seen["task"]  # type: ignore[attr-defined]
    assert (extracting.flow_name, extracting.task_name) == ("etl", "extract")  # type: ignore[attr-defined]
    assert extracting.span_id == span_hex(spans.find("task extract"))[1]  # type: ignore[attr-defined]


def test_percent_arguments_extra_exc_info_and_stacklevel_work_as_in_logging(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The logging call as it is: %-style arguments, extra= as record attributes (over the bound
    values), exc_info from logger.exception, stacklevel pointing at the caller's caller."""

    def helper(logger: logging.LoggerAdapter) -> None:  # type: ignore[type-arg]
        logger.info("from the helper", stacklevel=2)

    @flow
    def job() -> int:
        logger = get_run_logger(source="s3")
        logger.info("fetched %d rows from %s", 5, "events", extra={"url": "s3://b/k", "source": "gcs"})
        try:
            fail(ValueError("bad row 7"))
        except ValueError:
            logger.exception("failed")
        helper(logger)
        return inspect.currentframe().f_lineno  # type: ignore[union-attr]

    caller_line = job() - 1
    fetched, failed, located = run_records(caplog)
    assert fetched.getMessage() == "fetched 5 rows from events"
    assert fetched.args == (5, "events")
    assert (fetched.url, fetched.source) == ("s3://b/k", "gcs")  # type: ignore[attr-defined]
    assert failed.levelno == logging.ERROR
    assert failed.exc_info is not None
    assert str(failed.exc_info[1]) == "bad row 7"
    assert failed.source == "s3"  # type: ignore[attr-defined]
    assert (located.funcName, located.lineno, located.filename) == ("job", caller_line, "test_run_logger.py")


def test_debug_lines_are_dropped_at_the_default_level_unless_the_level_is_lowered(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """As Prefect's (PREFECT_LOGGING_LEVEL defaults to INFO), the run logger drops DEBUG lines until its
    level is lowered; isEnabledFor says so."""

    @flow
    def job() -> bool:
        logger = get_run_logger()
        logger.debug("hidden")
        logger.info("shown")
        return logger.isEnabledFor(logging.DEBUG)

    assert job() is False
    assert [record.getMessage() for record in run_records(caplog)] == ["shown"]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=RUN_LOGGER):
        job()
    assert [record.getMessage() for record in run_records(caplog)] == ["hidden", "shown"]


def test_structlog_key_value_style_and_bind_make_record_attributes(caplog: pytest.LogCaptureFixture) -> None:
    """logger.info("rows", count=3) and logger.bind(...) work on the same logger; a field named like a
    LogRecord attribute gets a trailing underscore instead of raising; objects become their repr."""

    class Point:
        def __repr__(self) -> str:
            return "Point(1, 2)"

    @task
    def load() -> None:
        logger = get_run_logger().bind(table="events")
        logger.info("rows", count=3, filename="out.csv", point=Point(), tags=["a", "b"])
        logger.unbind("table").info("unbound")

    @flow
    def pipeline() -> None:
        load()

    pipeline()
    rows, unbound = run_records(caplog)
    assert rows.getMessage() == "rows"
    assert (rows.count, rows.table, rows.filename_, rows.point) == (3, "events", "out.csv", "Point(1, 2)")  # type: ignore[attr-defined]
    assert rows.tags == ["a", "b"]  # type: ignore[attr-defined]
    assert rows.filename == "test_run_logger.py"  # the record's own attribute is untouched
    assert rows.task_name == "load"  # type: ignore[attr-defined]
    assert not hasattr(unbound, "table")


def test_run_logger_lines_through_configure_logging_are_one_json_line_each(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """With configure_logging(), each run logger call is one JSON line (run fields, its key-value
    fields, level, logger name) and nothing else prints it."""
    stream = io.StringIO()
    configure_logging(json=True, stream=stream)

    @flow
    def job() -> str | None:
        get_run_logger().debug("hidden at INFO")
        get_run_logger().info("loaded %s", "events", count=3)
        return runtime.flow_run.id

    flow_run_id = job()
    (line,) = [json.loads(each) for each in stream.getvalue().splitlines()]
    assert (line["event"], line["level"], line["logger"]) == ("loaded events", "info", RUN_LOGGER)
    assert (line["count"], line["flow_run_id"], line["flow_name"]) == (3, flow_run_id, "job")
    assert line["trace_id"] is not None
    assert capsys.readouterr().err == ""


def test_run_logger_lines_are_exported_with_trace_ids_and_attributes(
    exported: InMemoryLogRecordExporter, spans: CapturedSpans
) -> None:
    """Through the OTel handler: body text, severity, the task span's ids and the run attributes."""

    @task
    def work() -> None:
        get_run_logger().info("fetched %d rows", 5, extra={"url": "http://x"}, table="events")

    @flow
    def pipeline() -> None:
        work()

    pipeline()
    (record,) = exported.get_finished_logs()
    log = record.log_record
    trace_id, span_id = span_hex(spans.find("task work"))
    assert (log.body, log.severity_text) == ("fetched 5 rows", "INFO")
    assert (trace.format_trace_id(log.trace_id or 0), trace.format_span_id(log.span_id or 0)) == (
        trace_id,
        span_id,
    )
    attributes = dict(log.attributes or {})
    assert (attributes["url"], attributes["table"], attributes["task_name"]) == ("http://x", "events", "work")
    assert attributes["trace_id"] == trace_id
    assert attributes["task_run_id"] is not None
    assert "deployment_name" not in attributes  # None: left out


def test_run_logger_lines_reach_a_real_otlp_grpc_receiver(spans: CapturedSpans) -> None:
    """Through the OTLP/gRPC exporter to a receiver on loopback: each line arrives once, body as text,
    trace ids of its span, its fields as attributes."""
    with OtlpReceiver() as receiver:
        provider = LoggerProvider(shutdown_on_exit=False)
        provider.add_log_record_processor(
            BatchLogRecordProcessor(OTLPLogExporter(endpoint=receiver.grpc_endpoint, insecure=True))
        )
        instrument_logging(provider)

        @flow
        def pipeline() -> None:
            logger = get_run_logger()
            logger.info("one", n=1)
            logger.warning("two %s", "args")

        try:
            pipeline()
            assert provider.force_flush(10_000)
            logs = receiver.wait_for_logs(2, timeout=10)
        finally:
            provider.shutdown()
    trace_id, span_id = span_hex(spans.find("flow pipeline"))
    assert sorted(log["body"] for log in logs) == ["one", "two args"]
    assert all((log["trace_id"], log["span_id"]) == (trace_id, span_id) for log in logs)
    one = next(log for log in logs if log["body"] == "one")
    assert (one["attributes"]["n"], one["attributes"]["flow_name"]) == (1, "pipeline")
