"""The run fields of a log line, read from the active OpenTelemetry context.

The fields depend only on the active context, and an OpenTelemetry ``Context`` is immutable: as long
as the same context object is current (every line of one task run, say), the fields are the same.
So answers are kept, keyed on the identity of their context and holding it through a weak reference
(a cached answer never keeps a finished run's context, parameters included, alive).
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Final

from opentelemetry import trace
from opentelemetry.context import Context

from otel_runtime._base import keys as _keys
from otel_runtime._core.current_context import current_context
from otel_runtime._core.identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT, inbound
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext

__all__ = ["EMPTY_FIELDS", "RunFields", "printable", "run_fields"]

RunFields = Mapping[str, "str | None"]
"""``deployment_name``, ``flow_run_id``, ... in ``_keys.LOG_FIELDS`` order. Shared between callers, so
typed read-only (a plain dict underneath: ``event_dict.update`` copies one twice as fast as a proxy)."""

EMPTY_FIELDS: Final[RunFields] = dict.fromkeys(_keys.LOG_FIELDS)
"""The fields of a line written outside any run: every key, every value ``None``."""


_CACHE_SIZE: Final = 256
_cache: dict[int, tuple[weakref.ReferenceType[Context], RunFields]] = {}
"""Recent contexts (weakly, by id) and their fields: threads of a pool interleave their runs' lines."""


def run_fields() -> RunFields:
    """``deployment_name``, run ids and names, ``trace_id`` and ``span_id`` of the active context.

    Every key of ``_keys.LOG_FIELDS`` is present; a value is ``None`` when there is no such run. The
    mapping is shared: copy it before changing it.
    """
    context = current_context()
    key = id(context)
    entry = _cache.get(key)
    if entry is not None and entry[0]() is context:  # a dead entry's id may have been reused: check
        return entry[1]
    fields = _fields_of(context)
    if len(_cache) >= _CACHE_SIZE:
        _cache.clear()
    _cache[key] = (weakref.ref(context), fields)
    return fields


def printable(value: str) -> str:
    """``value`` with every unprintable character (newline, escape, ...) written as its Python escape.

    Run names from a ``flow_run_name`` template or a deployment may hold anything; a log line must
    not let them start a new line or move the cursor.
    """
    if value.isprintable():
        return value
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in value)


def _name(value: str | None) -> str | None:
    return None if value is None else printable(value)


def _fields_of(context: Context) -> RunFields:
    if not context:
        return EMPTY_FIELDS  # the root context: no span, no baggage, no run
    flow = context.get(FLOW_RUN_CONTEXT)
    task = context.get(TASK_RUN_CONTEXT)
    if isinstance(flow, FlowRunContext):
        record = flow.flow_run
        deployment = record.deployment
        flow_run_id: str | None = record.id
        flow_run_name = _name(record.name)
        deployment_name = _name(deployment.name) if deployment is not None else None
    else:
        # A process that only received a carrier: baggage, validated (printable names, id-shaped ids).
        flow_run_id = inbound(_keys.FLOW_RUN_ID, context)
        flow_run_name = inbound(_keys.FLOW_RUN_NAME, context)
        deployment_name = inbound(_keys.DEPLOYMENT_NAME, context)
    if isinstance(task, TaskRunContext):
        task_run_id: str | None = task.task_run.id
        task_run_name = _name(task.task_run.name)
    else:
        task_run_id = inbound(_keys.TASK_RUN_ID, context)
        task_run_name = None
    span_context = trace.get_current_span(context).get_span_context()
    valid = span_context.is_valid
    return {
        _keys.LOG_DEPLOYMENT_NAME: deployment_name,
        _keys.LOG_FLOW_RUN_ID: flow_run_id,
        _keys.LOG_FLOW_RUN_NAME: flow_run_name,
        _keys.LOG_TASK_RUN_ID: task_run_id,
        _keys.LOG_TASK_RUN_NAME: task_run_name,
        _keys.LOG_TRACE_ID: trace.format_trace_id(span_context.trace_id) if valid else None,
        _keys.LOG_SPAN_ID: trace.format_span_id(span_context.span_id) if valid else None,
    }
