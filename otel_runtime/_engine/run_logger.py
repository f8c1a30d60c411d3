"""The run logger: a stdlib ``logging`` logger bound to the active run, as Prefect's ``get_run_logger``.

:class:`RunLogger` is a ``logging.LoggerAdapter`` over the ``otel_runtime.run`` logger, like Prefect's
``PrefectLogAdapter`` over ``prefect.flow_runs``. Its records go through ``logging``, so every handler
sees them (``caplog``, ``basicConfig``, OpenTelemetry's ``LoggingHandler``, ours), with:

- the run fields as record attributes (``deployment_name``, ``flow_run_id``, ``flow_run_name``,
  ``task_run_id``, ``task_run_name``, bound when the logger is made; ``trace_id`` and ``span_id`` of
  the span active at each line), plus Prefect's ``flow_name`` and ``task_name``;
- the ``logging`` call as it is: ``%``-style arguments, ``extra={...}`` (merged over the bound values,
  as Prefect's adapter does), ``exc_info``, ``stack_info``, ``stacklevel``;
- structlog's key-value style too: ``logger.info("rows", count=3)`` makes ``count`` a record attribute,
  and ``logger.bind(table="events")`` a logger with one more bound value.

The ``otel_runtime.run`` logger has level ``INFO`` unless another is set on it (Prefect's default level:
``DEBUG`` lines are dropped); ``configure_logging(level=...)`` sets it with the root logger's. When no
handler outside the OpenTelemetry exporters would see its records (no logging set up at all), a
console handler prints them to ``sys.stderr`` in Prefect's format, as Prefect does out of the box.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import MutableMapping
from typing import Any, Final

from otel_runtime._base import keys as _keys
from otel_runtime._engine.log_records import RESERVED, record_extra
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.run_fields import run_fields

__all__ = ["RunLogger", "run_logger", "set_run_logger_level"]

_LOG_KWARGS: Final = frozenset({"exc_info", "stack_info", "stacklevel", "extra"})
_RUN_KEYS: Final = frozenset({*_keys.LOG_FIELDS, _keys.LOG_FLOW_NAME, _keys.LOG_TASK_NAME})
_TRACE_ID, _SPAN_ID = _keys.LOG_TRACE_ID, _keys.LOG_SPAN_ID
_lock = threading.Lock()
_prepared: list[bool] = []  # one item once the run logger has its default level and console fallback


class RunLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """The run logger: a ``logging.LoggerAdapter`` whose records carry the run fields (module doc)."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Merge the bound values, the trace ids of this line, key-value fields and ``extra=``."""
        fields = dict(self.extra or {})
        current = run_fields()
        fields[_TRACE_ID] = current[_TRACE_ID]
        fields[_SPAN_ID] = current[_SPAN_ID]
        if not _LOG_KWARGS.issuperset(kwargs):  # structlog style: logger.info("rows", count=3)
            for key in [key for key in kwargs if key not in _LOG_KWARGS]:
                fields[key] = kwargs.pop(key)
        extra = record_extra(fields)
        given = kwargs.get("extra")
        if given:  # stdlib's extra=: values as given, names made safe
            extra = {
                **extra,
                **{f"{key}_" if key in RESERVED else key: value for key, value in given.items()},
            }
        kwargs["extra"] = extra
        return msg, kwargs

    def bind(self, **values: Any) -> RunLogger:
        """A run logger with ``values`` bound as well (structlog's ``bind``)."""
        return RunLogger(self.logger, {**(self.extra or {}), **values})

    def unbind(self, *keys: str) -> RunLogger:
        """A run logger without the bound ``keys``; ``KeyError`` for one that is not bound."""
        bound = dict(self.extra or {})
        for key in keys:
            del bound[key]
        return RunLogger(self.logger, bound)

    def try_unbind(self, *keys: str) -> RunLogger:
        """Like :meth:`unbind`, ignoring keys that are not bound."""
        bound = dict(self.extra or {})
        for key in keys:
            bound.pop(key, None)
        return RunLogger(self.logger, bound)

    def getChild(self, suffix: str) -> RunLogger:  # noqa: N802 - logging's name
        """The run logger of a child ``logging`` logger, with the same bound values (as Prefect's)."""
        return RunLogger(self.logger.getChild(suffix), dict(self.extra or {}))


class _Console(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints run logger lines to ``sys.stderr`` in Prefect's format, only when nothing else would.

    "Nothing else" is no handler on the way up to the root logger other than this one and handlers
    that only export (OpenTelemetry's, ours): a program that set up no logging still sees its flow's
    lines, and one that did (``basicConfig``, ``configure_logging``, pytest) sees each line once.
    """

    def __init__(self, owner: logging.Logger) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(_PrefectFormatter())
        self._owner = owner

    def handle(self, record: logging.LogRecord) -> bool:
        if self._someone_else_handles(record):
            return False
        return bool(super().handle(record))

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr  # whatever it is now (pytest's capture, redirect_stderr); under the lock
        super().emit(record)

    def _someone_else_handles(self, record: logging.LogRecord) -> bool:
        logger: logging.Logger | None = self._owner  # the run logger, where this handler is
        while logger is not None:
            for handler in logger.handlers:
                if handler is not self and not _exports_only(handler) and record.levelno >= handler.level:
                    return True
            logger = logger.parent if logger.propagate else None
        return False


def _exports_only(handler: logging.Handler) -> bool:
    """Whether ``handler`` sends records somewhere other than a person: an OpenTelemetry exporter's."""
    if getattr(handler, "exports_only", False):
        return True
    return type(handler).__module__.startswith("opentelemetry.")


_CORRELATION_ATTRIBUTES: Final = frozenset(
    {"otelSpanID", "otelTraceID", "otelTraceSampled", "otelServiceName"}
)
"""What ``opentelemetry-instrumentation-logging`` adds to every record: not the line's own fields."""


class _PrefectFormatter(logging.Formatter):
    """``12:00:00.123 | INFO    | Task run 'load-2f1' - message key=value``, as Prefect prints runs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | ", "%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = vars(record)
        task_run_name = fields.get(_keys.LOG_TASK_RUN_NAME)
        run = (
            f"Task run {task_run_name!r}"
            if task_run_name is not None
            else f"Flow run {fields.get(_keys.LOG_FLOW_RUN_NAME)!r}"
        )
        pairs = "".join(
            f" {key}={value}"
            for key, value in fields.items()
            if key not in RESERVED and key not in _RUN_KEYS and key not in _CORRELATION_ATTRIBUTES
        )
        return f"{super().formatMessage(record)}{run} - {record.message}{pairs}"


def _prepare(logger: logging.Logger) -> None:
    """Prefect's default level (``INFO``) while none is set, and (once) the console fallback."""
    with _lock:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        if not _prepared:
            if not any(isinstance(handler, _Console) for handler in logger.handlers):
                logger.addHandler(_Console(logger))
            _prepared.append(True)


def set_run_logger_level(level: int | str) -> None:
    """The run logger's level (``configure_logging(level=...)`` sets it with the root logger's)."""
    logger = logging.getLogger(_keys.RUN_LOGGER_NAME)
    _prepare(logger)
    logger.setLevel(level)


def run_logger(**values: Any) -> RunLogger:
    """A run logger bound to the active run's fields (outside a run: every field ``None``) and ``values``."""
    logger = logging.getLogger(_keys.RUN_LOGGER_NAME)
    if logger.level == logging.NOTSET or not _prepared:
        _prepare(logger)
    fields: dict[str, Any] = {
        key: value for key, value in run_fields().items() if key not in (_TRACE_ID, _SPAN_ID)
    }
    flow = FlowRunContext.get()
    task = TaskRunContext.get()
    fields[_keys.LOG_FLOW_NAME] = flow.flow_run.flow_name if flow is not None else None
    in_task = task is not None and fields[_keys.LOG_TASK_RUN_ID] == task.task_run.id
    fields[_keys.LOG_TASK_NAME] = task.task_run.task_name if in_task and task is not None else None
    return RunLogger(logger, {**fields, **values})


RunLogger.__module__ = "otel_runtime.logging"
