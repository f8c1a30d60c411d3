"""Run metrics: active runs, run duration and runs by final state, kept by an SDK span processor.

:class:`RunMetrics` watches the flow run and task run spans (the ones with ``otel_runtime.run.type``)
and keeps, through the OpenTelemetry metrics API of the meter provider it is given:

- ``otel_runtime.run.active``: an up-down counter of the runs started and not yet ended;
- ``otel_runtime.run.duration``: a histogram of run durations in seconds, with bucket boundaries from a
  millisecond to six hours;
- ``otel_runtime.run.finished``: a counter of the runs ended, by final state.

Attributes: ``otel_runtime.run.type``, ``flow.name``, ``task.name``, ``deployment.name`` and, on the
last two, ``otel_runtime.run.state.type`` / ``.name``; never a run id. Duration and finished runs are
recorded in the context of the run's span, so with the SDK's default ``trace_based`` exemplar filter
each carries exemplars with the trace id of a run.

Cost: the SDK spends about 8 µs on each synchronous measurement, a third of a task run. So a run's own
path only notes its span (a dict entry at the start, a queue entry at the end); the queue is recorded
into the SDK's instruments when a reader collects (the active-runs callback drains it first, so a
collection sees every run that ended before it), or by the run that finds it full: one histogram
measurement per run, one counter add per kind of run and state. Active runs are counted at collection
from the runs started and not ended. Exemplars then carry the time of that recording rather
than the run's end.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable
from typing import Final

from opentelemetry.context import Context
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor
from opentelemetry.trace import NonRecordingSpan, set_span_in_context
from opentelemetry.util.types import Attributes

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.scope import SCHEMA_URL, scope_version
from otel_runtime._sdk.run_spans import RunKey, duration_seconds, final_state, run_key

__all__ = ["DURATION_BUCKETS_S", "METER_NAME", "RunMetrics"]

METER_NAME: Final = "otel_runtime"
DURATION_BUCKETS_S: Final = (
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 10800.0, 21600.0,
)  # fmt: skip
"""Histogram bucket boundaries, seconds: 1 ms to 6 h (runs of milliseconds to hours)."""

_MAX_QUEUED: Final = 4096
"""Ended runs queued before the run that ends next records them itself (bounds memory without a reader)."""

_Open = tuple[str, ReadableSpan, "Context | None"]  # run type, span, the context it started in


class RunMetrics(SpanProcessor):
    """Keeps the run metrics of the run spans it sees; add it to a tracer provider."""

    def __init__(self, meter_provider: MeterProvider) -> None:
        meter = meter_provider.get_meter(METER_NAME, scope_version(), schema_url=SCHEMA_URL)
        self._duration = meter.create_histogram(
            _keys.METRIC_RUN_DURATION,
            unit="s",
            description="Duration of flow runs and task runs, from start to end",
            explicit_bucket_boundaries_advisory=list(DURATION_BUCKETS_S),
        )
        self._finished = meter.create_counter(
            _keys.METRIC_RUNS_FINISHED,
            unit="{run}",
            description="Flow runs and task runs ended, by final state",
        )
        self._open: dict[int, _Open] = {}  # span id -> the run, from start to end
        self._ended: collections.deque[_Open] = collections.deque()
        self._seen: set[RunKey] = set()  # every kind of run observed: reported (as 0) once none runs
        self._attributes: dict[tuple[RunKey, tuple[str, str] | None], Attributes] = {}
        meter.create_observable_up_down_counter(
            _keys.METRIC_RUNS_ACTIVE,
            callbacks=[self._observe_active],
            unit="{run}",
            description="Flow runs and task runs started and not yet ended",
        )

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        try:
            attributes = span.attributes
            run_type = attributes.get(_keys.RUN_TYPE) if attributes else None
            if isinstance(run_type, str):
                self._open[span.context.span_id] = (run_type, span, parent_context)
        except Exception:
            warn_once("run-metrics", "otel_runtime could not count a run in the run metrics", exc_info=True)

    def on_end(self, span: ReadableSpan) -> None:
        try:
            attributes = span.attributes
            run_type = attributes.get(_keys.RUN_TYPE) if attributes else None
            if not isinstance(run_type, str) or span.context is None:
                return
            # Started before this processor was added: no parent context, so a task's flow name is unknown.
            entry: _Open | None = self._open.pop(span.context.span_id, None)
            self._ended.append(entry or (run_type, span, None))
            if len(self._ended) > _MAX_QUEUED:
                self._record_ended()
        except Exception:
            warn_once("run-metrics", "otel_runtime could not count a run in the run metrics", exc_info=True)

    def shutdown(self) -> None:
        """Record what is queued; the instruments stay with their meter provider."""
        self._record_ended()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Record what is queued (the meter provider's readers export it)."""
        self._record_ended()
        return True

    def _attributes_of(self, key: RunKey, state: tuple[str, str] | None) -> Attributes:
        cached = self._attributes.get((key, state))
        if cached is not None:
            return cached
        run_type, flow_name, task_name, deployment_name = key
        named = (
            (_keys.FLOW_NAME, flow_name),
            (_keys.TASK_NAME, task_name),
            (_keys.DEPLOYMENT_NAME, deployment_name),
        )
        attributes = {_keys.RUN_TYPE: run_type, **{name: value for name, value in named if value is not None}}
        if state is not None:
            attributes[_keys.RUN_STATE_TYPE], attributes[_keys.RUN_STATE_NAME] = state
        self._attributes[key, state] = attributes
        return attributes

    def _record_ended(self) -> None:
        """Record every queued run end: each duration into the histogram, and one counter add per kind of
        run and state (the counter's exemplar is the last of those runs)."""
        take = self._ended.popleft
        finished: dict[tuple[RunKey, tuple[str, str]], tuple[int, Context]] = {}
        while True:
            try:
                run_type, span, parent_context = take()
            except IndexError:
                break
            key = run_key(run_type, span.attributes or {}, parent_context)
            self._seen.add(key)
            state = final_state(span, run_type)
            assert span.context is not None  # checked at the end of the run
            context = set_span_in_context(NonRecordingSpan(span.context))
            self._duration.record(duration_seconds(span), self._attributes_of(key, state), context=context)
            count, _ = finished.get((key, state), (0, context))
            finished[key, state] = (count + 1, context)
        for (key, state), (count, context) in finished.items():
            self._finished.add(count, self._attributes_of(key, state), context=context)

    def _observe_active(self, options: CallbackOptions) -> Iterable[Observation]:
        try:
            self._record_ended()  # a collection starts here: let it see every run that has ended
        except Exception:
            warn_once("run-metrics", "otel_runtime could not record the run metrics", exc_info=True)
        running = collections.Counter(
            run_key(run_type, span.attributes or {}, parent_context)
            for run_type, span, parent_context in list(self._open.values())  # a copy: runs go on meanwhile
        )
        self._seen.update(running)
        return [Observation(running.get(key, 0), self._attributes_of(key, None)) for key in list(self._seen)]
