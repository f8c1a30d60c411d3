"""Futures of submitted task runs (re-exported by ``otel_runtime.futures``): one future, and lists of them.

A future wraps the ``concurrent.futures.Future`` its task runner returned. That future holds the task's
return value (or its exception) exactly as before states existed; only a run that ended in some other
way (it returned a ``State``, or never started because an upstream failed) hands back a
:class:`Settled`, which carries the run's final state. ``future.state`` builds a state from whichever
it finds, when asked, so a run nobody asks about allocates none.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from otel_runtime._base.keys import TIMED_OUT_STATE_NAME
from otel_runtime._engine import made
from otel_runtime._engine.exceptions import ParameterTypeError
from otel_runtime._engine.states import Cancelled, Crashed, Failed, Pending, Running, State, StateType
from otel_runtime._engine.timeouts import RunTimeoutError

if TYPE_CHECKING:
    from opentelemetry.trace import SpanContext

__all__ = [
    "DoneAndNotDoneFutures",
    "PrefectFutureList",
    "RunHandle",
    "Settled",
    "TaskRunFuture",
    "as_completed",
    "crash_message",
    "failed_state",
    "is_cancellation",
    "is_crash",
    "wait",
]

R = TypeVar("R")

_CRASH_NAMES = frozenset({"BrokenExecutor", "KilledWorker", "CommClosedError"})
"""Exceptions (by class name, so neither multiprocessing nor Dask is imported to check) that mean the
worker running the task died, not that the task's code raised: ``BrokenProcessPool`` is a
``BrokenExecutor``, ``KilledWorker`` is Dask's."""


def is_crash(exc: BaseException) -> bool:
    """Whether ``exc`` says the worker running the run died (not that the run's code raised)."""
    return any(kind.__name__ in _CRASH_NAMES for kind in type(exc).__mro__)


def is_cancellation(exc: BaseException) -> bool:
    """Whether ``exc`` cut the run off from outside: ``KeyboardInterrupt``, ``SystemExit``, a
    cancelled asyncio task. The run ends CANCELLED (the project's rule since before states: its span
    status says "Cancelled"), where Prefect would say CRASHED."""
    return not isinstance(exc, Exception)


def _describe(exc: BaseException) -> str:
    try:
        message = str(exc)
    except Exception:
        message = "<exception str() failed>"
    return f"{type(exc).__name__}: {message}"


def crash_message(exc: BaseException) -> str:
    """Prefect's message for a CRASHED state caused by ``exc``."""
    if isinstance(exc, KeyboardInterrupt):
        return "Execution was aborted by an interrupt signal."
    if isinstance(exc, SystemExit):
        return "Execution was aborted by Python system exit call."
    if type(exc).__name__ == "CancelledError":
        return "Execution was cancelled by the runtime environment."
    return f"Execution was interrupted by an unexpected exception: {_describe(exc)}"


def failed_state(
    exc: BaseException, kind: str, task_run_id: str | None = None, flow_run_id: str | None = None
) -> State[Any]:
    """The final state of a run (``kind`` ``"Task"`` or ``"Flow"``) that ``exc`` ended, with Prefect's
    messages: FAILED for an exception its code raised, CRASHED for a dead worker, CANCELLED for a
    signal or an exit."""
    details = {"task_run_id": task_run_id, "flow_run_id": flow_run_id}
    if is_cancellation(exc):
        return Cancelled(message=crash_message(exc), data=exc, state_details=details)
    if is_crash(exc):
        return Crashed(message=crash_message(exc), data=exc, state_details=details)
    if isinstance(exc, ParameterTypeError):
        message = f"Validation of flow parameters failed with error: {_describe(exc)}"
        return Failed(message=message, data=exc, state_details=details)
    if isinstance(exc, TimeoutError):  # Prefect's ``TimedOut``, for its own time limit or any other
        if isinstance(exc, RunTimeoutError):
            message = f"{kind} run exceeded timeout of {exc.seconds} second(s)"
        else:
            message = f"{kind} run failed due to timeout: {exc!r}"
        return Failed(message=message, data=exc, state_details=details, name=TIMED_OUT_STATE_NAME)
    separator = " " if kind == "Task" else ": "
    message = f"{kind} run encountered an exception{separator}{_describe(exc)}"
    return Failed(message=message, data=exc, state_details=details)


class Settled:
    """What a submitted run hands back when its outcome is a state rather than a plain value: the
    final ``state``, and ``value``, what a direct call of the task would have returned."""

    __slots__ = ("state", "value")

    def __init__(self, state: State[Any], value: Any) -> None:
        self.state = state
        self.value = value

    def __reduce__(self) -> tuple[Any, ...]:
        return (Settled, (self.state, self.value))


class RunHandle:
    """Filled in by a submitted run when its span starts: the span context, for links from the runs
    that waited for it. ``None`` until then, and for runs in another process."""

    __slots__ = ("__weakref__", "span_context")

    def __init__(self) -> None:
        self.span_context: SpanContext | None = None


class TaskRunFuture(Generic[R]):
    """The eventual result of a submitted task run (``task.submit(...)``), Prefect's ``PrefectFuture``."""

    __slots__ = ("_future", "_state", "handle", "task_run_id")

    def __init__(
        self,
        future: concurrent.futures.Future[R],
        task_run_id: str,
        handle: RunHandle | None = None,
    ) -> None:
        self._future = future
        self.task_run_id = task_run_id
        self.handle = handle
        self._state: State[Any] | None = None
        if not made.anything:
            made.note()

    def __repr__(self) -> str:
        state = "done" if self._future.done() else "pending"
        return f"TaskRunFuture(task_run_id={self.task_run_id!r}, {state})"

    @property
    def state(self) -> State[Any]:
        """The run's state: ``Pending`` or ``Running`` until it ends, then its final state."""
        if self._state is not None:
            return self._state
        future = self._future
        if not future.done():
            return Running() if future.running() else Pending()
        details = {"task_run_id": self.task_run_id}
        if future.cancelled():
            state: State[Any] = Cancelled(
                message="The task run was cancelled before it started.", state_details=details
            )
        else:
            exc = future.exception()
            if exc is not None:
                state = failed_state(exc, "Task", self.task_run_id)
            else:
                value = future.result()
                if isinstance(value, Settled):
                    state = value.state
                else:
                    state = State(StateType.COMPLETED, data=value, state_details=details)
        self._state = state
        return state

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run has finished (or ``timeout`` seconds have passed)."""
        concurrent.futures.wait([self._future], timeout=timeout)

    def done(self) -> bool:
        """Whether the task run has finished."""
        return self._future.done()

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task run's return value. Its exception is raised, or returned if ``raise_on_failure=False``.

        Raises ``TimeoutError`` if the run has not finished after ``timeout`` seconds, and
        ``UnfinishedRun`` for a run that never started because an upstream failed (``NotReady``).
        """
        try:
            value = self._future.result(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(
                f"Task run {self.task_run_id} did not complete within {timeout} seconds"
            ) from None
        except Exception as exc:
            if raise_on_failure:
                raise
            return exc  # type: ignore[return-value]
        if isinstance(value, Settled):
            return value.state.result(raise_on_failure=raise_on_failure)  # type: ignore[no-any-return]
        return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The exception the task run raised, or ``None`` if it succeeded."""
        return self._future.exception(timeout)

    def add_done_callback(self, fn: Callable[[TaskRunFuture[R]], object]) -> None:
        """Call ``fn(self)`` when the task run finishes."""
        self._future.add_done_callback(lambda _: fn(self))


class DoneAndNotDoneFutures(NamedTuple, Generic[R]):
    """What :func:`wait` returns: the futures that finished, and those that did not."""

    done: set[TaskRunFuture[R]]
    not_done: set[TaskRunFuture[R]]


def wait(futures: Iterable[TaskRunFuture[R]], timeout: float | None = None) -> DoneAndNotDoneFutures[R]:
    """Wait until every future has finished, or ``timeout`` seconds have passed (never raises for it)."""
    unique = set(futures)
    by_inner = {future._future: future for future in unique}
    done, not_done = concurrent.futures.wait(list(by_inner), timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskRunFuture[R]], timeout: float | None = None
) -> Iterator[TaskRunFuture[R]]:
    """Yield each future as it finishes; ``TimeoutError`` if some are unfinished after ``timeout`` s."""
    by_inner = {future._future: future for future in set(futures)}
    total = len(by_inner)
    finished = 0
    try:
        for inner in concurrent.futures.as_completed(list(by_inner), timeout=timeout):
            finished += 1
            yield by_inner[inner]
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"{total - finished} (of {total}) futures unfinished") from None


class PrefectFutureList(list[TaskRunFuture[R]], Generic[R]):
    """A list of futures, as ``task.map(...)`` returns it, with ``wait()`` and ``result()`` for all."""

    def wait(self, timeout: float | None = None) -> None:
        """Wait for every future (at most ``timeout`` seconds; never raises for it)."""
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """The results in order; the first failure is raised unless ``raise_on_failure=False``.

        Raises ``TimeoutError`` if they have not all finished after ``timeout`` seconds.
        """
        if timeout is not None:
            _, not_done = wait(self, timeout=timeout)
            if not_done:
                raise TimeoutError(f"Timed out waiting for all futures to complete within {timeout} seconds")
        return [future.result(raise_on_failure=raise_on_failure) for future in self]


TaskRunFuture.__module__ = "otel_runtime"
for _cls in (DoneAndNotDoneFutures, PrefectFutureList):
    _cls.__module__ = "otel_runtime.futures"
del _cls
