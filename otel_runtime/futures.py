"""Futures of submitted task runs, as Prefect's ``prefect.futures``.

``task.submit(...)`` returns a :class:`PrefectFuture` (``.result()``, ``.wait()``, ``.state``),
``task.map(...)`` a :class:`PrefectFutureList` (``.result()`` and ``.wait()`` for all)::

    from otel_runtime import flow, task
    from otel_runtime.futures import as_completed, wait

    @task
    def square(x: int) -> int:
        return x * x

    @flow
    def squares() -> list[int]:
        futures = square.map(range(5))
        done, not_done = wait(futures, timeout=10)
        return [future.result() for future in as_completed(futures)]

Futures passed to a task (also inside lists, dicts, dataclasses and pydantic models) are waited for
and replaced by their results before it runs; a flow that returns futures returns their results.
"""

from otel_runtime._engine.futures import (
    DoneAndNotDoneFutures,
    PrefectFutureList,
    TaskRunFuture,
    as_completed,
    wait,
)

PrefectFuture = TaskRunFuture
"""Prefect's name for the future of a task run: the same class as ``otel_runtime.TaskRunFuture``."""

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectFuture",
    "PrefectFutureList",
    "TaskRunFuture",
    "as_completed",
    "wait",
]
