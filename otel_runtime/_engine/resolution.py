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
from collections.abc import Callable, Iterable
from typing import Any, Final

from otel_runtime._engine import made
from otel_runtime._engine.annotations import BaseAnnotation, allow_failure, quote
from otel_runtime._engine.exceptions import UpstreamTaskError
from otel_runtime._engine.futures import Settled, TaskRunFuture
from otel_runtime._engine.states import FAILURE_TYPES, State, StateType

__all__ = ["BlockedBy", "has_upstreams", "map_futures", "resolve_inputs", "wait_for_upstreams"]

_ATOMIC: Final = frozenset({int, float, str, bytes, bool, type(None), complex})


class BlockedBy(UpstreamTaskError):  # noqa: N818 - an UpstreamTaskError, as Prefect names it
    """An :class:`UpstreamTaskError` that carries the ``upstream`` (a future or a state) that blocked."""

    def __init__(self, upstream: TaskRunFuture[Any] | State[Any]) -> None:
        run_id = (
            upstream.task_run_id
            if isinstance(upstream, TaskRunFuture)
            else (upstream.state_details.task_run_id or upstream.state_details.flow_run_id)
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
    if type(value) in _ATOMIC:
        return value
    if isinstance(value, (TaskRunFuture, State)):
        return _upstream_value(value, allowed)
    if isinstance(value, BaseAnnotation):  # quote: as it is; allow_failure, unmapped: what they wrap
        if isinstance(value, quote):
            return value.unwrap()
        return resolve_inputs(value.unwrap(), allowed or isinstance(value, allow_failure))
    if isinstance(value, (list, tuple, set, frozenset, dict)):
        return _resolve_collection(value, allowed)
    return _resolve_fields(value, allowed)


def map_futures(value: Any, replace: Callable[[TaskRunFuture[Any]], Any]) -> Any:
    """``value`` with each future in it (at any depth) passed through ``replace``; ``quote`` unwrapped."""
    if type(value) in _ATOMIC:
        return value
    if isinstance(value, TaskRunFuture):
        return replace(value)
    if isinstance(value, quote):
        return value.unwrap()
    if isinstance(value, dict):
        return type(value)({key: map_futures(item, replace) for key, item in value.items()})
    if isinstance(value, (list, tuple, set, frozenset)) and not isinstance(value, BaseAnnotation):
        items = [map_futures(item, replace) for item in value]
        return type(value)(*items) if hasattr(value, "_fields") else type(value)(items)
    return value


def _resolve_collection(value: Any, allowed: bool) -> Any:
    kind = type(value)
    if isinstance(value, dict):
        resolved = {key: resolve_inputs(item, allowed) for key, item in value.items()}
        return resolved if kind is dict else kind(resolved)
    items = [resolve_inputs(item, allowed) for item in value]
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return kind(*items)  # a named tuple
    return kind(items)


def _resolve_fields(value: Any, allowed: bool) -> Any:
    """A dataclass instance or pydantic model with upstreams in its fields replaced (a copy), or
    ``value`` itself."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        names = [field.name for field in dataclasses.fields(value) if field.init]
    else:
        fields = getattr(type(value), "model_fields", None)  # a pydantic (v2) model
        if not isinstance(fields, dict) or not hasattr(value, "model_copy"):
            return value
        names = list(fields)
    changes = {}
    for name in names:
        item = getattr(value, name, None)
        resolved = resolve_inputs(item, allowed)
        if resolved is not item:
            changes[name] = resolved
    if not changes:
        return value
    if dataclasses.is_dataclass(value):
        return dataclasses.replace(value, **changes)  # type: ignore[type-var]
    return value.model_copy(update=changes)


SCAN_LIMIT: Final = 10_000
"""How many items :func:`has_upstreams` looks at before it answers no: a call passing a big list
never pays for a full scan (wrap one that holds futures in nothing: it is looked at when submitted)."""


def has_upstreams(value: Any, limit: int = SCAN_LIMIT) -> bool:
    """Whether ``value`` holds an upstream future or state, or an annotation (``quote`` too), that
    :func:`resolve_inputs` would replace, looking at no more than ``limit`` items."""
    if not made.anything:
        return False  # no future, state or annotation exists in this process: nothing to look for
    if type(value) in _ATOMIC:
        return False  # the common argument, answered without the walk
    pending = [value]
    seen = 0
    while pending and seen < limit:
        item = pending.pop()
        seen += 1
        kind = type(item)
        if kind in _ATOMIC:
            continue
        if isinstance(item, (TaskRunFuture, State, BaseAnnotation)):
            return True  # an upstream, or an annotation to unwrap (quote included)
        if isinstance(item, (list, tuple, set, frozenset)):
            pending.extend(item)
        elif isinstance(item, dict):
            pending.extend(item.values())
        elif dataclasses.is_dataclass(item) and not isinstance(item, type):
            pending.extend(getattr(item, field.name) for field in dataclasses.fields(item))
        else:
            fields = getattr(kind, "model_fields", None)
            if isinstance(fields, dict):
                pending.extend(getattr(item, name, None) for name in fields)
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
