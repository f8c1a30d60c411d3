"""SIGTERM: end the open runs as cancelled, export within the shutdown bound, then die as SIGTERM would.

Kubernetes, systemd and ``docker stop`` stop a program with SIGTERM, whose default action kills the
process at once: no ``atexit`` hook runs, so whatever the batch processors still held (often every span
of the runs that had ended) never leaves. :func:`handle_sigterm` (called by ``configure()``) installs a
handler in the main thread when SIGTERM still has its default action. On SIGTERM it:

1. ends every run span still open (innermost first) with the state ``CANCELLED`` / ``Cancelled`` and an
   ERROR status ``Cancelled: ...``, the same marks a run ended by ``KeyboardInterrupt`` gets;
2. shuts every export pipeline down within the shutdown bound (``export_timeout``, 5 s by default), in a
   helper thread, so that a lock the interrupted main thread holds cannot stall it past the bound;
3. restores the default action and sends SIGTERM to the process again: it dies of the signal (exit
   status -15 for a parent's ``subprocess``, 143 for a shell), as it would have without us.

A handler of the program's own, installed before ``configure()``, is called instead and decides (a
``sys.exit()`` there ends the runs as cancelled through the normal path, and the exit hook exports);
one installed after ``configure()`` replaces this one. An ignored SIGTERM stays ignored.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.trace import Status, StatusCode

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import internal_logger
from otel_runtime._base.settings import settings
from otel_runtime._engine.remote import tell_running_ended
from otel_runtime._sdk.forks import after_fork_in_child
from otel_runtime._sdk.metrics_setup import join_shutdown_at_exit, start_shutdown_at_exit
from otel_runtime._sdk.run_spans import CANCELLED_PREFIX
from otel_runtime._sdk.slots import shutdown_at_exit

__all__ = ["OpenRuns", "handle_sigterm", "terminate"]

_STATE_KEYS: Final = {
    _keys.RUN_TYPE_FLOW: (_keys.FLOW_RUN_STATE_TYPE, _keys.FLOW_RUN_STATE_NAME),
    _keys.RUN_TYPE_TASK: (_keys.TASK_RUN_STATE_TYPE, _keys.TASK_RUN_STATE_NAME),
}
_DESCRIPTION: Final = f"{CANCELLED_PREFIX}: the process received SIGTERM"
_SLACK_S: Final = 0.5
"""What the helper thread may take beyond the bound before the process dies anyway."""


class OpenRuns(SpanProcessor):
    """The run spans of a tracer provider that have started and not ended yet (a dict entry per run)."""

    def __init__(self) -> None:
        self._open: dict[int, Span] = {}
        after_fork_in_child(self._reset_in_child)

    def _reset_in_child(self) -> None:
        self._open = {}  # the parent's runs are not this process's

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        attributes = span.attributes
        if attributes is not None and _keys.RUN_TYPE in attributes:
            self._open[id(span)] = span

    def on_end(self, span: ReadableSpan) -> None:
        self._open.pop(id(span), None)

    def cancel_all(self) -> int:
        """End every open run span as cancelled, the latest started first; how many there were."""
        spans = list(self._open.values())
        for span in reversed(spans):
            run_type = (span.attributes or {}).get(_keys.RUN_TYPE)
            type_key, name_key = _STATE_KEYS.get(str(run_type), _STATE_KEYS[_keys.RUN_TYPE_TASK])
            try:
                span.set_attributes({type_key: "CANCELLED", name_key: "Cancelled"})
                span.set_status(Status(StatusCode.ERROR, _DESCRIPTION))
                span.end()
            except Exception:
                internal_logger.debug("could not end a run span at SIGTERM", exc_info=True)
        return len(spans)


_open_runs: weakref.WeakKeyDictionary[TracerProvider, OpenRuns] = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_previous: Any = signal.SIG_DFL


def handle_sigterm(tracer_provider: TracerProvider) -> None:
    """Watch ``tracer_provider``'s runs for SIGTERM, and install the handler.

    Installs the handler only from the main thread, and only over the default action or a handler of
    the program's own (which it then calls instead); never over an ignored signal. Never raises.
    """
    global _previous  # noqa: PLW0603 - one handler per process
    with _lock:
        if tracer_provider not in _open_runs:
            _open_runs[tracer_provider] = runs = OpenRuns()
            tracer_provider.add_span_processor(runs)
    if threading.current_thread() is not threading.main_thread():
        return
    try:
        current = signal.getsignal(signal.SIGTERM)
        if current is _on_sigterm or current is signal.SIG_IGN or current is None:
            return  # ours already; ignored on purpose; or set outside Python: leave it be
        signal.signal(signal.SIGTERM, _on_sigterm)
        _previous = current
    except (ValueError, OSError):  # no signals here (an embedded interpreter, say)
        internal_logger.debug("could not install the SIGTERM handler", exc_info=True)


def _on_sigterm(signum: int, frame: FrameType | None) -> Any:
    previous = _previous
    if callable(previous):
        return previous(signum, frame)  # the program's own handler decides
    terminate()
    return None


def terminate() -> None:
    """End the open runs as cancelled, shut the exporters down within the bound, die of SIGTERM."""
    # A run still going on in another thread may end its span, already ended here; the SDK's complaint
    # about that is of no use to anyone in the last moments of the process.
    logging.getLogger("opentelemetry.sdk.trace").setLevel(logging.ERROR)
    # Not here, in the handler: the interrupted main thread may hold a lock that ending a span takes
    # (a span processor's), and would wait for itself. The helper may block on it too; the bound holds.
    helper = threading.Thread(target=_cancel_and_shut_down, name="otel_runtime-sigterm", daemon=True)
    helper.start()
    helper.join(settings.shutdown_timeout_millis / 1000 + _SLACK_S)
    tell_running_ended()  # a pool worker: its task runs have their (cancelled) spans, not a crash
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _cancel_and_shut_down() -> None:
    """End the open runs as cancelled, then do what the exit hooks do: every exporter and metric
    reader stops, all within the exit bound."""
    for runs in list(_open_runs.values()):
        runs.cancel_all()
    try:
        start_shutdown_at_exit()
        shutdown_at_exit()
        join_shutdown_at_exit()
    except Exception:
        internal_logger.debug("shutdown at SIGTERM failed", exc_info=True)
