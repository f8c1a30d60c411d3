"""Run events: one OpenTelemetry event (a log record) when a flow run or task run starts, one when it ends.

A run's span is exported when the run ends, so an hour-long run is invisible for an hour. Its start
event is exported within seconds (the log batch delay), wherever the logs go: OTLP, or the local file
that ``otel-runtime traces --follow`` reads. :class:`RunEvents` is an SDK span processor that emits:

- at the start, ``otel_runtime.run.start``: the log fields (``deployment_name``, ``flow_run_id``,
  ``flow_run_name``, ``task_run_id``, ``task_run_name``, ``trace_id``, ``span_id``), ``otel_runtime.run
  .type``, ``flow.name`` / ``task.name``, the state ``RUNNING``, the parent span id, and ``process.pid``
  and ``host.name`` (so a reader can tell a run whose process died);
- at the end, ``otel_runtime.run.end``: the same fields, the final state and ``otel_runtime.run
  .duration_s``; WARN for a cancelled run, ERROR for a failed or crashed one, else INFO.

Both records are emitted in the context of the run's span: their trace and span ids are the run's.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry._logs import LoggerProvider, LogRecord, SeverityNumber
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import NonRecordingSpan, format_span_id, format_trace_id, set_span_in_context

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.identity import inbound
from otel_runtime._core.scope import SCHEMA_URL, scope_version
from otel_runtime._sdk.run_spans import duration_seconds, final_state

__all__ = ["LOGGER_NAME", "RunEvents"]

LOGGER_NAME: Final = "otel_runtime.runs"
_RUNNING: Final = ("RUNNING", "Running")
_SEVERITY: Final = {
    "FAILED": SeverityNumber.ERROR,
    "CRASHED": SeverityNumber.ERROR,
    "CANCELLED": SeverityNumber.WARN,
}
_SEVERITY_TEXT: Final = {
    SeverityNumber.INFO: "INFO",
    SeverityNumber.WARN: "WARN",
    SeverityNumber.ERROR: "ERROR",
}


def _text(attributes: Mapping[str, Any], key: str) -> str | None:
    value = attributes.get(key)
    return value if isinstance(value, str) else None


def _name_key(run_type: str) -> str:
    return _keys.LOG_FLOW_RUN_NAME if run_type == _keys.RUN_TYPE_FLOW else _keys.LOG_TASK_RUN_NAME


class RunEvents(SpanProcessor):
    """Emits the start and end event of every run span it sees, through ``logger_provider``."""

    def __init__(self, logger_provider: LoggerProvider) -> None:
        self._logger = logger_provider.get_logger(LOGGER_NAME, scope_version(), schema_url=SCHEMA_URL)
        self._host = socket.gethostname()
        # The start event's fields, kept for the end event (a task's flow run name is only in baggage).
        self._open: dict[int, dict[str, Any]] = {}

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attributes = span.attributes or {}
            run_type = attributes.get(_keys.RUN_TYPE)
            if not isinstance(run_type, str):
                return
            fields = self._fields(span, run_type, attributes, parent_context)
            self._open[span.context.span_id] = fields
            started = dict(fields)
            started[_keys.RUN_STATE_TYPE], started[_keys.RUN_STATE_NAME] = _RUNNING
            started[_keys.PROCESS_PID] = os.getpid()
            started[_keys.HOST_NAME] = self._host
            if span.parent is not None:
                started[_keys.RUN_PARENT_SPAN_ID] = format_span_id(span.parent.span_id)
            self._emit(
                _keys.RUN_START_EVENT,
                span.start_time,
                set_span_in_context(span),
                SeverityNumber.INFO,
                f"{run_type} run {fields.get(_name_key(run_type), '')} started",
                started,
            )
        except Exception:
            warn_once("run-events", "otel_runtime could not emit a run event", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attributes = span.attributes or {}
            run_type = attributes.get(_keys.RUN_TYPE)
            if not isinstance(run_type, str) or span.context is None:
                return
            fields = self._open.pop(span.context.span_id, None)
            if fields is None:  # started before this processor was added
                fields = self._fields(span, run_type, attributes, None)
            ended = dict(fields)
            state_type, state_name = ended[_keys.RUN_STATE_TYPE], ended[_keys.RUN_STATE_NAME] = final_state(
                span, run_type
            )
            duration = duration_seconds(span)
            ended[_keys.RUN_DURATION_S] = duration
            self._emit(
                _keys.RUN_END_EVENT,
                span.end_time,
                set_span_in_context(NonRecordingSpan(span.context)),
                _SEVERITY.get(state_type, SeverityNumber.INFO),
                f"{run_type} run {fields.get(_name_key(run_type), '')} {state_name} in {duration:.3f} s",
                ended,
            )
        except Exception:
            warn_once("run-events", "otel_runtime could not emit a run event", exc_info=True)

    def shutdown(self) -> None:
        """Nothing to release: the records went to the logger provider's processors."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Nothing is buffered here."""
        return True

    @staticmethod
    def _fields(
        span: ReadableSpan, run_type: str, attributes: Mapping[str, Any], parent_context: Context | None
    ) -> dict[str, Any]:
        """The run's fields, as the log processor names them, with its type and flow or task name."""
        context = span.get_span_context()
        assert context is not None  # an SDK span always has one
        is_flow = run_type == _keys.RUN_TYPE_FLOW
        fields: dict[str, Any] = {
            _keys.RUN_TYPE: run_type,
            _keys.LOG_TRACE_ID: format_trace_id(context.trace_id),
            _keys.LOG_SPAN_ID: format_span_id(context.span_id),
        }
        values = {
            _keys.LOG_DEPLOYMENT_NAME: _text(attributes, _keys.DEPLOYMENT_NAME),
            _keys.LOG_FLOW_RUN_ID: _text(attributes, _keys.FLOW_RUN_ID),
            _keys.FLOW_NAME: _text(attributes, _keys.FLOW_NAME),
        }
        if is_flow:
            values[_keys.LOG_FLOW_RUN_NAME] = _text(attributes, _keys.FLOW_RUN_NAME)
        else:
            values[_keys.LOG_TASK_RUN_ID] = _text(attributes, _keys.TASK_RUN_ID)
            values[_keys.LOG_TASK_RUN_NAME] = _text(attributes, _keys.TASK_RUN_NAME)
            values[_keys.TASK_NAME] = _text(attributes, _keys.TASK_NAME)
            if parent_context is not None:
                values[_keys.LOG_FLOW_RUN_NAME] = inbound(_keys.FLOW_RUN_NAME, parent_context)
                values[_keys.FLOW_NAME] = inbound(_keys.FLOW_NAME, parent_context)
        fields.update((key, value) for key, value in values.items() if value is not None)
        return fields

    def _emit(  # noqa: PLR0917 - one private call site per event, each argument a field of the record
        self,
        event_name: str,
        timestamp: int | None,
        context: Context,
        severity: SeverityNumber,
        body: str,
        attributes: dict[str, Any],
    ) -> None:
        self._logger.emit(
            LogRecord(
                timestamp=timestamp,
                context=context,
                severity_number=severity,
                severity_text=_SEVERITY_TEXT[severity],
                body=body,
                attributes=attributes,
                event_name=event_name,
            )
        )
