"""log_prints=True turns print inside a run into a log line of the run logger."""

from __future__ import annotations

import sys

import structlog
from structlog.testing import capture_logs

from otel_runtime import flow, task


def test_print_inside_a_log_prints_flow_becomes_a_log_event_with_run_ids() -> None:
    """print in a log_prints flow is logged (with the run's ids) instead of written to stdout."""

    @flow(log_prints=True)
    def chatty() -> None:
        print("hello", "world")

    with capture_logs() as logs:
        chatty()
    events = [entry for entry in logs if entry["event"] == "hello world"]
    assert len(events) == 1
    assert events[0]["flow_run_id"] is not None


def test_tasks_inherit_log_prints_and_may_turn_it_off(capsys: object) -> None:
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

    with capture_logs() as logs:
        parent()
    assert [entry["event"] for entry in logs] == ["from inheriting task"]
    assert "from opted-out task" in capsys.readouterr().out  # type: ignore[attr-defined]


def test_print_to_stderr_and_print_outside_runs_are_untouched(capsys: object) -> None:
    """Only prints meant for stdout inside a log_prints run are captured."""

    @flow(log_prints=True)
    def to_stderr() -> None:
        print("to stderr", file=sys.stderr)

    with capture_logs() as logs:
        to_stderr()
        print("outside")
    captured = capsys.readouterr()  # type: ignore[attr-defined]
    assert logs == []
    assert "to stderr" in captured.err
    assert "outside" in captured.out


def test_default_structlog_print_logger_does_not_recurse(capsys: object) -> None:
    """With structlog's default PrintLogger (which itself calls print) a log_prints run logs once."""
    structlog.reset_defaults()

    @flow(log_prints=True)
    def printing() -> str:
        print("printed once")
        return "done"

    assert printing() == "done"
    lines = capsys.readouterr().out.splitlines()  # type: ignore[attr-defined]
    assert len([line for line in lines if "printed once" in line]) == 1
