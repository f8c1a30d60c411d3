"""How a run's outcome becomes its final state, as Prefect's rules say, and how the state shows on its span.

- A run that returns a value is ``Completed``; one that raises is ``Failed`` (``Crashed`` for a signal,
  an exit or a dead worker).
- A run that returns a ``State`` it made takes that state; a task that returns one does not raise in
  its caller (the state is its return value); a flow that returns a failed one raises its exception.
- A run that returns run states (``return_state=True`` results, or futures, which a flow waits for)
  takes their aggregate: ``Completed`` when all completed, else ``Failed`` (``"1/2 states failed."``).
  A flow returns its futures' results, raising the first failure's exception.
- A run whose upstream did not complete never runs: ``Pending`` named ``NotReady``.

The run span carries the final state as ``<run>.state.type`` / ``<run>.state.name``. The start
attributes hold ``COMPLETED`` / ``Completed`` (final only when the span ends, like ``run_count``);
only a run that ends otherwise writes them again, so a plain run costs nothing more. Span status is
ERROR for FAILED and CRASHED only.

A :class:`Control` goes with a run that uses a state feature (``return_state=True``, ``wait_for``, a
submitted run); a plain call has none and builds no state unless a hook asks for one.
"""

from __future__ import annotations

import functools
import weakref
from typing import TYPE_CHECKING, Any, Final

from opentelemetry.trace import Status, StatusCode

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import settings
from otel_runtime._core.cicd import CICD_PIPELINE_RESULT, CICD_PIPELINE_TASK_RUN_RESULT, cicd_result
from otel_runtime._engine.annotations import quote
from otel_runtime._engine.futures import (
    RunHandle,
    Settled,
    TaskRunFuture,
    failed_state,
    is_cancellation,
    is_crash,
)
from otel_runtime._engine.hooks import run_hooks
from otel_runtime._engine.resolution import BlockedBy, map_futures
from otel_runtime._engine.run_kinds import TASK
from otel_runtime._engine.states import (
    FAILURE_TYPES,
    Pending,
    Running,
    State,
    StateType,
    aggregate,
    get_state_exception,
    is_state_iterable,
)

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope

__all__ = [
    "Control",
    "block",
    "close_state",
    "final_state",
    "handle_for",
    "link_upstreams",
    "new_handle",
    "on_failure",
    "on_start",
    "settle_flow",
    "settle_task",
    "start_attributes",
    "submitted_outcome",
]

_handles: dict[str, weakref.ref[RunHandle]] = {}
"""The handle of each submitted task run whose future is alive, by task run id: a weak value dictionary
written out (a ``WeakValueDictionary`` entry cost a submitted run 0.25 us more)."""


def _forget(handles: dict[str, Any], task_run_id: str, _handle: weakref.ref[RunHandle]) -> None:
    # Given the dict, not reading the global: a handle may die as the interpreter shuts down. Run ids
    # are unique: no later handle has this one's key.
    handles.pop(task_run_id, None)


def start_attributes(type_key: str, name_key: str) -> dict[str, str]:
    """The optimistic state attributes a run span starts with."""
    return {type_key: StateType.COMPLETED.value, name_key: "Completed"}


class Control:
    """What a run that uses a state feature carries: the caller wants its final ``state``
    (``return_state``), the ``upstreams`` it waited for, the ``handle`` that learns its span context."""

    __slots__ = ("handle", "return_state", "state", "upstreams")

    def __init__(self, return_state: bool = False, handle: RunHandle | None = None) -> None:
        self.return_state = return_state
        self.handle = handle
        self.upstreams: list[TaskRunFuture[Any] | State[Any]] = []
        self.state: State[Any] | None = None


def new_handle(task_run_id: str) -> RunHandle:
    """A handle for a run about to be submitted; its run fills it in when its span starts."""
    handle = RunHandle()
    _handles[task_run_id] = weakref.ref(handle, functools.partial(_forget, _handles, task_run_id))
    return handle


def handle_for(task_run_id: str) -> RunHandle | None:
    """The handle of a submitted run in this process, if its future is still alive."""
    ref = _handles.get(task_run_id)
    return ref() if ref is not None else None


def _details(scope: RunScope) -> dict[str, str | None]:
    record: Any = scope.record
    if scope.kind is TASK:
        return {"task_run_id": record.id, "flow_run_id": record.flow_run_id}
    return {"flow_run_id": record.id}


def _owned(state: State[Any], scope: RunScope) -> State[Any]:
    """``state`` marked as the state of ``scope``'s run (as Prefect fills in the run ids)."""
    for key, value in _details(scope).items():
        setattr(state.state_details, key, value)
    return state


def _is_manual(state: State[Any]) -> bool:
    return state.state_details.task_run_id is None and state.state_details.flow_run_id is None


def on_start(scope: RunScope, running: bool = True) -> None:
    """A run's span has started: tell its handle, link its upstreams, call its ``on_running`` hooks
    (unless it is not ``running``: a run that will not start)."""
    control = scope.control
    if control is not None:
        if control.handle is not None:
            control.handle.span_context = scope.span.get_span_context()
        if control.upstreams:
            link_upstreams(scope, control.upstreams, _keys.LINK_KIND_WAIT_FOR)
    owner: Any = scope.owner
    if running and owner is not None and owner.on_running_hooks:
        from opentelemetry import context as otel_context

        token = otel_context.attach(scope.context)
        try:
            run_hooks(owner, scope.record, _owned(Running(), scope), scope.span)
        finally:
            otel_context.detach(token)


def link_upstreams(scope: RunScope, upstreams: list[Any], kind: str) -> None:
    """Link ``scope``'s span to the spans of ``upstreams`` whose span context is known here."""
    for upstream in upstreams:
        if not isinstance(upstream, TaskRunFuture) or upstream.handle is None:
            continue
        span_context = upstream.handle.span_context
        if span_context is None:
            continue
        attributes = {_keys.LINK_KIND: kind, _keys.LINK_TASK_RUN_ID: upstream.task_run_id}
        if kind == _keys.LINK_KIND_UPSTREAM and upstream.done():
            attributes[_keys.LINK_STATE_TYPE] = upstream.state.type.value
            attributes[_keys.LINK_STATE_NAME] = upstream.state.name
        try:
            scope.span.add_link(span_context, attributes)
        except Exception:
            warn_once("span-link", "otel_runtime could not link a run to its upstream", exc_info=True)


def block(scope: RunScope, blocked: BlockedBy) -> State[Any]:
    """End ``scope``'s run as ``NotReady``: ``blocked.upstream`` did not complete."""
    state = _owned(Pending(name="NotReady", message=str(blocked)), scope)
    scope.state = state
    link_upstreams(scope, [blocked.upstream], _keys.LINK_KIND_UPSTREAM)
    return state


def settle_task(scope: RunScope, result: Any) -> Any:
    """A task run returned ``result``: take a returned state (or their aggregate); end hooks. Returns
    what the caller gets: ``result`` itself, as in Prefect (a returned state does not raise)."""
    if isinstance(result, State):
        scope.state = _owned(result, scope) if _is_manual(result) else _owned(aggregate([result]), scope)
    elif is_state_iterable(result):
        scope.state = _owned(aggregate(result), scope)
    scope.result = result
    _end_hooks(scope, None)
    return result


def settle_flow(scope: RunScope, result: Any) -> Any:
    """A flow run returned ``result``: wait for the futures in it and apply Prefect's final-state rules.

    Returns what the flow call returns; raises the exception of a failed returned state or future.
    """
    value = result
    if isinstance(result, quote):
        value = result.unwrap()
    elif isinstance(result, State):
        state = _owned(result, scope) if _is_manual(result) else _owned(aggregate([result]), scope)
        scope.state = state
        value = _state_value(scope, result, state)
    elif isinstance(result, TaskRunFuture):
        result.wait()
        inner = result.state
        scope.state = state = _owned(aggregate([inner]), scope)
        state.data = inner
        value = _state_value(scope, inner, state)
    elif isinstance(result, (list, tuple, set, dict)) and result:
        value = _settle_collection(scope, result)
    scope.result = value
    _end_hooks(scope, None)
    return value


def _state_value(scope: RunScope, inner: State[Any], state: State[Any]) -> Any:
    """What a flow that returned the state ``inner`` returns: its result, or its exception raised."""
    if state.type in FAILURE_TYPES:
        error = get_state_exception(inner if inner.type in FAILURE_TYPES else state)
        scope.state_error = error
        raise error
    return inner.result() if inner.is_final() else None


def _settle_collection(scope: RunScope, result: Any) -> Any:
    futures: list[TaskRunFuture[Any]] = []
    map_futures(result, futures.append)
    if not futures:
        if is_state_iterable(result):
            scope.state = _owned(aggregate(result), scope)  # returned as they are, as Prefect does
        return result
    for future in futures:
        future.wait()
    top = list(result.values()) if isinstance(result, dict) else list(result)
    states = [item for item in top if isinstance(item, State)] + [future.state for future in futures]
    state = scope.state = _owned(aggregate(states), scope)
    state.data = map_futures(result, lambda future: future.state)
    if state.type in FAILURE_TYPES:
        error = get_state_exception(state)
        scope.state_error = error
        raise error
    return map_futures(result, lambda future: future.result())


def on_failure(scope: RunScope, exc: BaseException) -> None:
    """The run ended by ``exc``: keep the state it came from (a returned failed state), or record a
    FAILED or CRASHED one; end hooks."""
    if scope.state is not None and getattr(scope, "state_error", None) is exc:
        _end_hooks(scope, exc)
        return
    scope.state = None
    _end_hooks(scope, exc)


def final_state(scope: RunScope, exc: BaseException | None) -> State[Any]:
    """The run's final state, built now if it was not recorded (a plain value or exception)."""
    if scope.state is None:  # built once: hooks and the caller see the same state object
        if exc is not None:
            details = _details(scope)
            scope.state = failed_state(
                exc, scope.kind.label, details.get("task_run_id"), details.get("flow_run_id")
            )
            scope.state_error = exc
        else:
            scope.state = _owned(State(StateType.COMPLETED, data=getattr(scope, "result", None)), scope)
    return scope.state


def _end_hooks(scope: RunScope, exc: BaseException | None) -> None:
    owner: Any = scope.owner
    if owner is not None and owner._has_end_hooks:
        run_hooks(owner, scope.record, final_state(scope, exc), scope.span)


_ERROR_TYPES: Final = frozenset({StateType.FAILED, StateType.CRASHED})


def _cicd_result(scope: RunScope, state_type: str, state_name: str) -> None:
    """The CI/CD result of a run that did not end ``Completed`` (the span started with ``success``)."""
    result = cicd_result(state_type, state_name)
    if result is not None:
        is_flow = scope.kind.state_type_key == _keys.FLOW_RUN_STATE_TYPE
        scope.span.set_attribute(CICD_PIPELINE_RESULT if is_flow else CICD_PIPELINE_TASK_RUN_RESULT, result)


def close_state(scope: RunScope, exc: BaseException | None) -> None:
    """Write the final state on the span if it is not the optimistic ``Completed``; hand it to the
    caller who asked for it."""
    span = scope.span
    state = scope.state
    type_key, name_key = scope.kind.state_type_key, scope.kind.state_name_key
    try:
        if state is not None:
            span.set_attributes({type_key: state.type.value, name_key: state.name})
            if state.type in _ERROR_TYPES and exc is None:
                span.set_status(Status(StatusCode.ERROR, f"{state.name}: {state.message or ''}".rstrip(": ")))
        elif exc is not None:
            if is_cancellation(exc):
                names = (StateType.CANCELLED.value, "Cancelled")
            elif is_crash(exc):
                names = (StateType.CRASHED.value, "Crashed")
            elif isinstance(exc, TimeoutError):
                names = (StateType.FAILED.value, _keys.TIMED_OUT_STATE_NAME)
            else:
                names = (StateType.FAILED.value, "Failed")
            span.set_attributes({type_key: names[0], name_key: names[1]})
        if settings.semconv_cicd and state is not None:
            _cicd_result(scope, state.type.value, state.name)
        elif settings.semconv_cicd and exc is not None:
            _cicd_result(scope, *names)
    except Exception:
        warn_once("state-attributes", "otel_runtime could not record a run's state", exc_info=True)
    control = scope.control
    if control is not None and (state is not None or control.return_state):
        control.state = final_state(scope, exc)


def submitted_outcome(control: Control, value: Any) -> Any:
    """What a submitted run hands its future: the value, or a :class:`Settled` when it ended in a state."""
    return Settled(control.state, value) if control.state is not None else value
