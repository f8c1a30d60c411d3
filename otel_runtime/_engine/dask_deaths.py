"""Worker deaths on a Dask cluster, told to the attempt Dask runs next (for ``DaskTaskRunner``).

When a worker dies, the scheduler logs a ``remove-worker`` event (topic ``"all"``) naming the tasks it
was running and the results only it held, *before* it sends those tasks to other workers.
:class:`DeathRecorder`, a scheduler plugin, hears that event and annotates each of those tasks with
the dead worker's address and whether the run had ended there (its span exported); Dask sends a
task's annotations with it to its next worker, so the next attempt (:func:`run_on_dask_worker`) knows
without asking the scheduler:

- no death: an ordinary task run (the normal path adds no round trip);
- deaths of attempts that had not ended (killed mid-run, nothing exported): its span carries a
  ``worker.died`` event per dead worker and ``task_run.attempts``;
- an earlier attempt had ended (its span exported, its result lost with the worker): it runs again for
  the result under an unsampled parent, so no second task-run span, and records the deaths in a short
  ``worker.died`` span under the flow span.

A run has ended for the scheduler when its result is in a worker's memory (task-finished arrived), or
when its worker told the scheduler so after exporting its span (``ENDED_TOPIC``, a round trip that
closes the gap between the export and task-finished). Every failure here falls back to an ordinary
task run: telemetry never breaks the flow.
"""

from __future__ import annotations

import collections
from typing import Any, Final

from distributed.diagnostics.plugin import SchedulerPlugin
from opentelemetry import trace
from opentelemetry.context import Context, set_value
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.identity import EARLIER_DEATHS
from otel_runtime._core.tracing import tracer
from otel_runtime._engine.remote import RemoteCall, call_context, run_task

__all__ = ["ENDED_TOPIC", "PLUGIN_NAME", "DeathRecorder", "record_deaths", "run_on_dask_worker"]

PLUGIN_NAME: Final = "otel_runtime-worker-deaths"
ENDED_TOPIC: Final = "otel_runtime.task-run-ended"
"""Scheduler event topic: a worker exported the span of the task with this key (the message)."""
DEATHS: Final = "otel_runtime.worker_deaths"
"""Task annotation: the addresses of the workers that died running (or holding) this task."""
ENDED: Final = "otel_runtime.ended"
"""Task annotation: an attempt whose worker died had ended (its task-run span was exported)."""
# Keys told ended, oldest forgotten first: a key is needed only until its task-finished arrives (then a
# death finds it among the lost results), milliseconds later; the bound only caps the memory.
_MAX_ENDED: Final = 10_000
# A scheduler that does not answer the tell at once must not hold up the result (Dask is then in trouble).
_TELL_TIMEOUT_SECONDS: Final = 1.0


class DeathRecorder(SchedulerPlugin):
    """On the scheduler: annotates the tasks of a dead worker with its death before they are re-sent."""

    name = PLUGIN_NAME

    def __init__(self) -> None:
        self._scheduler: Any = None
        self._ended: collections.OrderedDict[Any, None] = collections.OrderedDict()

    async def start(self, scheduler: Any) -> None:
        self._scheduler = scheduler

    def log_event(self, topic: str, msg: Any) -> None:
        if topic == ENDED_TOPIC:
            self._ended[msg] = None
            if len(self._ended) > _MAX_ENDED:
                self._ended.popitem(last=False)
        elif topic == "all" and isinstance(msg, dict) and msg.get("action") == "remove-worker":
            if msg.get("expected"):
                return  # a worker retired on purpose: not a death
            worker = str(msg.get("worker"))
            for key in msg.get("processing-tasks", ()):
                ended = key in self._ended  # it exported its span, then died before task-finished
                self._ended.pop(key, None)
                self._annotate(key, worker, ended=ended)
            for key in msg.get("lost-computed-tasks", ()):
                self._ended.pop(key, None)
                self._annotate(key, worker, ended=True)

    def _annotate(self, key: Any, worker: str, *, ended: bool) -> None:
        state = self._scheduler.tasks.get(key) if self._scheduler is not None else None
        if state is None:
            return
        annotations = dict(state.annotations or {})  # possibly shared with other tasks: copied
        annotations[DEATHS] = [*annotations.get(DEATHS, ()), worker]
        annotations[ENDED] = bool(annotations.get(ENDED)) or ended
        state.annotations = annotations


def record_deaths(client: Any) -> bool:
    """Register :class:`DeathRecorder` on the client's scheduler (once: it stays for later clients);
    whether it is there. Without it (a scheduler that cannot import otel_runtime), a run whose worker
    died is recorded as before (a re-run's span knows nothing of the death)."""
    try:
        if PLUGIN_NAME not in client.run_on_scheduler(_plugin_names):
            client.register_plugin(DeathRecorder(), name=PLUGIN_NAME)
    except Exception:
        warn_once("dask-plugin", "otel_runtime could not register its Dask scheduler plugin", exc_info=True)
        return False
    return True


def _plugin_names(dask_scheduler: Any) -> list[str]:
    """On the scheduler: the names of its plugins."""
    return list(dask_scheduler.plugins)


def run_on_dask_worker(call: RemoteCall) -> Any:
    """Run ``call`` on this Dask worker (``remote.run_task``), told of its earlier workers' deaths."""
    worker, key, deaths, ended = _earlier_deaths()
    try:
        if not deaths:
            return run_task(call)
        if not ended:
            return run_task(call, set_value(EARLIER_DEATHS, (call.task_run_id, deaths), call_context(call)))
        _record_lost_result(call, deaths)  # first: the run's flush exports it
        return run_task(call, _unsampled(call_context(call)))
    finally:  # failed runs too: their span is exported as well
        if worker is not None:
            _tell_ended(worker, key)


def _earlier_deaths() -> tuple[Any, Any, tuple[str, ...], bool]:
    """This worker, the running task's key, the dead workers of its earlier attempts, whether one ended."""
    try:
        import distributed

        worker = distributed.get_worker()
        key = worker.get_current_task()
        annotations = worker.state.tasks[key].annotations or {}
        deaths = tuple(str(address) for address in annotations.get(DEATHS, ()))
        return worker, key, deaths, bool(annotations.get(ENDED))
    except Exception:
        warn_once("dask-deaths", "otel_runtime could not read a Dask task's earlier attempts", exc_info=True)
        return None, None, (), False


def _tell_ended(worker: Any, key: Any) -> None:
    """Tell the scheduler this run's span is exported (waits for it: the worker may die right after)."""
    try:
        from distributed.utils import sync

        sync(
            worker.loop,
            worker.scheduler.log_event,
            topic=ENDED_TOPIC,
            msg=key,
            callback_timeout=_TELL_TIMEOUT_SECONDS,
        )
    except Exception:
        warn_once("dask-ended", "otel_runtime could not tell the Dask scheduler a run ended", exc_info=True)


def _unsampled(context: Context) -> Context:
    """``context`` with its parent span marked not sampled: a task run in it exports no span."""
    parent = trace.get_current_span(context).get_span_context()
    quiet = SpanContext(
        parent.trace_id, parent.span_id, True, TraceFlags(TraceFlags.DEFAULT), parent.trace_state
    )
    return trace.set_span_in_context(NonRecordingSpan(quiet), context)


def _record_lost_result(call: RemoteCall, deaths: tuple[str, ...]) -> None:
    """A ``worker.died`` span under the flow span: the run's span stands, its result was computed again."""
    try:
        span = tracer().start_span(
            _keys.WORKER_DIED_SPAN,
            call_context(call),
            kind=SpanKind.INTERNAL,
            attributes={
                _keys.TASK_RUN_ID: call.task_run_id,
                _keys.TASK_NAME: call.task.name,
                _keys.TASK_RUN_ATTEMPTS: len(deaths) + 1,
                _keys.WORKER_ADDRESS: deaths[-1],
            },
        )
        for address in deaths:
            span.add_event(_keys.WORKER_DIED_EVENT, {_keys.WORKER_ADDRESS: address})
        span.end()
    except Exception:
        warn_once("dask-lost-result", "otel_runtime could not record a Dask worker's death", exc_info=True)
