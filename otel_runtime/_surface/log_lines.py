"""How ``configure_logging()`` turns records and structlog events into lines, and writes them.

- :class:`RecordFields`: a record's fields (its ``extra``, level, logger, timestamp; the run fields);
- :class:`LineFormatter`: structlog's ``ProcessorFormatter`` without its copy of every record, and
  :meth:`LineFormatter.write_event`, which writes a structlog event's line without any ``LogRecord``
  when ``configure_logging()``'s handler is the only one the record would reach;
- the console-only processors, the handler that follows ``sys.stderr`` and the logger factory.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from otel_runtime._base import keys as _keys
from otel_runtime._engine.log_records import RESERVED, EventText

__all__ = [
    "LineFormatter",
    "NamedLoggerFactory",
    "RecordFields",
    "StderrHandler",
    "drop_empty_run_fields",
    "escape_controls",
    "write_event",
]

_RECORD_ATTRIBUTES = RESERVED - {"stack_info"}  # a record's own attributes; its stack is rendered


def drop_empty_run_fields(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Console only: leave out the run fields that are ``None``, which a reader does not need to see."""
    for key in _keys.LOG_FIELDS:
        if key in event_dict and event_dict[key] is None:
            del event_dict[key]
    return event_dict


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTILINE_KEYS = frozenset({"exception", "stack"})
"""Rendered tracebacks and stacks: the only values whose newlines reach the console as newlines."""


def escape_controls(logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
    """Console only: write control characters (newline, escape, carriage return, ...) as escapes.

    A message from anywhere (a library echoing a received header, say) must not start a fake line,
    drive the terminal or overwrite the line: one event is one console line. Tracebacks keep their
    newlines.
    """
    for key, value in event_dict.items():
        if isinstance(value, str) and key not in _MULTILINE_KEYS and not value.isprintable():
            event_dict[key] = _CONTROL.sub(lambda match: repr(match.group())[1:-1], value)
    return event_dict


class StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (pytest's capture, ``redirect_stderr``)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> Any:
        """``sys.stderr`` now, for ``emit``, ``flush`` and :func:`write_event` alike."""
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        """Ignored (``StreamHandler.__init__`` and ``setStream`` set it): the stream is ``sys.stderr``."""


class NamedLoggerFactory(structlog.stdlib.LoggerFactory):
    """structlog's ``LoggerFactory``, keeping the loggers it was asked for by name.

    structlog's lazy logger (``structlog.get_logger("name")``) calls its factory on every line, and
    ``logging.getLogger`` takes the module lock each time; ``logging`` never replaces the logger of a
    name, so the answer can be kept. Without a name it is structlog's: the caller's module, looked up.
    """

    def __init__(self) -> None:
        super().__init__()
        self._by_name: dict[object, logging.Logger] = {}

    def __call__(self, *args: Any) -> logging.Logger:
        if not args or not isinstance(args[0], str):
            return super().__call__(*args)
        name = args[0]
        logger = self._by_name.get(name)
        if logger is None:
            logger = self._by_name[name] = super().__call__(name)
        return logger


class RecordFields:
    """First in the formatter's chain: a record's fields.

    A structlog event's are those :func:`render_to_record` gave the record (its message carries them).
    For any other record, every attribute a plain ``LogRecord`` lacks, as structlog's ``ExtraAdder``
    copies them, except ``message`` and ``asctime``, which another handler's ``Formatter`` may have
    cached on the record. ``stack_info=True`` becomes ``stack``, the stack ``logging`` captured where
    the line was logged; ``logger`` and ``level`` are the record's, ``timestamp`` is ``stamp``'s.
    ``stdlib_only`` (contextvars, run fields, the user's processors) run on records from stdlib
    ``logging`` only: structlog events ran them before they became records. One processor instead of
    several, since it runs on every line.

    The timestamp is the record's creation time (ISO 8601, UTC, microseconds), as structlog's
    ``TimeStamper(fmt="iso", utc=True)`` writes it, but taken from the record (right for a record that
    waited in a queue) and a third of the cost: the date and time of day are formatted once a second.
    """

    __slots__ = ("_second", "_stdlib_only")

    def __init__(self, stdlib_only: Sequence[Processor]) -> None:
        self._stdlib_only = tuple(stdlib_only)
        self._second: tuple[int, str] = (-1, "")

    def __call__(self, logger: WrappedLogger, method_name: str, event_dict: EventDict) -> EventDict:
        record: logging.LogRecord | None = event_dict.get("_record")
        if record is None:
            return event_dict
        message = record.msg
        if type(message) is EventText:
            event_dict.update(message.fields)
        else:
            attributes = record.__dict__
            if attributes.keys() <= RESERVED:  # no extra=: of its own attributes only the stack is copied
                if "stack_info" in attributes:
                    event_dict["stack_info"] = attributes["stack_info"]
            else:
                for key, value in attributes.items():
                    if key not in _RECORD_ATTRIBUTES:
                        event_dict[key] = value
        stack = event_dict.pop("stack_info", None)
        if stack:
            event_dict["stack"] = stack
        # structlog's add_logger_name and add_log_level, inline (a foreign record's method is its level)
        event_dict["logger"] = record.name
        event_dict["level"] = method_name
        event_dict["timestamp"] = self.timestamp(record.created)
        if type(message) is not EventText:
            for processor in self._stdlib_only:
                event_dict = processor(logger, method_name, event_dict)  # type: ignore[assignment]
        return event_dict

    def timestamp(self, created: float) -> str:
        """``created`` (seconds since the epoch) as ISO 8601 in UTC with microseconds and a ``Z``."""
        second = int(created)
        cached = self._second
        if cached[0] != second:
            cached = self._second = (second, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(second)))
        # %-format: a sixth faster than an f-string here; %d truncates the float as int() does
        return "%s%06dZ" % (cached[1], (created - second) * 1_000_000)  # noqa: UP031


class LineFormatter(structlog.stdlib.ProcessorFormatter):
    """structlog's ``ProcessorFormatter``, without its copy of each record where nothing changes the record.

    ``ProcessorFormatter.format`` copies every record (``logging.makeLogRecord``) before running the
    processors, so that one changing the record cannot affect another handler, and returns
    ``logging.Formatter.format`` of the copy with the format ``%(message)s``: the rendered event. Our
    own processors only read the record, so without processors of yours (``copy_records=False``) a
    record is rendered as the copy would be, without the copy. Records made by structlog's
    ``wrap_for_formatter`` (a structlog chain of yours routed to this handler) take structlog's path.
    """

    def __init__(self, record_fields: RecordFields, *, copy_records: bool, **options: Any) -> None:
        super().__init__(**options)
        self.record_fields = record_fields
        self._copy_records = copy_records
        # An event that never was a record: no record meta to remove, no exc_info to render.
        self._direct = tuple(
            processor
            for processor in self.processors
            if processor is not structlog.stdlib.ProcessorFormatter.remove_processors_meta
            and not isinstance(processor, structlog.processors.ExceptionRenderer)
        )

    def format(self, record: logging.LogRecord) -> str:
        attributes = record.__dict__
        if self._copy_records or "_logger" in attributes or "_name" in attributes:
            return super().format(record)
        event_dict: EventDict = {"event": record.getMessage(), "_record": record, "_from_structlog": False}
        if record.exc_info:
            event_dict["exc_info"] = record.exc_info
        if record.stack_info:
            event_dict["stack_info"] = record.stack_info
        method_name = record.levelname.lower()
        for processor in self.foreign_pre_chain or ():
            event_dict = processor(None, method_name, event_dict)  # type: ignore[assignment]
        return self.render(event_dict, method_name)

    def render(self, event_dict: EventDict, method_name: str, *, direct: bool = False) -> str:
        """The line of an event dict: the formatter's processors, the last renders.

        ``direct``: the event dict has no ``_record``, ``_from_structlog`` or ``exc_info`` keys, so the
        processors that would only remove those are left out.
        """
        rendered: Any = event_dict
        for processor in self._direct if direct else self.processors:
            rendered = processor(None, method_name, rendered)
        return rendered  # type: ignore[no-any-return]


_DIRECT_LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
"""structlog methods whose line can skip ``logging`` (``exception``, ``warn``, ``log`` always take it)."""
_META_KEYS = frozenset({"_record", "_from_structlog"})
_plain_logger_types: dict[type, bool] = {}


def write_event(
    handler: logging.Handler | None,
    logger: WrappedLogger,
    method_name: str,
    message: str,
    extra: Mapping[str, Any],
    *,
    run_fields: Mapping[str, Any],
) -> bool:
    """Write a structlog event's line as ``handler`` would write its record, if no other handler would see it.

    ``True`` when written: the caller drops the event, saving the ``LogRecord``, its caller lookup and
    its trip through ``logging``. ``False`` (the caller makes the record) unless ``handler`` is
    ``configure_logging()``'s, the record would reach it and no other (:func:`_reaches_only`), and the
    line was rendered and written without error; after an error nothing was written, or the stream
    failed, and ``logging`` then reports it as it does.

    The record's ``extra`` would be ``extra`` then ``run_fields`` (given apart, so the line's event dict
    is the only dict made). The event dict is the one :meth:`LineFormatter.format` and
    :class:`RecordFields` would build from the record (``_record`` and ``_from_structlog`` included
    when the event has such keys, for ``remove_processors_meta`` to remove); the line is written as
    ``StreamHandler.emit`` writes it, under the handler's lock.
    """
    levelno = _DIRECT_LEVELS.get(method_name)
    if levelno is None or handler is None or not _reaches_only(handler, logger, levelno):
        return False
    formatter: LineFormatter = handler.formatter  # type: ignore[assignment]
    try:
        timestamp = formatter.record_fields.timestamp(time.time())
        # One dict display: the keys in the record path's order; a later key replaces an earlier one in
        # its place, as the record path's assignments do.
        direct = _META_KEYS.isdisjoint(extra)
        if direct:
            event_dict: EventDict = {"event": message, **extra, **run_fields}
        else:
            event_dict = {"event": message, "_record": None, "_from_structlog": False, **extra, **run_fields}
        event_dict["logger"] = logger.name
        event_dict["level"] = method_name  # the level's name: a record's, lowered, is the same
        event_dict["timestamp"] = timestamp
        line = formatter.render(event_dict, method_name, direct=direct)
        handler.acquire()
        try:
            stream = handler.stream  # type: ignore[attr-defined]
            stream.write(line + handler.terminator)  # type: ignore[attr-defined]
            flush = getattr(stream, "flush", None)  # as StreamHandler.flush, under the lock held here
            if flush is not None:
                flush()
        finally:
            handler.release()
    except Exception:
        return False
    return True


def _reaches_only(handler: logging.Handler, logger: Any, levelno: int) -> bool:
    """Whether a record of ``logger`` at ``levelno`` would reach ``handler`` and no other handler.

    As ``logging.Logger.handle`` and ``callHandlers`` decide: the logger enabled and without filters,
    every handler on its way up to the root (while ``propagate``) counted, and ``handler`` once, with
    a :class:`LineFormatter`, no filters and a level the record passes; the default record factory, so
    making no record leaves nothing undone. structlog's ``filter_by_level`` checked the logger's level.
    """
    if type(handler.formatter) is not LineFormatter or handler.filters or levelno < handler.level:
        return False
    if not _plain_logger(type(logger)) or logger.disabled or logger.filters:
        return False
    seen = 0
    current: logging.Logger | None = logger
    while current is not None:
        handlers = current.handlers
        if handlers:
            if len(handlers) != 1 or handlers[0] is not handler:
                return False
            seen += 1
        current = current.parent if current.propagate else None
    return seen == 1 and logging.getLogRecordFactory() is logging.LogRecord


def _plain_logger(kind: type) -> bool:
    """A ``logging.Logger`` class that makes and hands out records as ``logging.Logger`` does."""
    plain = _plain_logger_types.get(kind)
    if plain is None:
        plain = _plain_logger_types[kind] = issubclass(kind, logging.Logger) and all(
            getattr(kind, name) is getattr(logging.Logger, name)
            for name in ("_log", "makeRecord", "handle", "callHandlers")
        )
    return plain
