"""What a run's span says about the run: its kind, names, final state and duration.

Shared by the run event and run metric processors. A run span is one with the ``otel_runtime.run.type``
attribute. Its final state is Prefect's, read from ``flow_run.state.type`` / ``.name`` (or the
``task_run.`` ones) when the engine recorded it, else derived from the span status: UNSET or OK is
``COMPLETED`` / ``Completed``, ERROR is ``FAILED`` / ``Failed``, or ``CANCELLED`` / ``Cancelled`` when
the status description says the run was cancelled.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from otel_runtime._base import keys as _keys
from otel_runtime._core.identity import inbound

__all__ = ["CANCELLED_PREFIX", "RunKey", "duration_seconds", "final_state", "run_key"]

CANCELLED_PREFIX: Final = "Cancelled"
"""How the engine starts the status description of a run ended by a cancellation."""

RunKey = tuple[str, "str | None", "str | None", "str | None"]
"""What tells runs apart in metrics: run type, flow name, task name, deployment name."""

_STATE_KEYS: Final = {
    _keys.RUN_TYPE_FLOW: (_keys.FLOW_RUN_STATE_TYPE, _keys.FLOW_RUN_STATE_NAME),
    _keys.RUN_TYPE_TASK: (_keys.TASK_RUN_STATE_TYPE, _keys.TASK_RUN_STATE_NAME),
}
_COMPLETED: Final = ("COMPLETED", "Completed")
_FAILED: Final = ("FAILED", "Failed")
_CANCELLED: Final = ("CANCELLED", "Cancelled")


def run_key(run_type: str, attributes: Mapping[str, Any], parent_context: Context | None) -> RunKey:
    """The metric identity of a run. A task run's flow name comes from the baggage of its parent."""
    deployment = attributes.get(_keys.DEPLOYMENT_NAME)
    deployment_name = deployment if isinstance(deployment, str) else None
    if run_type == _keys.RUN_TYPE_FLOW:
        flow = attributes.get(_keys.FLOW_NAME)
        return run_type, flow if isinstance(flow, str) else None, None, deployment_name
    task = attributes.get(_keys.TASK_NAME)
    flow_name = inbound(_keys.FLOW_NAME, parent_context) if parent_context is not None else None
    return run_type, flow_name, task if isinstance(task, str) else None, deployment_name


def final_state(span: ReadableSpan, run_type: str) -> tuple[str, str]:
    """The run's final state type and name (``("COMPLETED", "Completed")``, ``("FAILED", "Failed")``...)."""
    attributes = span.attributes or {}
    type_key, name_key = _STATE_KEYS.get(run_type, _STATE_KEYS[_keys.RUN_TYPE_TASK])
    state_type = attributes.get(type_key)
    if isinstance(state_type, str) and state_type:
        state_name = attributes.get(name_key)
        return state_type, state_name if isinstance(state_name, str) and state_name else state_type.title()
    status = span.status
    if status.status_code is not StatusCode.ERROR:
        return _COMPLETED
    if (status.description or "").startswith(CANCELLED_PREFIX):
        return _CANCELLED
    return _FAILED


def duration_seconds(span: ReadableSpan) -> float:
    """Seconds from the span's start to its end (0 for a span without both)."""
    if span.start_time is None or span.end_time is None:
        return 0.0
    return max(span.end_time - span.start_time, 0) / 1e9
