"""log_prints=True turns print inside a run into a log line of the run logger (a stdlib logging record)."""

from __future__ import annotations

import inspect
import json
import logging
import sys

import pytest
import structlog

from otel_runtime import flow, task

RUN_LOGGER = "otel_runtime.run"


def run_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == RUN_LOGGER]


def test_print_inside_a_log_prints_flow_becomes_a_log_record_with_run_ids(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """print in a log_prints flow is one INFO record of the run logger (with the run's ids, located at
    the print call, as Prefect's) instead of text on stdout."""

    @flow(log_prints=True)
    def chatty() -> None:
        print("hello", "world")

    line = inspect.getsourcelines(chatty.fn)[1] + 2  # type: ignore[attr-defined]
    chatty()
    (record,) = run_records(caplog)
    assert (record.levelno, record.getMessage()) == (logging.INFO, "hello world")
    assert record.flow_run_id is not None  # type: ignore[attr-defined]
    assert (record.filename, record.lineno, record.funcName) == ("test_log_prints.py", line, "chatty")
    assert capsys.readouterr().out == ""


def test_tasks_inherit_log_prints_and_may_turn_it_off(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """A task in a log_prints flow logs its prints; a task with log_prints=False prints normally."""

    @task
    def inherits() -> None:
        print("from inheriting task")

    @task(log_prints=False)
    def opts_out() -> None:
        print("from opted-out task")

    @flow(log_prints=True)
    def parent() -> None:
        inherits()
        opts_out()

    parent()
    assert [record.getMessage() for record in run_records(caplog)] == ["from inheriting task"]
    assert run_records(caplog)[0].task_run_id is not None  # type: ignore[attr-defined]
    assert "from opted-out task" in capsys.readouterr().out


def test_print_to_stderr_and_print_outside_runs_are_untouched(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """Only prints meant for stdout inside a log_prints run are captured."""

    @flow(log_prints=True)
    def to_stderr() -> None:
        print("to stderr", file=sys.stderr)

    to_stderr()
    print("outside")
    captured = capsys.readouterr()
    assert run_records(caplog) == []
    assert "to stderr" in captured.err
    assert "outside" in captured.out


def test_structlogs_print_logger_neither_recurses_nor_is_captured(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    """With structlog writing through its PrintLogger (which itself calls print), a print in a
    log_prints run is one run logger record, and structlog's own line is printed once, not captured."""
    structlog.configure(
        processors=[structlog.processors.JSONRenderer()], logger_factory=structlog.PrintLoggerFactory()
    )

    @task
    def in_thread(n: int) -> None:
        print("from task", n)

    @flow(log_prints=True)
    def printing() -> str:
        print("printed once")
        structlog.get_logger().info("structlog line")
        for future in in_thread.map(range(3)):
            future.result()
        return "done"

    assert printing() == "done"
    records = run_records(caplog)
    assert sorted(record.getMessage() for record in records) == [
        "from task 0",
        "from task 1",
        "from task 2",
        "printed once",
    ]
    assert len({record.task_run_id for record in records if record.getMessage() != "printed once"}) == 3  # type: ignore[attr-defined]
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["structlog line"]
