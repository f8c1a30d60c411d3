"""Run identity on the OpenTelemetry context (layer 2: OpenTelemetry API only).

A run puts three things on the context it executes in: its span, its run context object under a
private key, and the run ids in W3C baggage. Code in the same process reads the run context object;
code in another process (a worker, an HTTP handler) has only the baggage, read through
:func:`inbound`, which drops anything that does not look like a run id or a run name.
"""

from __future__ import annotations

import re
from typing import Final

from opentelemetry import baggage, trace
from opentelemetry.context import Context, create_key, get_current

from otel_runtime._base import keys as _keys

__all__ = [
    "DEPLOYMENT",
    "EARLIER_DEATHS",
    "FLOW_RUN_CONTEXT",
    "TAGS",
    "TASK_RUN_CONTEXT",
    "inbound",
    "is_valid_id",
    "is_valid_name",
    "with_flow_run",
    "with_task_run",
]

FLOW_RUN_CONTEXT: Final = create_key("otel_runtime.flow_run_context")
TASK_RUN_CONTEXT: Final = create_key("otel_runtime.task_run_context")
DEPLOYMENT: Final = create_key("otel_runtime.deployment")
TAGS: Final = create_key("otel_runtime.tags")
EARLIER_DEATHS: Final = create_key("otel_runtime.earlier_deaths")
"""``(task_run_id, dead worker addresses)``: a remote attempt of that run after its workers died."""

MAX_NAME_LENGTH: Final = 256
_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._:-]{0,127}")
_ID_KEYS: Final = frozenset({_keys.DEPLOYMENT_ID, _keys.FLOW_RUN_ID, _keys.TASK_RUN_ID})
_CACHE_SIZE: Final = 1024
# The context keys under which OpenTelemetry keeps the current span and the baggage, learnt through
# the public API (the one entry a set_* call puts on an empty context), so a run's context can be
# built in one copy of its parent instead of one copy per entry.
_SPAN_KEY: Final = next(iter(trace.set_span_in_context(trace.INVALID_SPAN, Context())))
_BAGGAGE_KEY: Final = next(iter(baggage.set_baggage("_", "_", Context())))
# Whether a received value passed, per kind: a string that is a fine name may not pass as an id.
_valid_ids: dict[str, bool] = {}
_valid_names: dict[str, bool] = {}


def is_valid_id(value: object) -> bool:
    """Whether ``value`` looks like a run or deployment id: 1-128 of ``[0-9A-Za-z._:-]``."""
    return isinstance(value, str) and _ID.fullmatch(value) is not None


def is_valid_name(value: object) -> bool:
    """Whether ``value`` is a usable run, flow or deployment name: printable and at most 256 characters."""
    return isinstance(value, str) and 0 < len(value) <= MAX_NAME_LENGTH and value.isprintable()


def inbound(key: str, context: Context | None = None) -> str | None:
    """The baggage value of one of our keys, or ``None`` when it is absent or not well formed."""
    # What ``baggage.get_baggage(key, context)`` returns, read in place (this runs on every run's start).
    entries = (context if context is not None else get_current()).get(_BAGGAGE_KEY)
    value = entries.get(key) if isinstance(entries, dict) else None
    if not isinstance(value, str):
        return None
    is_id = key in _ID_KEYS
    cache = _valid_ids if is_id else _valid_names
    known = cache.get(value)
    if known is None:
        known = is_valid_id(value) if is_id else is_valid_name(value)
        if len(cache) >= _CACHE_SIZE:
            cache.clear()
        cache[value] = known
    return value if known else None


def _baggage_of(context: Context) -> dict[str, object]:
    """A copy of ``context``'s baggage entries (what ``baggage.set_baggage`` starts from)."""
    entries = context.get(_BAGGAGE_KEY)
    return entries.copy() if isinstance(entries, dict) else {}


def with_flow_run(
    context: Context, span: trace.Span, run_context: object, entries: dict[str, str]
) -> Context:
    """``context`` entered into a flow run: its span, its run context, its baggage entries, no task run.

    The same context as ``set_span_in_context``, ``set_value`` and ``set_baggage`` / ``remove_baggage``
    one after another would give, built in one copy.
    """
    entries_now = _baggage_of(context)
    entries_now.pop(_keys.TASK_RUN_ID, None)
    entries_now.update(entries)
    values = context.copy()
    values[_SPAN_KEY] = span
    values[FLOW_RUN_CONTEXT] = run_context
    if values.get(TASK_RUN_CONTEXT) is not None:
        values[TASK_RUN_CONTEXT] = None
    values[_BAGGAGE_KEY] = entries_now
    return Context(values)


def with_task_run(context: Context, span: trace.Span, run_context: object, task_run_id: str) -> Context:
    """``context`` entered into a task run: its span, its run context and ``task_run.id`` in baggage
    (built in one copy, as ``with_flow_run``)."""
    entries_now = _baggage_of(context)
    entries_now[_keys.TASK_RUN_ID] = task_run_id
    values = context.copy()
    values[_SPAN_KEY] = span
    values[TASK_RUN_CONTEXT] = run_context
    values[_BAGGAGE_KEY] = entries_now
    return Context(values)
