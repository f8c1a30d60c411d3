"""Runs of generator functions: the run context is active only while the generator's body runs."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Generator
from typing import TYPE_CHECKING, Any, cast

from opentelemetry import context as otel_context
from opentelemetry.context import Context

if TYPE_CHECKING:
    from otel_runtime._engine.runs import Runnable

__all__ = ["run_async_generator", "run_generator"]


def run_generator(
    runnable: Runnable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Generator[Any, Any, Any]:
    """Run a generator function as one run; its span ends when the generator does."""
    scope = runnable._start(args, kwargs, None)
    generator = cast(Callable[..., Generator[Any, Any, Any]], runnable.fn)(*args, **kwargs)
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


async def run_async_generator(
    runnable: Runnable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> AsyncGenerator[Any, Any]:
    """Run an async generator function as one run; its span ends when the generator does."""
    scope = runnable._start(args, kwargs, None)
    generator = cast(Callable[..., AsyncGenerator[Any, Any]], runnable.fn)(*args, **kwargs)
    context = scope.context if scope is not None else otel_context.get_current()
    if scope is not None:
        scope.record.run_count = 1
    ended: BaseException | None = None
    # The steps of ``_stepped`` for an async generator: ``asend`` / ``athrow`` / ``aclose`` awaited
    # where it calls ``send`` / ``throw`` / ``close`` (``yield from`` has no async form).
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
