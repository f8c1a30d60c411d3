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
import sys
import threading
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, TextIO

import structlog
from opentelemetry._logs import LoggerProvider
from structlog.tracebacks import ExceptionDictTransformer
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._engine.log_records import EventText, record_extra
from otel_runtime._engine.run_fields import EMPTY_FIELDS, run_fields
from otel_runtime._engine.run_logger import RunLogger, run_logger, set_run_logger_level
from otel_runtime._surface.json_lines import serializer
from otel_runtime._surface.log_export import OTelLogHandler, is_otel_handler
from otel_runtime._surface.log_lines import (
    LineFormatter,
    NamedLoggerFactory,
    RecordFields,
    StderrHandler,
    drop_empty_run_fields,
    escape_controls,
    write_event,
)
from otel_runtime.context import get_run_context

__all__ = [
    "OTelLogHandler",
    "RunLogger",
    "add_run_context",
    "configure_logging",
    "get_run_logger",
    "instrument_logging",
    "render_to_record",
]

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


def get_run_logger(**extra: Any) -> RunLogger:
    """The run logger: a stdlib ``logging`` logger bound to the active run, as Prefect's.

    A ``logging.LoggerAdapter`` over the ``otel_runtime.run`` logger. Its records carry the run fields
    as attributes (``deployment_name``, ``flow_run_id``, ``flow_run_name``, ``task_run_id``,
    ``task_run_name``, and ``trace_id`` / ``span_id`` of each line's span), Prefect's ``flow_name`` and
    ``task_name``, and ``extra``. It takes ``%``-style arguments, ``extra=``, ``exc_info``,
    ``stack_info`` and ``stacklevel``, and structlog's key-value style (``logger.info("rows",
    count=3)``, ``logger.bind(...)``). ``DEBUG`` lines are dropped at its default level, ``INFO``.

    Raises :class:`~otel_runtime.context.MissingContextError` outside a flow run or task run, as
    Prefect's ``get_run_logger`` does.
    """
    get_run_context()
    return run_logger(**extra)


def render_to_record(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
    """structlog processor, last in the chain: the event as an ordinary ``logging`` call.

    structlog's ``render_to_log_args_and_kwargs``, so the record's message is the event text (with
    ``%``-style positional arguments deferred to ``logging``) and every field is a record attribute
    that any handler reads. Fields named like a ``LogRecord`` attribute (``filename``, ``name``, ...)
    get a trailing underscore instead of making ``logging`` raise; values OTLP cannot carry become
    their ``repr``; an ``extra={...}`` argument is merged in (the event's own fields win).
    """
    given = event_dict.pop("extra", None)
    if isinstance(given, dict):
        event_dict = {**given, **event_dict}
    args, kwargs = structlog.stdlib.render_to_log_args_and_kwargs(logger, method_name, event_dict)
    extra = kwargs.get("extra")
    if extra is not None:
        extra = kwargs["extra"] = record_extra(extra)
    return (EventText.of(args[0], extra or {}), *args[1:]), kwargs


def _render_with_run_context(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> Any:
    """``add_run_context`` then ``render_to_record`` in one step: last in ``configure_logging()``'s chain.

    The same call as structlog's ``render_to_log_args_and_kwargs`` makes, in one pass since it runs on
    every structlog line; only the caller's own fields need checking (usually one or two): the run
    fields are names and values ``logging`` and OTLP take as they are.

    When the record it would make could reach no handler but ``configure_logging()``'s own, it writes
    the line itself, exactly as that handler would have written it (``_surface.log_lines.write_event``),
    and drops the event (structlog's ``DropEvent``): the line without a ``LogRecord``, its caller
    lookup and its trip through ``logging``. Any other handler (yours, pytest's ``caplog``,
    OpenTelemetry's) gets the record as before.
    """
    call = _record_call(logger, method_name, event_dict)
    if call is None:
        raise structlog.DropEvent
    return call


def _record_call(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> _LogCall | None:
    """:func:`_render_with_run_context`'s work: the ``logging`` call, or ``None`` when the line is written."""
    event = event_dict.pop("event")
    args = event_dict.pop("positional_args", ())
    kwargs: dict[str, Any] = {}
    for name in _LOG_KWARG_NAMES:
        if name in event_dict:
            kwargs[name] = event_dict.pop(name)
    given = event_dict.pop("extra", None)
    if isinstance(given, dict):
        event_dict = {**given, **event_dict}
    try:
        fields = run_fields()
    except Exception:
        warn_once("log-fields", "otel_runtime could not read the run context for a log line", exc_info=True)
        fields = EMPTY_FIELDS
    own = record_extra(event_dict)  # event_dict itself when nothing needed fixing: not changed below
    if not _FIELD_KEYS.isdisjoint(own):  # the caller's own run fields: in the run fields' places
        own, fields = {**fields, **own}, _NO_FIELDS
    message = event if isinstance(event, str) else str(event)
    if (
        not args
        and not kwargs
        and write_event(_console_handler, logger, method_name, message, own, run_fields=fields)
    ):
        return None
    extra = {**own, **fields}
    kwargs["extra"] = extra
    text = EventText(message)
    text.fields = extra
    return (text, *args), kwargs


class _BoundLogger(structlog.stdlib.BoundLogger):
    """``configure_logging()``'s wrapper class: structlog's stdlib ``BoundLogger``, a step shorter.

    When the chain ends in :func:`_render_with_run_context`, as ``configure_logging()`` sets it up,
    it runs the chain as structlog's ``_proxy_to_logger`` and ``_process_event`` do, but a line the
    renderer wrote itself just ends the call: no ``DropEvent`` raised through the chain and caught
    (about a twentieth of the line). Any other chain (``capture_logs``', yours) runs as structlog's.
    """

    def _proxy_to_logger(
        self, method_name: str, event: str | None = None, *event_args: Any, **event_kw: Any
    ) -> Any:
        processors = self._processors  # the configured chain: structlog keeps it as a list
        if type(processors) is not list or not processors or processors[-1] is not _render_with_run_context:
            return super()._proxy_to_logger(method_name, event, *event_args, **event_kw)
        if event_args:
            event_kw["positional_args"] = event_args
        event_dict: Any = self._context.copy()
        event_dict.update(event_kw)
        if event is not None:
            event_dict["event"] = event
        logger = self._logger
        try:
            for processor in processors[:-1]:
                event_dict = processor(logger, method_name, event_dict)
            call = _record_call(logger, method_name, event_dict)
            if call is None:  # written
                return None
            args, kwargs = call
            return getattr(logger, method_name)(*args, **kwargs)
        except structlog.DropEvent:
            return None


_LogCall = tuple[tuple[Any, ...], dict[str, Any]]
"""The positional and keyword arguments of a ``logging.Logger`` method call."""
_LOG_KWARG_NAMES = structlog.stdlib.LOG_KWARG_NAMES  # exc_info, stack_info, stacklevel
_NO_FIELDS: Mapping[str, Any] = MappingProxyType({})  # the run fields, once the caller's took their places
_NATIVE_KEYS = ("level", "logger", "timestamp")


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except Exception:
        return False


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
    - ``level``: the level of the root logger and of the run logger; lines below it are dropped before
      any processing.
    - ``stream``: where lines go; by default ``sys.stderr`` (looked up at each line).
    - ``processors``: your own processors, run on every line after the run fields are added.

    structlog is routed through ``logging`` (``structlog.stdlib.LoggerFactory``): each structlog event
    becomes an ordinary record (:func:`render_to_record`: the message is the event text, the fields and
    run fields are record attributes), so every handler reads it as it reads any other. One handler on
    the root logger renders all records through the same processors (structlog's
    ``ProcessorFormatter`` with ``ExtraAdder``): each gets a timestamp, level, logger name and the run
    fields. Exceptions render as structured tracebacks in JSON (no local variables) and as tracebacks
    on the console. It takes the place of ``logging.basicConfig()``: a console handler that
    ``basicConfig`` put on the root logger (``OTEL_PYTHON_LOG_CORRELATION=true`` makes the logging
    instrumentation call it) is removed, so no line prints twice; other handlers are left alone. The
    run logger (``get_run_logger()``, ``log_prints``) gets ``level`` too. Returns the handler it put on
    the root logger.
    """
    if json is None:
        json = not _isatty(stream if stream is not None else sys.stderr)
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    # Every record reaching the handler, structlog's included (they arrive as plain records).
    record_fields = RecordFields([structlog.contextvars.merge_contextvars, add_run_context, *processors])
    record_chain: list[Processor] = [record_fields]
    # structlog events, before they become records: what every handler then sees as attributes.
    event_chain: list[Processor] = [structlog.stdlib.filter_by_level, structlog.contextvars.merge_contextvars]
    if processors:
        event_chain += [
            structlog.stdlib.add_logger_name,  # what user processors saw before; carried by the record
            structlog.stdlib.add_log_level,
            timestamper,
            add_run_context,
            *processors,
            _drop_native_fields,
        ]
        event_chain.append(render_to_record)
    else:
        event_chain.append(_render_with_run_context)
    rendering: list[Processor] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if json:
        rendering += [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(serializer=serializer()),
        ]
    else:
        colors = _isatty(stream if stream is not None else sys.stderr)
        rendering += [drop_empty_run_fields, escape_controls, structlog.dev.ConsoleRenderer(colors=colors)]
    handler: logging.Handler = StderrHandler() if stream is None else logging.StreamHandler(stream)
    formatter = LineFormatter(
        record_fields, copy_records=bool(processors), foreign_pre_chain=record_chain, processors=rendering
    )
    handler.setFormatter(formatter)
    global _console_handler  # noqa: PLW0603 - the one handler this function owns
    with _lock:
        root = logging.getLogger()
        for other in list(root.handlers):
            if other is _console_handler or _is_basic_console(other):
                root.removeHandler(other)
        root.addHandler(handler)
        root.setLevel(level)
        set_run_logger_level(level)
        _console_handler = handler
        structlog.configure(
            processors=event_chain,
            logger_factory=NamedLoggerFactory(),
            wrapper_class=_BoundLogger,
            cache_logger_on_first_use=False,
        )
    return handler


def _is_basic_console(handler: logging.Handler) -> bool:
    """A console handler as ``logging.basicConfig()`` makes one: ``configure_logging()`` replaces it.

    Yours, or the one ``opentelemetry-instrumentation-logging`` installs for
    ``OTEL_PYTHON_LOG_CORRELATION=true``: beside ours, every line would print twice.
    """
    if type(handler) is not logging.StreamHandler:
        return False
    stream = handler.stream
    return any(stream is console for console in (sys.stderr, sys.stdout, sys.__stderr__, sys.__stdout__))


def _drop_native_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Before a structlog event becomes a record: its level, logger name and time are the record's own."""
    for key in _NATIVE_KEYS:
        event_dict.pop(key, None)
    return event_dict


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
