"""Exception text as spans and log records carry it: bounded, as parameters are, and never raising.

An exception message is user text of any size: a 6 MB message was stored three times on a span (the
status description, the ``exception`` event's ``exception.message`` and its ``exception.stacktrace``),
and the batch holding it went over the collector's 4 MiB request limit, losing 200 healthy spans with
it. So the message is cut to :data:`MAX_EXCEPTION_MESSAGE_LENGTH` characters and the formatted
traceback to :data:`MAX_STACKTRACE_LENGTH`, keeping its beginning (the outer frames) and its end (the
innermost frame and the message), with a marker saying how much was cut.

>>> bounded_text("x" * 10, 6)
'xxxxxx [... 4 characters cut]'
"""

from __future__ import annotations

import traceback
from typing import Final

from opentelemetry.semconv.attributes import exception_attributes

__all__ = [
    "MAX_EXCEPTION_MESSAGE_LENGTH",
    "MAX_STACKTRACE_LENGTH",
    "bounded_stacktrace",
    "bounded_text",
    "exception_attributes_of",
    "exception_message",
    "exception_stacktrace",
    "exception_summary",
    "qualified_type_name",
]

MAX_EXCEPTION_MESSAGE_LENGTH: Final = 4_096
"""The most characters of an exception message on a span or log record (status, ``exception.message``)."""
MAX_STACKTRACE_LENGTH: Final = 16_384
"""The most characters of a formatted traceback on a span event or log record (``exception.stacktrace``)."""


def bounded_text(text: str, limit: int) -> str:
    """``text``, or its first ``limit`` characters and a marker saying how many were cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]} [... {len(text) - limit} characters cut]"


def bounded_stacktrace(text: str, limit: int = MAX_STACKTRACE_LENGTH) -> str:
    """A formatted traceback, or its beginning and end (``limit`` characters in all) around a marker."""
    if len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    return f"{text[:head]}\n[... {len(text) - limit} characters cut ...]\n{text[-tail:]}"


def exception_message(exc: BaseException) -> str:
    """``str(exc)`` cut to :data:`MAX_EXCEPTION_MESSAGE_LENGTH`, even when ``__str__`` is broken."""
    try:
        message = str(exc)
    except Exception:
        return "<exception str() failed>"
    return bounded_text(message, MAX_EXCEPTION_MESSAGE_LENGTH)


def exception_summary(exc: BaseException) -> str:
    """``"<ExcType>: <message>"`` (the message bounded), or the type alone when the message is empty."""
    message = exception_message(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def exception_stacktrace(exc: BaseException) -> str:
    """The traceback as Python prints it, cut in the middle to :data:`MAX_STACKTRACE_LENGTH`."""
    try:
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    except Exception:
        return f"{qualified_type_name(type(exc))}: <traceback could not be formatted>"
    return bounded_stacktrace(text)


def qualified_type_name(kind: type[BaseException]) -> str:
    """The exception class as OpenTelemetry names it: qualified, builtins unqualified."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def exception_attributes_of(exc: BaseException) -> dict[str, str]:
    """``exception.type`` / ``.message`` / ``.stacktrace`` of ``exc``, the texts bounded.

    Pass them to ``span.record_exception(exc, attributes=...)``: they replace the SDK's unbounded ones.
    """
    return {
        exception_attributes.EXCEPTION_TYPE: qualified_type_name(type(exc)),
        exception_attributes.EXCEPTION_MESSAGE: exception_message(exc),
        exception_attributes.EXCEPTION_STACKTRACE: exception_stacktrace(exc),
    }
