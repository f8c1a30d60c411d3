"""What a stdlib ``logging`` record carries for a structured line: fields as attributes every handler reads.

A structlog event or a key-value call of the run logger becomes an ordinary ``logging.LogRecord``: the
message is the event text and each field is a record attribute (``extra=``). Any handler, ours or not
(pytest's ``caplog``, OpenTelemetry's ``LoggingHandler``, a ``%(flow_run_id)s`` format), reads them.

Two things ``logging`` and the OpenTelemetry SDK refuse are fixed here, once per field:

- a field named like a ``LogRecord`` attribute (``name``, ``filename``, ``module``, ``args``,
  ``process``, ``message``, ...) makes ``logging`` raise ``KeyError``: it is renamed with a trailing
  underscore (``filename_``);
- a value OTLP cannot carry (an arbitrary object, an int beyond 64 bits) makes the SDK warn on every
  record: it becomes its ``repr`` (structlog's ``__structlog__`` hook first), as structlog's JSON
  renderer writes it. Scalars, and lists and mappings of them, stay as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.util.types import AnyValue

__all__ = ["RESERVED", "EventText", "any_value", "record_extra"]

RESERVED: Final = frozenset(
    {*vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)), "message", "asctime", "taskName"}
)
"""Every attribute a plain ``LogRecord`` has, and what formatters add: ``extra=`` may not use them."""

_INT64: Final = range(-(2**63), 2**63)
_MAX_DEPTH: Final = 8
_PLAIN: Final = frozenset({str, bool, float, type(None)})


class EventText(str):
    """The message of a record made from a structlog event: a plain ``str`` to every handler.

    It also holds the event's ``fields`` (the record's ``extra``), so our formatter reads them in one
    step instead of sorting them out of the record's attributes, and knows the event went through
    the user's processors already, in the structlog chain.
    """

    fields: Mapping[str, Any]

    @classmethod
    def of(cls, event: object, fields: Mapping[str, Any]) -> EventText:
        """The text of ``event`` (any object: its ``str``), carrying ``fields``."""
        text = cls(event if isinstance(event, str) else str(event))
        text.fields = fields
        return text


def any_value(value: object, depth: int = 0) -> AnyValue:
    """``value`` as an OTLP ``AnyValue``: scalars as they are, lists and mappings item by item, else repr."""
    if value is None or isinstance(value, (str, bool, float, bytes)):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else str(value)
    if depth < _MAX_DEPTH:
        if isinstance(value, Mapping):
            return {str(key): any_value(item, depth + 1) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return [any_value(item, depth + 1) for item in value]
    render = getattr(value, "__structlog__", None)  # structlog's own hook for custom rendering
    try:
        return str(render()) if callable(render) else repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__qualname__}>"


def record_extra(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields`` fit for ``extra=``: reserved names renamed, values made exportable (see the module doc).

    Returns ``fields`` itself when nothing needs fixing (the usual case: str and int values).
    """
    for key, value in fields.items():
        kind = type(value)
        if key in RESERVED or (kind not in _PLAIN and not (kind is int and value in _INT64)):
            break
    else:
        return fields
    return {
        (f"{key}_" if key in RESERVED else str(key)): value if _plain(value) else any_value(value)
        for key, value in fields.items()
    }


def _plain(value: object) -> bool:
    kind = type(value)
    return kind in _PLAIN or (kind is int and value in _INT64)
