"""Stdlib ``logging`` records, and the structlog events routed through them, as OpenTelemetry log records.

:class:`OTelLogHandler` is a ``logging.Handler`` that emits every record it sees to an OpenTelemetry
``LoggerProvider`` (the global one unless given), which batches and exports it (OTLP, the local
telemetry file, ...). Only the OpenTelemetry *API* is used here; the provider brings the SDK.

What a record becomes:

- **body**: the message: structlog's ``event``, or ``record.getMessage()`` for a plain ``logging`` line;
- **severity**: from the ``logging`` level (``WARNING`` is ``WARN``, ``CRITICAL`` is ``FATAL``);
- **trace_id / span_id**: those of the span active where the line was logged (the record's context);
- **attributes**: the structlog event dict (or a ``logging`` call's ``extra=``), minus what has a field of
  its own (``event``, ``level``, ``timestamp``, ``logger``, ``exc_info``), plus the run fields
  (``deployment_name``, ``flow_run_id``, ...; values given explicitly win). ``None`` values are left
  out; values OTLP cannot carry are written as their ``repr``, as structlog's JSON renderer does;
- **exceptions**: ``exc_info`` becomes ``exception.type``, ``exception.message`` and
  ``exception.stacktrace``, the semantic-convention attributes.

Records of the ``opentelemetry`` loggers are not exported: they are mostly the exporters' own
complaints, and exporting them would feed a failing exporter its own errors.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Mapping, Set
from time import time_ns
from typing import Any, Final

from opentelemetry._logs import (
    Logger,
    LoggerProvider,
    LogRecord,
    NoOpLogger,
    SeverityNumber,
    get_logger_provider,
)
from opentelemetry.context import get_current
from opentelemetry.semconv.attributes import exception_attributes
from opentelemetry.util.types import AnyValue

from otel_runtime._base.guard import warn_once
from otel_runtime._core.exception_text import bounded_stacktrace, exception_attributes_of
from otel_runtime._engine.log_records import RESERVED, EventText, any_value
from otel_runtime._engine.run_fields import run_fields

__all__ = ["OTelLogHandler", "is_otel_handler"]

# Every attribute a plain LogRecord has (plus what formatters add): the rest came from ``extra=``.
_RECORD_ATTRIBUTES: Final = RESERVED | {"_logger", "_name"}  # set by structlog's wrap_for_formatter
_NO_KEYS: Final[frozenset[str]] = frozenset()
# Keys of a structlog event dict that the log record carries in fields of its own.
_EVENT_DICT_NATIVE: Final = frozenset(
    {"event", "level", "log_level", "timestamp", "logger", "exc_info", "exception"}
    | {"_record", "_from_structlog"}  # added by ProcessorFormatter in formatter chains
)
_SEVERITY_TEXT: Final = {"WARNING": "WARN", "CRITICAL": "FATAL"}
_emitting = contextvars.ContextVar("otel_runtime_exporting_a_log_record", default=False)


def _severity_numbers() -> tuple[SeverityNumber, ...]:
    """The OpenTelemetry severity of each ``logging`` level 0-53 (the log data model's mapping)."""
    bases = (SeverityNumber.DEBUG, SeverityNumber.INFO, SeverityNumber.WARN, SeverityNumber.ERROR)
    numbers = [SeverityNumber.UNSPECIFIED] * 10
    for base in (*bases, SeverityNumber.FATAL):  # DEBUG 10, DEBUG2 11, DEBUG3 12, DEBUG4 13-19, INFO 20...
        numbers += [SeverityNumber(base.value + min(offset, 3)) for offset in range(10)]
    return tuple(numbers[:54])


_SEVERITY: Final = _severity_numbers()


def is_otel_handler(handler: logging.Handler) -> bool:
    """Whether ``handler`` exports to OpenTelemetry: ours, or an OpenTelemetry ``LoggingHandler``."""
    kind = type(handler)
    return isinstance(handler, OTelLogHandler) or (
        kind.__name__ == "LoggingHandler" and kind.__module__.startswith("opentelemetry.")
    )


class OTelLogHandler(logging.Handler):
    """Emit ``logging`` records (structlog events included) as OpenTelemetry log records.

    ``logger_provider`` defaults to the global provider, looked up at each record, so a provider set
    later (by ``otel_runtime.configure()``) is picked up. Never raises into the logging call.
    """

    exports_only = True
    """It prints nothing: the run logger's console fallback still prints beside it."""

    def __init__(self, level: int = logging.NOTSET, logger_provider: LoggerProvider | None = None) -> None:
        super().__init__(level)
        self.logger_provider = logger_provider
        self._loggers: dict[str, Logger] = {}
        self._loggers_of: LoggerProvider | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Translate ``record`` and emit it through the provider."""
        name = record.name
        if _emitting.get() or name == "opentelemetry" or name.startswith("opentelemetry."):
            return
        token = _emitting.set(True)  # whatever the export logs is not exported again
        try:
            logger = self._logger(name)
            if not isinstance(logger, NoOpLogger):
                logger.emit(translate(record))
        except Exception:
            warn_once("log-export", "otel_runtime could not export a log record", exc_info=True)
        finally:
            _emitting.reset(token)

    def _logger(self, name: str) -> Logger:
        provider = self.logger_provider or get_logger_provider()
        if provider is not self._loggers_of:
            self._loggers, self._loggers_of = {}, provider
        logger = self._loggers.get(name)
        if logger is None:
            logger = self._loggers[name] = provider.get_logger(name)
        return logger


def translate(record: logging.LogRecord) -> LogRecord:
    """The OpenTelemetry log record for one ``logging`` record (see the module docstring)."""
    message = record.msg
    fields: Mapping[str, Any]
    skip: Set[str]
    if isinstance(message, dict) and hasattr(record, "_logger"):
        # A structlog event, passed on whole by ProcessorFormatter.wrap_for_formatter.
        body = message.get("event")
        fields = message
        skip = _EVENT_DICT_NATIVE
        exc_info = message.get("exc_info")
        rendered = message.get("exception")  # a chain that ran format_exc_info before handing over
    elif type(message) is EventText:  # a structlog event as a plain record: its fields, in one step
        body = _message(record)
        fields = message.fields
        skip = _NO_KEYS
        exc_info, rendered = record.exc_info, None
    else:
        body = _message(record)
        fields = vars(record)
        skip = fields.keys() & _RECORD_ATTRIBUTES  # usually all of them: extra= keys are rare
        exc_info, rendered = record.exc_info, None

    attributes: dict[str, AnyValue] = {}
    if len(skip) < len(fields):
        for key, value in fields.items():
            if value is not None and key not in skip and isinstance(key, str):
                attributes[key] = any_value(value)
    for key, value in run_fields().items():
        if value is not None:
            attributes.setdefault(key, value)
    exception = _exception_attributes(exc_info)
    if exception:
        attributes.update(exception)
    elif isinstance(rendered, str):
        attributes[exception_attributes.EXCEPTION_STACKTRACE] = bounded_stacktrace(rendered)

    levelno = record.levelno
    return LogRecord(
        timestamp=int(record.created * 1e9),
        observed_timestamp=time_ns(),
        context=get_current(),
        severity_text=_SEVERITY_TEXT.get(record.levelname, record.levelname),
        severity_number=_SEVERITY[levelno] if 0 <= levelno <= 53 else SeverityNumber.FATAL4,
        body=None if body is None else any_value(body),
        attributes=attributes,
    )


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that do not fit the format: logging itself would complain
        return str(record.msg)


def _exception_attributes(exc_info: object) -> dict[str, AnyValue]:
    """``exception.type`` / ``.message`` / ``.stacktrace`` for ``exc_info`` in any of its logging forms."""
    if exc_info is True:
        exc_info = sys.exc_info()
    if isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3 or not isinstance(exc_info[1], BaseException):
        return {}
    # As on span events: the qualified class name; the message and traceback bounded (exception_text).
    return dict(exception_attributes_of(exc_info[1]))


OTelLogHandler.__module__ = "otel_runtime.logging"
