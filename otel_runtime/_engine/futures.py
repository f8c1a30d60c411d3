"""Futures of submitted task runs, and the resolution of futures passed as task arguments."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["TaskRunFuture", "resolve_futures"]

R = TypeVar("R")


class TaskRunFuture(Generic[R]):
    """The eventual result of a submitted task run (``task.submit(...)``)."""

    __slots__ = ("_future", "task_run_id")

    def __init__(self, future: concurrent.futures.Future[R], task_run_id: str) -> None:
        self._future = future
        self.task_run_id = task_run_id

    def __repr__(self) -> str:
        state = "done" if self._future.done() else "pending"
        return f"TaskRunFuture(task_run_id={self.task_run_id!r}, {state})"

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run has finished (or ``timeout`` seconds have passed)."""
        concurrent.futures.wait([self._future], timeout=timeout)

    def done(self) -> bool:
        """Whether the task run has finished."""
        return self._future.done()

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task run's return value. Its exception is raised, or returned if ``raise_on_failure=False``."""
        try:
            return self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise
        except Exception as exc:
            if raise_on_failure:
                raise
            return exc  # type: ignore[return-value]

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the task run raised, or ``None`` if it succeeded."""
        return self._future.exception(timeout)

    def add_done_callback(self, fn: Callable[[TaskRunFuture[R]], object]) -> None:
        """Call ``fn(self)`` when the task run finishes."""
        self._future.add_done_callback(lambda _: fn(self))


def resolve_futures(value: Any) -> Any:
    """``value`` with every ``TaskRunFuture`` in it (also inside lists, tuples, sets and dicts) replaced
    by its result, so a task can take the future of an upstream task as an argument."""
    if isinstance(value, TaskRunFuture):
        return value.result()
    if isinstance(value, (list, tuple, set)):
        return type(value)(resolve_futures(item) for item in value)
    if isinstance(value, dict):
        return {key: resolve_futures(item) for key, item in value.items()}
    return value


TaskRunFuture.__module__ = "otel_runtime"
