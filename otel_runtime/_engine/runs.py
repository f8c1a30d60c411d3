"""What flows and tasks share: the decorated callable, and how each call of it becomes a run."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, ParamSpec, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._engine.generator_runs import run_async_generator, run_generator
from otel_runtime._engine.opening import Described, open_run
from otel_runtime._engine.prints import capture_prints
from otel_runtime._engine.retry import RetryDelays, retry_policy
from otel_runtime._engine.run_features import RunFeatures, needs_control, unwrap_method
from otel_runtime._engine.run_kinds import TASK, RunKind
from otel_runtime._engine.run_scope import RunScope
from otel_runtime._engine.run_states import Control, on_start, settle_flow, settle_task, start_attributes
from otel_runtime._engine.shapes import Shape, code_attributes, positional_names, shape_of
from otel_runtime._engine.states import State
from otel_runtime._engine.timeouts import RunTimeoutError, TaskRunTimeoutError

if TYPE_CHECKING:  # caching (hashlib, pickle, the result store) is imported by the tasks that cache
    from otel_runtime._engine.caching import TaskCache

__all__ = ["Described", "RunScope", "Runnable"]

P = ParamSpec("P")
R = TypeVar("R")


class Runnable(RunFeatures, Generic[P, R]):
    """A decorated function whose every call is a run: a span, a run context, retries.

    A flow or task adds what only its kind has: ``_generated_name``, ``_describe`` and ``_enter``.
    """

    kind: ClassVar[RunKind] = TASK
    _timeout_error: ClassVar[type[RunTimeoutError]] = TaskRunTimeoutError
    _cache: TaskCache | None = None
    """A task's cache options (``caching``); ``None`` for flows and for tasks that do not cache."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None,
        retries: int,
        retry_delay_seconds: RetryDelays,
        log_prints: bool | None,
        record_parameters: bool,
        description: str | None = None,
        hooks: dict[str, Any] | None = None,
        timeout_seconds: float | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., Any] | None = None,
    ) -> None:
        fn, self._method_kind = unwrap_method(fn)
        if not callable(fn):
            raise TypeError(f"expected a function to decorate, got {fn!r}")
        self.timeout_seconds = float(timeout_seconds) if timeout_seconds else None
        self._retry, retry_delay_seconds = retry_policy(
            retries,
            retry_delay_seconds,
            jitter=retry_jitter_factor,
            condition=retry_condition_fn,
            timeout=self.timeout_seconds,
            timeout_error=self._timeout_error,
        )
        self.retry_jitter_factor = retry_jitter_factor
        self.retry_condition_fn = retry_condition_fn
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = name or str(getattr(fn, "__name__", ""))
        if not self.name:
            raise TypeError(f"{fn!r} has no __name__: pass name=... to the decorator")
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.log_prints = log_prints
        self.record_parameters = record_parameters
        if log_prints:
            capture_prints()
        self._signature = inspect.signature(fn)
        self._positional_names = positional_names(self._signature)
        self._shape = shape_of(fn)
        kind = self.kind
        self._span_name = kind.span_prefix + self.name
        # Constant start attributes: code.*, the optimistic final state (see ``run_states``), run_count.
        self._start_attributes: dict[str, Any] = {
            **code_attributes(fn),
            **start_attributes(kind.state_type_key, kind.state_name_key),
            kind.run_count_key: 1,
        }
        # Every run's attributes start as a copy of these, in span order; ``opening`` fills in id and name.
        self._attribute_template: dict[str, Any] = {
            _keys.RUN_TYPE: kind.run_type,
            kind.name_key: self.name,
            kind.run_id_key: "",
            kind.run_name_key: "",
            **self._start_attributes,
        }
        self._init_features(description, hooks or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fn={self.fn.__qualname__})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function as a run of this flow or task and return its result."""
        if (args or kwargs) and needs_control(args, kwargs):
            return cast(R, self._call_controlled(args, kwargs))  # return_state, wait_for, upstreams
        shape = self._shape
        if shape is Shape.SYNC:
            return self._run_sync(args, kwargs)
        if shape is Shape.ASYNC:
            return cast(R, self._run_async(args, kwargs))
        if shape is Shape.GENERATOR:
            return cast(R, run_generator(self, args, kwargs))
        return cast(R, run_async_generator(self, args, kwargs))

    # What a flow or a task adds: how ``opening.open_run`` asks it for what only its kind has.
    _generated_name: Callable[[str], str]
    """The name of a run whose flow or task gives no template (or whose template failed)."""
    _describe: Callable[..., Described]
    """The run's record, the context its span starts in and its links; its own span attributes added."""
    _enter: Callable[[Span, Context, Any, bool], RunScope]
    """The run's context (run context and baggage) around its started span, as a scope."""

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults included (``TypeError`` if they don't fit)."""
        names = self._positional_names
        if not args and not kwargs and names == ():
            return {}  # no parameters, none given: what bind() would say, without building it
        if names is not None and not kwargs and len(args) == len(names):
            # All given by position: what bind() would say. Lengths are equal, so zip needs no strict check
            # (which costs a run 0.1 us).
            return dict(zip(names, args))  # noqa: B905
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def _start(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
        control: Control | None = None,
        running: bool = True,
    ) -> RunScope | None:
        parameters = self.bind(args, kwargs)
        try:
            scope = open_run(self, parameters, run_id)
        except Exception:
            message = f"otel_runtime could not start a run of {self.name!r}; running it untraced"
            warn_once("open", message, exc_info=True)
            return None
        scope.owner = self
        if control is not None or self.on_running_hooks:  # run states: links, handle, on_running
            scope.control = control
            try:
                on_start(scope, running)
            except Exception:
                warn_once("run-start", "otel_runtime could not record a run's start", exc_info=True)
        return scope

    def _settle_if_needed(self, scope: RunScope, result: Any, control: Control | None) -> Any:
        """Settle the run only with something to settle: end hooks, a caller who wants the state, a
        result that may be (or hold) states or futures. Any other run ends ``Completed``, as its span
        started. (The callers check the cheap half first: a plain run returning ``None`` calls nothing.)"""
        if (
            self._has_end_hooks
            or (control is not None and control.return_state)
            or (
                result is not None
                and (control is not None or self._settle_always or isinstance(result, State))
            )
        ):
            return self._settle(scope, result)
        return result

    def _settle(self, scope: RunScope, result: Any) -> Any:
        """The run returned ``result``: its final state, and what the caller gets (``run_states``)."""
        return settle_flow(scope, result) if self._settle_always else settle_task(scope, result)

    # ``_run_sync`` and ``_run_async`` differ only in awaiting the attempt; retries are the policy's loop
    # (``retry``), the final state is ``_settle``'s. The frame (attach, fail, detach, close) is written
    # out in each rather than a ``with scope:`` block, which cost a task run 0.25 us in ``bench``.
    def _run_sync(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None = None,
        control: Control | None = None,
    ) -> R:
        scope = self._start(args, kwargs, run_id, control)
        if scope is None:
            return cast(R, self.fn(*args, **kwargs))
        token = otel_context.attach(scope.context)
        ended: BaseException | None = None
        try:
            scope.record.run_count = 1
            if self._cache is not None:  # a caching task: its key, lookup, attempts and store
                from otel_runtime._engine.caching import call_cached  # loaded by the cache already

                return cast(R, call_cached(self, scope, args, kwargs, control))
            retry = self._retry
            result: R = (
                self.fn(*args, **kwargs) if retry is None else retry.call(scope, self.fn, args, kwargs)
            )
            if self._has_end_hooks or control is not None or result is not None:
                result = self._settle_if_needed(scope, result, control)
        except BaseException as exc:
            ended = exc
            scope.fail(exc)
            raise
        else:
            return result
        finally:
            otel_context.detach(token)
            scope.close(ended)

    async def _run_async(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None = None,
        control: Control | None = None,
    ) -> Any:
        function = self.fn
        scope = self._start(args, kwargs, run_id, control)
        if scope is None:
            return await function(*args, **kwargs)
        token = otel_context.attach(scope.context)
        ended: BaseException | None = None
        try:
            scope.record.run_count = 1
            if self._cache is not None:  # a caching task: its key, lookup, attempts and store
                from otel_runtime._engine.caching import call_cached_async  # loaded by the cache already

                return await call_cached_async(self, scope, args, kwargs, control)
            retry = self._retry
            if retry is None:
                result = await function(*args, **kwargs)
            else:
                result = await retry.call_async(scope, function, args, kwargs)
            if self._has_end_hooks or control is not None or result is not None:
                result = self._settle_if_needed(scope, result, control)
        except BaseException as exc:
            ended = exc
            scope.fail(exc)
            raise
        else:
            return result
        finally:
            otel_context.detach(token)
            scope.close(ended)
