"""A span processor that prints each task run and flow run as it ends (``run`` and ``demo``)."""

from __future__ import annotations

import sys
import threading

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._sdk.configure import Telemetry
from otel_runtime._tools.tree import RunInfo, Style

__all__ = ["Progress", "start_progress"]


class Progress(SpanProcessor):
    """Prints each task run and subflow run as it finishes; remembers the last top-level flow run."""

    def __init__(self, style: Style) -> None:
        self._style = style
        self._lock = threading.Lock()
        self.flow_run: ReadableSpan | None = None

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        run_type = attributes.get(_keys.RUN_TYPE)
        if run_type == _keys.RUN_TYPE_FLOW and _keys.FLOW_RUN_PARENT_ID not in attributes:
            self.flow_run = span  # the flow run the command started: printed at the end
            return
        if run_type not in (_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK):
            return
        try:
            line = RunInfo.from_span(span).line(self._style, show_deployment=False, show_id=False)
            with self._lock:  # not print(): inside a log_prints run that would become a log line
                sys.stdout.write(f"  {line}\n")
                sys.stdout.flush()
        except Exception:  # progress output must not break the run it reports on
            warn_once("cli-progress", "otel-runtime could not print a run's progress", exc_info=True)

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def start_progress(telemetry: Telemetry, style: Style) -> Progress:
    progress = Progress(style)
    if telemetry.tracer_provider is not None:
        telemetry.tracer_provider.add_span_processor(progress)
    return progress
