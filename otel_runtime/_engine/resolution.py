"""Upstream futures and states in a run's arguments and ``wait_for``: waited for, and replaced by results.

As in Prefect, the engine looks inside lists, tuples (named ones too), sets, dicts, dataclass instances
and pydantic models; ``quote(value)`` passes a value through unlooked-at, ``allow_failure(upstream)``
lets a failed upstream through as its exception, ``unmapped(value)`` is unwrapped. An upstream that did
not complete (and is not allowed to fail) raises :class:`UpstreamTaskError`, which says which upstream
it was: the downstream run then ends ``NotReady`` without running.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
from collections.abc import Iterable
from typing import Any, Final

from otel_runtime._engine.annotations import allow_failure, quote, unmapped
from otel_runtime._engine.exceptions import UpstreamTaskError
from otel_runtime._engine.futures import Settled, TaskRunFuture
from otel_runtime._engine.states import FAILURE_TYPES, State, StateType

__all__ = ["BlockedBy", "has_upstreams", "resolve_inputs", "wait_for_upstreams"]

_ATOMIC: Final = frozenset({int, float, str, bytes, bool, type(None), complex})


class BlockedBy(UpstreamTaskError):
    """An :class:`UpstreamTaskError` that carries the ``upstream`` (a future or a state) that blocked."""

    def __init__(self, upstream: TaskRunFuture[Any] | State[Any]) -> None:
        run_id = upstream.task_run_id if isinstance(upstream, TaskRunFuture) else (
            upstream.state_details.task_run_id or upstream.state_details.flow_run_id
        )
        super().__init__(f"Upstream task run '{run_id}' did not reach a 'COMPLETED' state.")
        self.upstream = upstream


BlockedBy.__module__ = "otel_runtime.exceptions"


def _upstream_value(upstream: TaskRunFuture[Any] | State[Any], allowed: bool) -> Any:
    """The result an upstream hands downstream, after waiting for it; :class:`BlockedBy` if it did
    not complete (a failure is let through as its exception when ``allowed``)."""
    if isinstance(upstream, TaskRunFuture):
        inner = upstream._future
        try:
            value = inner.result()
        except Exception as exc:
            if allowed and not isinstance(exc, concurrent.futures.CancelledError):
                return exc
            raise BlockedBy(upstream) from None
        if not isinstance(value, Settled):
            return value
        state = value.state
    else:
        state = upstream
    if state.type is StateType.COMPLETED:
        return state.result()
    if allowed and state.type in FAILURE_TYPES and state.type is not StateType.CANCELLED:
        return state.result(raise_on_failure=False)
    raise BlockedBy(upstream)


def resolve_inputs(value: Any, allowed: bool = False) -> Any:
    """``value`` with every upstream future and state in it replaced by its result (waiting for each)."""
    kind = type(value)
    if kind in _ATOMIC:
        return value
    if isinstance(value, (TaskRunFuture, State)):
        return _upstream_value(value, allowed)
    if isinstance(value, quote):
        return value.unwrap()
    if isinstance(value, allow_failure):
        return resolve_inputs(value.unwrap(), True)
    if isinstance(value, unmapped):
        return resolve_inputs(value.unwrap(), allowed)
    if kind is list or kind is set or kind is frozenset:
        return kind(resolve_inputs(item, allowed) for item in value)
    if isinstance(value, tuple):
        items = [resolve_inputs(item, allowed) for item in value]
        return kind(*items) if hasattr(value, "_fields") else kind(items)
    if isinstance(value, dict):
        resolved = {key: resolve_inputs(item, allowed) for key, item in value.items()}
        return resolved if kind is dict else kind(resolved)
    if isinstance(value, (list, set)):
        return kind(resolve_inputs(item, allowed) for item in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {}
        for field in dataclasses.fields(value):
            if field.init:
                item = getattr(value, field.name)
                resolved_item = resolve_inputs(item, allowed)
                if resolved_item is not item:
                    changes[field.name] = resolved_item
        return dataclasses.replace(value, **changes) if changes else value
    fields = getattr(kind, "model_fields", None)  # a pydantic (v2) model
    if isinstance(fields, dict) and hasattr(value, "model_copy"):
        changes = {}
        for name in fields:
            item = getattr(value, name, None)
            resolved_item = resolve_inputs(item, allowed)
            if resolved_item is not item:
                changes[name] = resolved_item
        return value.model_copy(update=changes) if changes else value
    return value


def has_upstreams(value: Any) -> bool:
    """Whether ``value`` holds an upstream future or state that :func:`resolve_inputs` would replace."""
    kind = type(value)
    if kind in _ATOMIC:
        return False
    if isinstance(value, (TaskRunFuture, State, allow_failure, unmapped)):
        return True
    if isinstance(value, quote):
        return False
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(has_upstreams(item) for item in value)
    if isinstance(value, dict):
        return any(has_upstreams(item) for item in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(has_upstreams(getattr(value, field.name)) for field in dataclasses.fields(value))
    fields = getattr(kind, "model_fields", None)
    if isinstance(fields, dict):
        return any(has_upstreams(getattr(value, name, None)) for name in fields)
    return False


def wait_for_upstreams(wait_for: Iterable[Any]) -> list[TaskRunFuture[Any] | State[Any]]:
    """Wait for each future or state in ``wait_for`` (``allow_failure(...)`` lets a failure through);
    the upstreams waited for, for span links. Raises :class:`BlockedBy` for one that did not complete."""
    upstreams: list[TaskRunFuture[Any] | State[Any]] = []
    for item in wait_for:
        allowed = isinstance(item, allow_failure)
        target = item.unwrap() if allowed else item
        if isinstance(target, (TaskRunFuture, State)):
            upstreams.append(target)
            _upstream_value(target, allowed)
        else:
            resolve_inputs(target, allowed)
    return upstreams
