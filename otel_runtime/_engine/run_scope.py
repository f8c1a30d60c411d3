"""One open run: its span, the context it executes in, its record, and how it ends on its span."""

from __future__ import annotations

from typing import Any, Protocol

from opentelemetry.context import Context
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Span, Status, StatusCode

from otel_runtime._base.guard import warn_once
from otel_runtime._core.exception_signal import record_exception as record_signal
from otel_runtime._core.exception_text import exception_message
from otel_runtime._engine.run_kinds import RunKind
from otel_runtime._engine.run_states import Control, close_state, on_failure
from otel_runtime._engine.states import State

__all__ = ["RunScope", "exception_message", "qualified_name", "record_exception"]


def qualified_name(kind: type[BaseException]) -> str:
    """The name ``error.type`` gives an exception class: bare for builtins, else module-qualified."""
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def record_exception(span: Span, exc: BaseException) -> None:
    """An ``exception`` event on ``span`` or a log record in its context, or both, as
    ``OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN`` says (``exception_signal``), its texts bounded; an event
    with the type alone when the exception cannot be described."""
    try:
        record_signal(span, exc)
    except Exception:
        span.add_event("exception", {"exception.type": qualified_name(type(exc))})


class _Counted(Protocol):
    run_count: int


class RunScope:
    """One open run: its span, the context it executes in, and its record. ``close()`` ends it."""

    __slots__ = (
        "context",
        "control",
        "kind",
        "owner",
        "record",
        "result",
        "span",
        "state",
        "state_error",
    )

    def __init__(self, span: Span, context: Context, record: _Counted, kind: RunKind) -> None:
        self.span = span
        self.context = context
        self.record = record
        self.kind = kind
        # Run states (``run_states``): set by ``Runnable._start`` and as the run ends. ``result`` and
        # ``state_error`` are set only when there is one (a plain run pays for three attributes).
        self.owner: Any = None
        self.control: Control | None = None
        self.state: State[Any] | None = None
        self.result: Any
        self.state_error: BaseException | None

    def fail(self, exc: BaseException) -> None:
        """The run ended by ``exc``: an error, or a cancellation (``KeyboardInterrupt`` and the like)."""
        self.span.set_attribute(ERROR_TYPE, qualified_name(type(exc)))
        if isinstance(exc, Exception):
            record_exception(self.span, exc)
            # The semantic conventions: the description is the message alone; the type is in error.type.
            self.span.set_status(Status(StatusCode.ERROR, exception_message(exc) or None))
        else:
            message = exception_message(exc)
            self.span.set_status(
                Status(StatusCode.ERROR, f"Cancelled: {message}" if message else "Cancelled")
            )
        try:
            on_failure(self, exc)  # the final state and the end hooks
        except Exception:
            warn_once("run-state", "otel_runtime could not record a run's final state", exc_info=True)

    def close(self, exc: BaseException | None) -> None:
        """End the run's span. ``exc`` is what ended the run, if anything did."""
        if self.record.run_count != 1:  # the span started with run_count 1 (see ``opening``)
            self.span.set_attribute(self.kind.run_count_key, self.record.run_count)
        control = self.control
        if self.state is not None or exc is not None or (control is not None and control.return_state):
            close_state(self, exc)  # only a run that did not end plainly ``Completed``, or whose caller asked
        try:  # a span processor that raises in on_end must not change what the run returns or raises
            self.span.end()
        except Exception:
            warn_once("run-end", "otel_runtime could not end a run's span: a processor raised", exc_info=True)
