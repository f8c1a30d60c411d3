"""What flows and tasks share: the decorated callable, its attempts, and how a run ends on its span."""

from __future__ import annotations

import enum
import functools
import inspect
import time
from collections.abc import AsyncGenerator, Callable, Generator, Sequence
from typing import Any, Generic, ParamSpec, Protocol, TypeVar, cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.semconv.attributes.code_attributes import (
    CODE_FILE_PATH,
    CODE_FUNCTION_NAME,
    CODE_LINE_NUMBER,
)
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import Span, Status, StatusCode

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._engine.caching import TaskCache, answer, begin, finish
from otel_runtime._engine.prints import capture_prints
from otel_runtime._engine.run_features import RunFeatures, needs_control, unwrap_method
from otel_runtime._engine.run_states import (
    Control,
    close_state,
    on_failure,
    on_start,
    settle_flow,
    settle_task,
    start_attributes,
)
from otel_runtime._engine.states import State

__all__ = ["RunScope", "Runnable", "exception_text"]

P = ParamSpec("P")
R = TypeVar("R")


class _Shape(enum.Enum):
    SYNC = enum.auto()
    ASYNC = enum.auto()
    GENERATOR = enum.auto()
    ASYNC_GENERATOR = enum.auto()


def _shape_of(fn: Callable[..., Any]) -> _Shape:
    if inspect.isasyncgenfunction(fn):
        return _Shape.ASYNC_GENERATOR
    if inspect.iscoroutinefunction(fn):
        return _Shape.ASYNC
    if inspect.isgeneratorfunction(fn):
        return _Shape.GENERATOR
    return _Shape.SYNC


def _code_attributes(fn: Callable[..., Any]) -> dict[str, str | int]:
    target = inspect.unwrap(fn)
    while isinstance(target, functools.partial):
        target = target.func
    code = getattr(target, "__code__", None)
    qualname = getattr(target, "__qualname__", type(target).__qualname__)
    attributes: dict[str, str | int] = {
        CODE_FUNCTION_NAME: f"{getattr(target, '__module__', None) or 'builtins'}.{qualname}",
    }
    if code is not None:
        attributes[CODE_FILE_PATH] = code.co_filename
        attributes[CODE_LINE_NUMBER] = code.co_firstlineno
    return attributes


def _positional_names(signature: inspect.Signature) -> tuple[str, ...] | None:
    """The parameter names when every parameter can be given by position (no ``*args``, keyword-only
    or ``**kwargs``), else ``None``: then a call that passes them all by position binds in order."""
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if all(parameter.kind in positional for parameter in signature.parameters.values()):
        return tuple(signature.parameters)
    return None


def exception_text(exc: BaseException) -> str:
    """``"<ExcType>: <message>"``, even when the exception's ``__str__`` is broken."""
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def _qualified_name(kind: type[BaseException]) -> str:
    if kind.__module__ == "builtins":
        return kind.__qualname__
    return f"{kind.__module__}.{kind.__qualname__}"


def _record_exception(span: Span, exc: BaseException) -> None:
    try:
        span.record_exception(exc)
    except Exception:
        span.add_event("exception", {"exception.type": _qualified_name(type(exc))})


class _Counted(Protocol):
    run_count: int


class RunScope:
    """One open run: its span, the context it executes in, and its record. ``close()`` ends it."""

    __slots__ = (
        "context", "control", "owner", "record", "result", "run_count_key", "span", "state", "state_error",
    )

    def __init__(self, span: Span, context: Context, record: _Counted, run_count_key: str) -> None:
        self.span = span
        self.context = context
        self.record = record
        self.run_count_key = run_count_key
        # Run states (``run_states``): set by ``Runnable._start`` and as the run ends. ``result`` and
        # ``state_error`` are set only when there is one (a plain run pays for three attributes).
        self.owner: Any = None
        self.control: Control | None = None
        self.state: State[Any] | None = None
        self.result: Any
        self.state_error: BaseException | None

    @property
    def state_keys(self) -> tuple[str, str]:
        """The span attributes of this run's state type and name."""
        if self.run_count_key == _keys.FLOW_RUN_RUN_COUNT:
            return _keys.FLOW_RUN_STATE_TYPE, _keys.FLOW_RUN_STATE_NAME
        return _keys.TASK_RUN_STATE_TYPE, _keys.TASK_RUN_STATE_NAME

    def retrying(self, exc: Exception, delay: float) -> None:
        """A failed attempt that will be retried after ``delay`` seconds."""
        _record_exception(self.span, exc)
        self.span.add_event(
            _keys.RETRY_EVENT,
            {_keys.RETRY_FAILED_ATTEMPT: self.record.run_count, _keys.RETRY_DELAY_SECONDS: delay},
        )

    def fail(self, exc: BaseException) -> None:
        """The run ended by ``exc``: an error, or a cancellation (``KeyboardInterrupt`` and the like)."""
        self.span.set_attribute(ERROR_TYPE, _qualified_name(type(exc)))
        if isinstance(exc, Exception):
            _record_exception(self.span, exc)
            self.span.set_status(Status(StatusCode.ERROR, exception_text(exc)))
        else:
            self.span.set_status(Status(StatusCode.ERROR, f"Cancelled: {exception_text(exc)}"))
        try:
            on_failure(self, exc)  # the final state and the end hooks
        except Exception:
            warn_once("run-state", "otel_runtime could not record a run's final state", exc_info=True)

    def close(self, exc: BaseException | None) -> None:
        """End the run's span. ``exc`` is what ended the run, if anything did."""
        if self.record.run_count != 1:  # the span started with run_count 1 (see ``Runnable._open``)
            self.span.set_attribute(self.run_count_key, self.record.run_count)
        if self.state is not None or exc is not None or self.control is not None:
            close_state(self, exc)  # only a run that did not end plainly ``Completed``
        self.span.end()


class Runnable(RunFeatures, Generic[P, R]):
    """A decorated function whose every call is a run: a span, a run context, retries."""

    _state_keys: tuple[str, str] = (_keys.TASK_RUN_STATE_TYPE, _keys.TASK_RUN_STATE_NAME)
    _cache: TaskCache | None = None  # a task's cache options (``caching``); flows have none

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None,
        retries: int,
        retry_delay_seconds: float | Sequence[float],
        log_prints: bool | None,
        record_parameters: bool,
        description: str | None = None,
        hooks: dict[str, Any] | None = None,
    ) -> None:
        fn, self._method_kind = unwrap_method(fn)
        if not callable(fn):
            raise TypeError(f"expected a function to decorate, got {fn!r}")
        if retries < 0:
            raise ValueError(f"retries must be 0 or more, got {retries}")
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
        self._positional_names = _positional_names(self._signature)
        self._shape = _shape_of(fn)
        # Constant start attributes: code.* and the optimistic final state (see ``run_states``).
        self._code_attributes = {**_code_attributes(fn), **start_attributes(*self._state_keys)}
        self._init_features(description, hooks or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, fn={self.fn.__qualname__})"

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the function as a run of this flow or task and return its result."""
        if (args or kwargs) and needs_control(args, kwargs):
            return cast(R, self._call_controlled(args, kwargs))  # return_state, wait_for, upstreams
        shape = self._shape
        if shape is _Shape.SYNC:
            return self._run_sync(args, kwargs)
        if shape is _Shape.ASYNC:
            return cast(R, self._run_async(args, kwargs))
        if shape is _Shape.GENERATOR:
            return cast(R, self._run_generator(args, kwargs))
        return cast(R, self._run_async_generator(args, kwargs))

    # What a flow or a task adds.
    def _open(self, parameters: dict[str, Any], run_id: str | None) -> RunScope:
        """Start the run's span, with its ``run_count`` attribute at 1 (``RunScope.close`` updates it)."""
        raise NotImplementedError

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults included (``TypeError`` if they don't fit)."""
        names = self._positional_names
        if names is not None and not kwargs and len(args) == len(names):
            return dict(zip(names, args, strict=True))  # all given by position: what bind() would say
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return bound.arguments

    def _retry_delay(self, attempt: int) -> float | None:
        """Seconds to wait before retrying after failed ``attempt``, or ``None`` when out of retries."""
        if attempt > self.retries:
            return None
        delays = self.retry_delay_seconds
        if isinstance(delays, Sequence):
            return float(delays[min(attempt, len(delays)) - 1]) if delays else 0.0
        return float(delays)

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
            scope = self._open(parameters, run_id)
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

    def _settle(self, scope: RunScope, result: Any) -> Any:
        """The run returned ``result``: its final state, and what the caller gets (``run_states``)."""
        return settle_flow(scope, result) if self._settle_always else settle_task(scope, result)

    # ``_run_sync`` and ``_run_async`` are twins (one awaits); the engine refactor unifies their loops.
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
        settles = control is not None or self._settle_always or self._has_end_hooks
        token = otel_context.attach(scope.context)
        ended: BaseException | None = None
        try:
            cache, key = self._cache, None
            if cache is not None:
                key, hit = begin(cache, scope)
                if hit is not None:
                    return cast(R, answer(scope, hit))
            attempt = 1
            while True:
                scope.record.run_count = attempt
                try:
                    result: R = self.fn(*args, **kwargs)
                except Exception as exc:
                    delay = self._retry_delay(attempt)
                    if delay is None:
                        raise
                    scope.retrying(exc, delay)
                else:
                    if settles or isinstance(result, State):
                        result = self._settle(scope, result)
                    if cache is not None:
                        finish(cache, scope, key, result)
                    return result
                if delay:
                    time.sleep(delay)
                attempt += 1
        except BaseException as exc:
            ended = exc
            scope.fail(exc)
            raise
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
        settles = control is not None or self._settle_always or self._has_end_hooks
        token = otel_context.attach(scope.context)
        ended: BaseException | None = None
        try:
            cache, key = self._cache, None
            if cache is not None:
                key, hit = begin(cache, scope)
                if hit is not None:
                    return answer(scope, hit)
            attempt = 1
            while True:
                scope.record.run_count = attempt
                try:
                    result = await function(*args, **kwargs)
                except Exception as exc:
                    delay = self._retry_delay(attempt)
                    if delay is None:
                        raise
                    scope.retrying(exc, delay)
                else:
                    if settles or isinstance(result, State):
                        result = self._settle(scope, result)
                    if cache is not None:
                        finish(cache, scope, key, result)
                    return result
                if delay:
                    import asyncio  # only async runs that retry need it; `import otel_runtime` stays light

                    await asyncio.sleep(delay)
                attempt += 1
        except BaseException as exc:
            ended = exc
            scope.fail(exc)
            raise
        finally:
            otel_context.detach(token)
            scope.close(ended)

    def _run_generator(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Generator[Any, Any, Any]:
        """Run a generator function; the run context is active only while the generator's body runs."""
        scope = self._start(args, kwargs, None)
        generator = cast(Callable[..., Generator[Any, Any, Any]], self.fn)(*args, **kwargs)
        if scope is None:
            return (yield from generator)
        scope.record.run_count = 1
        ended: BaseException | None = None
        try:
            return (yield from _stepped(generator, scope.context))
        except GeneratorExit:
            raise
        except BaseException as exc:
            ended = exc
            scope.fail(exc)
            raise
        finally:
            scope.close(ended)

    async def _run_async_generator(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> AsyncGenerator[Any, Any]:
        """Run an async generator function; the run context is active only while its body runs."""
        scope = self._start(args, kwargs, None)
        generator = cast(Callable[..., AsyncGenerator[Any, Any]], self.fn)(*args, **kwargs)
        context = scope.context if scope is not None else otel_context.get_current()
        if scope is not None:
            scope.record.run_count = 1
        ended: BaseException | None = None
        step: Callable[[Any], Any] = generator.asend
        value: Any = None
        try:
            while True:
                token = otel_context.attach(context)
                try:
                    item = await step(value)
                except StopAsyncIteration:
                    return
                finally:
                    otel_context.detach(token)
                try:
                    value = yield item
                    step = generator.asend
                except GeneratorExit:
                    token = otel_context.attach(context)
                    try:
                        await generator.aclose()
                    finally:
                        otel_context.detach(token)
                    raise
                except BaseException as exc:
                    step, value = generator.athrow, exc
        except GeneratorExit:
            raise
        except BaseException as exc:
            ended = exc
            if scope is not None:
                scope.fail(exc)
            raise
        finally:
            if scope is not None:
                scope.close(ended)


def _stepped(generator: Generator[Any, Any, Any], context: Context) -> Generator[Any, Any, Any]:
    """Drive ``generator`` with ``context`` attached during each step and detached between them."""
    step: Callable[[Any], Any] = generator.send
    value: Any = None
    while True:
        token = otel_context.attach(context)
        try:
            item = step(value)
        except StopIteration as stop:
            return stop.value
        finally:
            otel_context.detach(token)
        try:
            value = yield item
            step = generator.send
        except GeneratorExit:
            token = otel_context.attach(context)
            try:
                generator.close()
            finally:
                otel_context.detach(token)
            raise
        except BaseException as exc:
            step, value = generator.throw, exc
