"""The log rows: the structlog processor in a chain, and whole lines through ``configure_logging()``.

Every line is written inside a task run inside a flow run, to an in-memory stream, so the run fields
are all present and no terminal or file is timed.
"""

from __future__ import annotations

import importlib.util
import io
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import structlog

from bench._report import TIMES, Row, format_ns
from bench._timing import Comparison, compare, rounds
from bench._workloads import in_flow, in_task
from otel_runtime.logging import add_run_context, configure_logging

__all__ = ["log_processor_row", "stdlib_line_row", "structlog_line_row"]

HAS_ORJSON = importlib.util.find_spec("orjson") is not None
_HEAD = [
    structlog.contextvars.merge_contextvars,
    structlog.processors.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def _in_run(measure: Callable[[], Any]) -> Any:
    return in_flow(lambda: in_task(measure))


def _lines(log: Any, sink: io.StringIO | io.BytesIO) -> Callable[[int], None]:
    def write(n: int) -> None:
        sink.seek(0)
        sink.truncate()
        for index in range(n):
            log.info("bench line", index=index)

    return write


# the structlog processor in a JSON-rendering chain: stdlib json, and orjson when installed
def _processor_cost(renderer: Any, binary: bool) -> tuple[Comparison, Comparison, int]:
    stream: io.StringIO | io.BytesIO = io.BytesIO() if binary else io.StringIO()
    sink = structlog.BytesLogger(stream) if binary else structlog.WriteLogger(stream)  # type: ignore[arg-type]

    def logger(*processors: Any) -> Any:
        return structlog.wrap_logger(sink, processors=[*_HEAD, *processors, renderer])

    def measure() -> tuple[Comparison, Comparison, int]:
        fields = add_run_context(None, "info", {})  # what the processor adds here, as constants

        def stamp(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
            event_dict.update(fields)
            return event_dict

        with_fields, stamped, without = logger(add_run_context), logger(stamp), logger()
        total = compare(_lines(with_fields, stream), _lines(without, stream), n=10_000, rounds=rounds(15))
        reading = compare(_lines(with_fields, stream), _lines(stamped, stream), n=10_000, rounds=rounds(15))
        return total, reading, len(fields)

    return _in_run(measure)  # type: ignore[no-any-return]


def _processor_row(label: str, total: Comparison, reading: Comparison, count: int, target: bool) -> Row:
    return Row(
        f"`add_run_context` in a JSON chain ({label}), per line",
        format_ns(total.ours_ns),
        format_ns(total.floor_ns),
        f"+{format_ns(total.added_ns)}: {format_ns(reading.added_ns)} the processor, "
        f"{format_ns(total.added_ns - reading.added_ns)} rendering its {count} fields",
        "adds ≤ 1 µs" if target else "—",
        total.added_ns <= 1_000 if target else None,
    )


def log_processor_row() -> list[Row]:
    made = [
        _processor_row(
            "stdlib `json`",
            *_processor_cost(structlog.processors.JSONRenderer(), binary=False),
            target=not HAS_ORJSON,
        )
    ]
    if HAS_ORJSON:
        import orjson

        renderer = structlog.processors.JSONRenderer(serializer=orjson.dumps)
        made.append(_processor_row("`orjson`", *_processor_cost(renderer, binary=True), target=True))
    return made


# whole lines through configure_logging(), against bare lines with no run fields
@contextmanager
def _configured(sink: io.StringIO) -> Iterator[None]:
    """``configure_logging(json=True)`` writing to ``sink``; the logging set-up is restored after."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    configured = configure_logging(json=True, stream=sink)
    try:
        yield
    finally:
        root.removeHandler(configured)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        root.setLevel(level)
        structlog.reset_defaults()


def _json_target() -> tuple[str, float]:
    return (f"≤ 1{TIMES} (orjson installed)", 1.0) if HAS_ORJSON else (f"≤ 1.5{TIMES} (no orjson)", 1.5)


def structlog_line_row() -> Row:
    ours_sink, floor_sink = io.StringIO(), io.StringIO()
    bare = structlog.wrap_logger(
        structlog.WriteLogger(floor_sink), processors=[*_HEAD[1:], structlog.processors.JSONRenderer()]
    )
    with _configured(ours_sink):
        ours = structlog.get_logger("bench")
        result = _in_run(
            lambda: compare(_lines(ours, ours_sink), _lines(bare, floor_sink), n=5_000, rounds=rounds(15))
        )
    target, bound = _json_target()
    return Row(
        "structlog line through `configure_logging()` (JSON, in a task run) vs bare `JSONRenderer` line",
        format_ns(result.ours_ns),
        format_ns(result.floor_ns),
        f"{result.ratio:.2f}{TIMES}",
        target,
        result.ratio <= bound,
    )


class _JsonFormatter(logging.Formatter):
    """The floor's formatter: a JSON object of the time, level, logger name and message."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(
            {
                "timestamp": self.formatTime(record),
                "level": record.levelname.lower(),
                "logger": record.name,
                "event": record.getMessage(),
            }
        )


def _stdlib_lines(log: logging.Logger, sink: io.StringIO) -> Callable[[int], None]:
    def write(n: int) -> None:
        sink.seek(0)
        sink.truncate()
        for index in range(n):
            log.info("bench line %d", index)

    return write


def stdlib_line_row() -> Row:
    ours_sink, floor_sink = io.StringIO(), io.StringIO()
    bare = logging.getLogger("bench.floor")
    bare.propagate = False
    floor_handler = logging.StreamHandler(floor_sink)
    floor_handler.setFormatter(_JsonFormatter())
    bare.addHandler(floor_handler)
    bare.setLevel(logging.INFO)
    try:
        with _configured(ours_sink):
            ours = logging.getLogger("bench.stdlib")
            result = _in_run(
                lambda: compare(
                    _stdlib_lines(ours, ours_sink),
                    _stdlib_lines(bare, floor_sink),
                    n=5_000,
                    rounds=rounds(15),
                )
            )
    finally:
        bare.removeHandler(floor_handler)
    return Row(
        "stdlib `logging` line through `configure_logging()` vs bare line with a JSON formatter",
        format_ns(result.ours_ns),
        format_ns(result.floor_ns),
        f"{result.ratio:.2f}{TIMES}",
        f"≤ 1.5{TIMES}",
        result.ratio <= 1.5,
    )
