"""Where a run's exceptions are recorded: span events, log records, or both (OpenTelemetry API only).

The semantic conventions are moving exceptions from span events to log records, with the standard
opt-in ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN``:

- unset (the default, unchanged): an ``exception`` span event on the run's span;
- ``logs``: a log record instead, in the context of the run's span (so it carries its trace and span
  ids), severity ``ERROR``, event name ``exception``, the message as body and ``exception.type``,
  ``exception.message`` and ``exception.stacktrace`` (bounded, as on the span event: ``exception_text``);
- ``logs/dup``: both.

The variable is read at each exception (not on the path of a run that succeeds). The log record goes to
the global logger provider (``configure()`` sets one up when logs are exported).
"""

from __future__ import annotations

from typing import Final

from opentelemetry import _logs, trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import Span

from otel_runtime._base import keys as _keys
from otel_runtime._base.environ import live_reader
from otel_runtime._core.exception_text import exception_attributes_of, exception_message
from otel_runtime._core.scope import SCHEMA_URL, SCOPE_NAME, scope_version

__all__ = ["exception_signals", "record_exception"]

_opt_in = live_reader(_keys.OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN)
_SPAN_EVENTS: Final = (True, False)
_modes: Final = {"logs": (False, True), "logs/dup": (True, True)}
_cache: tuple[_logs.LoggerProvider, _logs.Logger] | None = None


def exception_signals() -> tuple[bool, bool]:
    """Whether exceptions go to span events, and whether to log records, by the opt-in in force."""
    raw = _opt_in()
    if raw is None:
        return _SPAN_EVENTS
    chosen = _SPAN_EVENTS
    for mode in raw.lower().split(","):
        found = _modes.get(mode.strip())
        if found is not None and (found[0] or not chosen[1]):
            chosen = found  # logs/dup wins over logs when both are listed
    return chosen


def _logger() -> _logs.Logger:
    global _cache  # noqa: PLW0603 - one cached pair, replaced whole
    provider = _logs.get_logger_provider()
    cached = _cache
    if cached is None or cached[0] is not provider:
        cached = _cache = (provider, provider.get_logger(SCOPE_NAME, scope_version(), schema_url=SCHEMA_URL))
    return cached[1]


def record_exception(span: Span, exc: BaseException) -> None:
    """Record ``exc`` on ``span`` as an event, as a log record in its context, or both (see above)."""
    as_event, as_log = exception_signals()
    attributes = exception_attributes_of(exc)  # bounded texts, in place of the SDK's unbounded ones
    if as_event:
        span.record_exception(exc, attributes=attributes)
    if as_log:
        _logger().emit(
            context=trace.set_span_in_context(span),
            severity_number=SeverityNumber.ERROR,
            severity_text="ERROR",
            body=exception_message(exc) or type(exc).__qualname__,
            attributes=attributes,
            event_name=_keys.EXCEPTION_EVENT,
        )
