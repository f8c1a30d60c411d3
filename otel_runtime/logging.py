"""Structured logs that join traces: the structlog processor, a ready logging set-up, the run logger.

Every log line says which deployment, flow run and task run wrote it, with the trace and span ids to
click through to the trace. Two ways in:

- no structlog configuration yet: call :func:`configure_logging` once (JSON lines, or a console
  renderer on a terminal); stdlib ``logging`` lines from other libraries get the same fields;
- your own structlog chain: add :func:`add_run_context` to it, after ``merge_contextvars`` and before
  the renderer::

      structlog.configure(processors=[
          structlog.contextvars.merge_contextvars,
          structlog.processors.add_log_level,
          add_run_context,
          structlog.processors.JSONRenderer(),
      ])

To export the lines as OpenTelemetry log records (OTLP or the local telemetry file),
:func:`instrument_logging` puts an :class:`OTelLogHandler` on the root ``logging`` logger; structlog
events reach it when structlog logs through ``logging`` (as :func:`configure_logging` sets up).
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

import structlog
from opentelemetry._logs import LoggerProvider
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._engine.run_fields import EMPTY_FIELDS, logger_fields, run_fields
from otel_runtime._surface.log_export import OTelLogHandler, is_otel_handler
from otel_runtime.context import get_run_context

__all__ = ["OTelLogHandler", "add_run_context", "configure_logging", "get_run_logger", "instrument_logging"]

_FIELD_KEYS = frozenset(_keys.LOG_FIELDS)
_lock = threading.Lock()
_console_handler: logging.Handler | None = None
_otel_handler: OTelLogHandler | None = None


def add_run_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """structlog processor: stamp the run fields of the active context on the event.

    Adds ``deployment_name``, ``flow_run_id``, ``flow_run_name``, ``task_run_id``, ``task_run_name``,
    ``trace_id`` (32 hex) and ``span_id`` (16 hex), each ``None`` when absent. Values the caller passed
    explicitly win. Reads the active OpenTelemetry context, so it works in threads and processes that
    received a carrier, and outside any run. Never raises.
    """
    try:
        fields = run_fields()
    except Exception:
        warn_once("log-fields", "otel_runtime could not read the run context for a log line", exc_info=True)
        fields = EMPTY_FIELDS
    if _FIELD_KEYS.isdisjoint(event_dict):
        event_dict.update(fields)
    else:
        for key, value in fields.items():
            event_dict.setdefault(key, value)
    return event_dict


def get_run_logger(**initial_values: Any) -> Any:
    """A structlog logger bound to the active run's ids and names (``deployment_name`` included).

    Raises :class:`~otel_runtime.context.MissingContextError` outside a flow run or task run, as
    Prefect's ``get_run_logger`` does. The trace and span ids are left to :func:`add_run_context`, which
    reads them where each line is logged.
    """
    get_run_context()
    return structlog.get_logger(_keys.RUN_LOGGER_NAME).bind(**logger_fields(), **initial_values)


def _drop_empty_run_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Console only: leave out the run fields that are ``None``, which a reader does not need to see."""
    for key in _keys.LOG_FIELDS:
        if key in event_dict and event_dict[key] is None:
            del event_dict[key]
    return event_dict


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTILINE_KEYS = frozenset({"exception", "stack"})
"""Rendered tracebacks and stacks: the only values whose newlines reach the console as newlines."""


def _escape_controls(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Console only: write control characters (newline, escape, carriage return, ...) as escapes.

    A message from anywhere (a library echoing a received header, say) must not start a fake line,
    drive the terminal or overwrite the line: one event is one console line. Tracebacks keep their
    newlines.
    """
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _MULTILINE_KEYS and not value.isprintable():
            event_dict[key] = _CONTROL.sub(lambda match: repr(match.group())[1:-1], value)
    return event_dict


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:
        return False


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capture, ``redirect_stderr``)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # under the handler's lock, taken by Handler.handle
        super().emit(record)


def configure_logging(
    *,
    json: bool | None = None,
    level: int | str = logging.INFO,
    stream: TextIO | None = None,
    processors: Sequence[Processor] = (),
) -> logging.Handler:
    """Set up structlog and stdlib ``logging`` to write run-stamped lines; calling it again replaces it.

    - ``json``: JSON lines (``True``) or structlog's console renderer (``False``); by default the
      console renderer when ``stream`` is a terminal, JSON lines otherwise (files, pipes, containers).
    - ``level``: the root ``logging`` level; lines below it are dropped before any processing.
    - ``stream``: where lines go; by default ``sys.stderr`` (looked up at each line).
    - ``processors``: your own processors, run on every line after the run fields are added.

    structlog is routed through ``logging`` (``structlog.stdlib.LoggerFactory``) and one handler on the
    root logger renders both structlog events and other libraries' ``logging`` records through the same
    processors (structlog's ``ProcessorFormatter``): each gets a timestamp, level, logger name and the
    run fields. Exceptions render as structured tracebacks in JSON (no local variables) and as
    tracebacks on the console. Other handlers on the root logger are left alone (so do not also call
    ``logging.basicConfig()``, or lines print twice). Returns the handler it put on the root logger.
    """
    if json is None:
        json = not _isatty(stream if stream is not None else sys.stderr)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_run_context,
        structlog.processors.StackInfoRenderer(),
        *processors,
    ]
    rendering: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        rendering += [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ]
    else:
        colors = _isatty(stream if stream is not None else sys.stderr)
        rendering += [_drop_empty_run_fields, _escape_controls, structlog.dev.ConsoleRenderer(colors=colors)]
    handler: logging.Handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.ExtraAdder(), *shared], processors=rendering
        )
    )
    global _console_handler  # noqa: PLW0603 - the one handler this function owns
    with _lock:
        root = logging.getLogger()
        if _console_handler is not None:
            root.removeHandler(_console_handler)
        root.addHandler(handler)
        root.setLevel(level)
        _console_handler = handler
        structlog.configure(
            processors=[
                structlog.stdlib.filter_by_level,
                structlog.stdlib.PositionalArgumentsFormatter(),
                *shared,
                structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
            ],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=False,
        )
    return handler


def instrument_logging(
    logger_provider: LoggerProvider | None = None, *, level: int | str = logging.NOTSET
) -> OTelLogHandler:
    """Export ``logging`` records (and structlog events routed through ``logging``) as OTel log records.

    Puts one :class:`OTelLogHandler` on the root logger, sending to ``logger_provider`` (default: the
    global provider, looked up at each record). Calling it again updates that handler. An OpenTelemetry
    ``LoggingHandler`` already on the root logger (from ``opentelemetry-instrument``, say) is removed:
    it would export every line a second time, without the structlog fields. Records below the root
    logger's level never reach any handler: :func:`configure_logging` sets that level.
    """
    global _otel_handler  # noqa: PLW0603 - the one handler this function owns
    with _lock:
        handler = _otel_handler
        if handler is None:
            handler = _otel_handler = OTelLogHandler(logging.NOTSET, logger_provider)
        handler.logger_provider = logger_provider
        handler.setLevel(level)
        root = logging.getLogger()
        for other in list(root.handlers):
            if other is not handler and is_otel_handler(other):
                root.removeHandler(other)
        if handler not in root.handlers:
            root.addHandler(handler)
    return handler
