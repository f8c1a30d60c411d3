"""State hooks: ``on_completion``, ``on_failure``, ... run when a run enters a state, as in Prefect.

A hook is called as ``hook(flow_or_task, run, state)`` inside the run's context (``runtime.*`` and
``get_run_logger()`` work in it), after the run's final attempt. Each call logs Prefect's lines
("Running hook 'notify' in response to entering state 'Failed'", then "... finished running
successfully" or the error) and adds an ``otel_runtime.hook`` span event to the run's span. A hook that
raises is logged and never changes the run's result or state.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._engine.run_log import engine_logger, log_line
from otel_runtime._engine.states import State, StateType

if TYPE_CHECKING:
    from opentelemetry.trace import Span

__all__ = [
    "FLOW_HOOKS",
    "TASK_HOOKS",
    "FlowHookLists",
    "HookLists",
    "Hooks",
    "finish",
    "hook_name",
    "hooks_for",
    "run_hooks",
]

StateHook = Callable[[Any, Any, State[Any]], object]
Hooks = Iterable[StateHook] | None
"""A decorator's hook keyword: a list of hooks (or none)."""

TASK_HOOKS: Final = ("on_completion", "on_failure", "on_running")
FLOW_HOOKS: Final = ("on_completion", "on_failure", "on_cancellation", "on_crashed", "on_running")

_BY_TYPE: Final = {
    StateType.COMPLETED: "on_completion",
    StateType.FAILED: "on_failure",
    StateType.CRASHED: "on_crashed",
    StateType.CANCELLED: "on_cancellation",
    StateType.CANCELLING: "on_cancellation",
    StateType.RUNNING: "on_running",
}


def hook_name(hook: Callable[..., Any]) -> str:
    """The name a hook is logged by: its ``__name__``, through ``functools.partial``."""
    target: Any = hook
    while isinstance(target, functools.partial):
        target = target.func
    return str(getattr(target, "__name__", None) or type(target).__name__)


class HookLists:
    """The hooks of one flow or task, one list per kind, with Prefect's decorator methods.

    ``@my_task.on_failure`` adds the decorated function to the list and returns it unchanged.
    """

    _hook_kinds: tuple[str, ...] = TASK_HOOKS
    _has_end_hooks: bool
    on_completion_hooks: list[StateHook]
    on_failure_hooks: list[StateHook]
    on_running_hooks: list[StateHook]
    on_cancellation_hooks: list[StateHook]
    on_crashed_hooks: list[StateHook]

    def _init_hooks(self, given: dict[str, Iterable[StateHook] | None]) -> None:
        for kind in self._hook_kinds:
            hooks = list(given.get(kind) or ())
            for hook in hooks:
                if not callable(hook):
                    raise TypeError(f"{kind} hooks must be callables, got {hook!r}")
            setattr(self, f"{kind}_hooks", hooks)
        self._refresh_hooks()

    def _refresh_hooks(self) -> None:
        """Note whether any hook answers the end of a run (the engine then builds a final state)."""
        self._has_end_hooks = any(
            getattr(self, f"{kind}_hooks") for kind in self._hook_kinds if kind != "on_running"
        )

    def _add_hook(self, kind: str, fn: StateHook) -> StateHook:
        if not callable(fn):
            raise TypeError(f"{kind} hooks must be callables, got {fn!r}")
        getattr(self, f"{kind}_hooks").append(fn)
        self._refresh_hooks()
        return fn

    def on_completion(self, fn: StateHook) -> StateHook:
        """Decorator: call ``fn(self, run, state)`` when a run of this ends ``Completed``."""
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: StateHook) -> StateHook:
        """Decorator: call ``fn(self, run, state)`` when a run of this ends ``Failed`` (after its retries)."""
        return self._add_hook("on_failure", fn)

    def on_running(self, fn: StateHook) -> StateHook:
        """Decorator: call ``fn(self, run, state)`` when a run of this starts running."""
        return self._add_hook("on_running", fn)


class FlowHookLists(HookLists):
    """A flow's hooks: a task's, and ``on_cancellation`` and ``on_crashed``."""

    _hook_kinds = FLOW_HOOKS

    def on_cancellation(self, fn: StateHook) -> StateHook:
        """Decorator: call ``fn(self, run, state)`` when a run of this flow is cancelled."""
        return self._add_hook("on_cancellation", fn)

    def on_crashed(self, fn: StateHook) -> StateHook:
        """Decorator: call ``fn(self, run, state)`` when a run of this flow crashes (a signal, an exit)."""
        return self._add_hook("on_crashed", fn)


def hooks_for(owner: Any, state: State[Any]) -> list[tuple[str, StateHook]]:
    """The hooks of ``owner`` that answer ``state``, each with its kind."""
    kind = _BY_TYPE.get(state.type)
    if kind is None or kind not in owner._hook_kinds:
        return []
    return [(kind, hook) for hook in getattr(owner, f"{kind}_hooks")]


def run_hooks(owner: Any, run: Any, state: State[Any], span: Span | None) -> None:
    """Call each hook of ``owner`` that answers ``state``; log and record each call. Never raises."""
    for kind, hook in hooks_for(owner, state):
        name = hook_name(hook)
        attributes: dict[str, str] = {
            _keys.HOOK_NAME: name,
            _keys.HOOK_TYPE: kind,
            _keys.HOOK_STATE_NAME: state.name,
        }
        logger = engine_logger()
        log_line(logger, "info", f"Running hook {name!r} in response to entering state {state.name!r}")
        try:
            outcome = hook(owner, run, state)
            if inspect.isawaitable(outcome):
                finish(outcome)
        except Exception as exc:
            attributes[_keys.HOOK_OUTCOME] = _keys.HOOK_OUTCOME_FAILED
            attributes[_keys.HOOK_EXCEPTION_TYPE] = _qualified(type(exc))
            log_line(logger, "error", f"An error was encountered while running hook {name!r}", exc_info=True)
        else:
            attributes[_keys.HOOK_OUTCOME] = _keys.HOOK_OUTCOME_SUCCEEDED
            log_line(logger, "info", f"Hook {name!r} finished running successfully")
        if span is not None:
            try:
                span.add_event(_keys.HOOK_EVENT, attributes)
            except Exception:
                warn_once("hook-event", "otel_runtime could not record a hook event", exc_info=True)


def finish(awaitable: Any) -> Any:
    """Run an awaitable (an async hook or retry condition) to its end from sync code, in a thread
    of its own when an event loop is running here; its result."""
    import asyncio

    async def wait() -> Any:
        return await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(wait())
    import concurrent.futures
    import contextvars

    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a loop is running here: use another thread
        return pool.submit(contextvars.copy_context().run, asyncio.run, wait()).result()


def _qualified(kind: type[BaseException]) -> str:
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
