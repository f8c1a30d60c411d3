"""Every row of the table by its short name; the accessor, Prefect and import rows live here.

The run rows expect the set-up of ``bench.__main__``: the ``bench_provider()`` tracer provider is
global and the deployment ``DEPLOYMENT`` is active.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable

from opentelemetry import baggage, trace

from bench import export_rows, log_rows, run_rows
from bench._floor import bare_run
from bench._imports import import_row
from bench._report import TIMES, Row, format_ns, ratio_row
from bench._timing import compare, rounds
from bench._workloads import in_flow, in_task, task_shape
from otel_runtime import runtime

__all__ = ["ROWS", "accessor_rows", "imports_row", "prefect_row"]


# runtime accessors inside a task, against opentelemetry.baggage.get_baggage
def _flow_run_id(n: int) -> None:
    for _ in range(n):
        _ = runtime.flow_run.id


def _deployment_name(n: int) -> None:
    for _ in range(n):
        _ = runtime.deployment.name


def _task_run_name(n: int) -> None:
    for _ in range(n):
        _ = runtime.task_run.name


def _baggage(key: str):
    def read(n: int) -> None:
        get_baggage = baggage.get_baggage
        for _ in range(n):
            _ = get_baggage(key)

    return read


def accessor_rows() -> list[Row]:
    cases = [
        ("`runtime.flow_run.id` in a task", _flow_run_id, "flow_run.id"),
        ("`runtime.deployment.name` in a task", _deployment_name, "deployment.name"),
        ("`runtime.task_run.name` in a task", _task_run_name, "task_run.id"),
    ]

    def measure() -> list[Row]:
        return [
            ratio_row(
                name,
                compare(ours, _baggage(key), n=100_000, rounds=rounds(15), minus_loop=True),
                1.5,
                max_ns=1_000,
            )
            for name, ours, key in cases
        ]

    return in_flow(lambda: in_task(measure))


# Prefect, when it is installed
PREFECT_QUIET = {
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_LOGGING_LEVEL": "CRITICAL",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
}


def prefect_row() -> Row | None:
    if importlib.util.find_spec("prefect") is None:
        return None
    # Prefect as installed, minus its console lines, its shutdown noise and its usage telemetry.
    for name, value in PREFECT_QUIET.items():
        os.environ.setdefault(name, value)
    import prefect

    shape, tracer = task_shape(), trace.get_tracer("bench.floor")

    @prefect.task
    def prefect_noop() -> None:
        """A Prefect task run with an empty body."""

    def ours(n: int) -> None:
        for _ in range(n):
            prefect_noop()

    def floor(n: int) -> None:
        for _ in range(n):
            bare_run(tracer, shape)

    @prefect.flow
    def prefect_host():
        return compare(ours, floor, n=50, rounds=rounds(9))

    result = prefect_host()
    return Row(
        "Prefect task run in a Prefect flow (for comparison)",
        format_ns(result.ours_ns),
        format_ns(result.floor_ns),
        f"{result.ratio:.0f}{TIMES}",
        "—",
        None,
    )


def imports_row() -> Row:
    return import_row(rounds(21))


ROWS: dict[str, Callable[[], Row | list[Row] | None]] = {
    "import": imports_row,
    "task": run_rows.task_run_row,
    "flow": run_rows.flow_run_row,
    "map": run_rows.map_row,
    "parameter": run_rows.parameter_row,
    "accessors": accessor_rows,
    "log": log_rows.log_processor_row,
    "structlog": log_rows.structlog_line_row,
    "stdlib": log_rows.stdlib_line_row,
    "async": run_rows.async_gather_row,
    "memory": run_rows.memory_row,
    "metrics": run_rows.metrics_row,
    "encoding": export_rows.encoding_row,
    "otlp": export_rows.otlp_row,
    "otlp-raw": export_rows.otlp_raw_row,
    "prefect": prefect_row,
}
"""Every row by its short name, in table order (``--rows`` picks among them)."""
