"""``timeout_seconds=``: each attempt of a run gets a time limit, as Prefect's do.

- An async run is cancelled at its next ``await`` when the limit passes (``asyncio.timeout``).
- A sync run on the main thread is interrupted by ``SIGALRM`` (blocking calls such as ``time.sleep``
  included), unless the program has its own ``SIGALRM`` handler or timer: then, and in any other
  thread (task runner workers), the limit raises in the run's thread at its next Python instruction,
  which cannot cut a blocking call short (Prefect's documented behaviour for worker threads).

The run sees a private ``BaseException`` where the limit cut it, so its ``except Exception`` blocks do
not swallow it; the attempt then raises :class:`TaskRunTimeoutError` / :class:`FlowRunTimeoutError`
(both ``TimeoutError``) in the caller.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["FlowRunTimeoutError", "RunTimeoutError", "TaskRunTimeoutError", "await_within", "call_within"]


class RunTimeoutError(TimeoutError):
    """A run's attempt exceeded its ``timeout_seconds``."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"Scope timed out after {seconds} second(s).")
        self.seconds = seconds


class TaskRunTimeoutError(RunTimeoutError):
    """Raised when a task run exceeds its ``timeout_seconds`` (Prefect's ``prefect.task_engine`` name)."""


class FlowRunTimeoutError(RunTimeoutError):
    """Raised when a flow run exceeds its ``timeout_seconds`` (Prefect's ``prefect.flow_engine`` name)."""


class _Expired(BaseException):
    """Raised inside a run where its time limit cut it (a ``BaseException``: user code does not catch it)."""


class _Limit:
    """One attempt's deadline in one thread."""

    __slots__ = ("active", "deadline", "fired", "thread_id")

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds
        self.thread_id = threading.get_ident()
        self.active = True
        self.fired = False

    def expired(self) -> bool:
        return time.monotonic() >= self.deadline


# Main-thread limits, innermost last; the alarm is set for the earliest one.
_alarm_limits: list[_Limit] = []
_saved_handler: Any = None


def _on_alarm(signum: int, frame: Any) -> None:
    if any(limit.active and limit.expired() for limit in _alarm_limits):
        raise _Expired
    _arm()


def _arm() -> None:
    import signal

    active = [limit.deadline for limit in _alarm_limits if limit.active]
    if active:
        signal.setitimer(signal.ITIMER_REAL, max(min(active) - time.monotonic(), 1e-4))
    else:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _alarm_free() -> bool:
    """Whether this thread may use ``SIGALRM``: the main thread, and the program has no alarm of its own."""
    if threading.current_thread() is not threading.main_thread():
        return False
    import signal

    if not hasattr(signal, "setitimer"):
        return False
    if _alarm_limits:
        return True  # ours already
    return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None) and not any(
        signal.getitimer(signal.ITIMER_REAL)
    )


def _enter_alarm(limit: _Limit) -> None:
    global _saved_handler  # noqa: PLW0603 - the program's handler, restored when the last limit ends
    import signal

    if not _alarm_limits:
        _saved_handler = signal.signal(signal.SIGALRM, _on_alarm)
    _alarm_limits.append(limit)
    _arm()


def _exit_alarm(limit: _Limit) -> None:
    import signal

    limit.active = False
    _alarm_limits.remove(limit)
    _arm()
    if not _alarm_limits:
        signal.signal(signal.SIGALRM, _saved_handler if _saved_handler is not None else signal.SIG_DFL)


class _ThreadAlarm:
    """Raises :class:`_Expired` in ``limit``'s thread when it passes (``PyThreadState_SetAsyncExc``)."""

    __slots__ = ("limit", "lock", "timer")

    def __init__(self, limit: _Limit, seconds: float) -> None:
        self.limit = limit
        self.lock = threading.Lock()
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.limit.active:
                self.limit.fired = True
                _async_raise(self.limit.thread_id, _Expired)

    def stop(self) -> None:
        with self.lock:
            self.limit.active = False
            self.timer.cancel()
            if self.limit.fired:
                _async_raise(self.limit.thread_id, None)  # clears it if it has not been raised yet


def _async_raise(thread_id: int, kind: type[BaseException] | None) -> None:
    import ctypes  # only runs with a time limit off the main thread

    target = ctypes.c_ulong(thread_id)
    ctypes.pythonapi.PyThreadState_SetAsyncExc(target, ctypes.py_object(kind) if kind is not None else None)


def call_within(
    seconds: float,
    error: type[RunTimeoutError],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``fn(*args, **kwargs)``, raising ``error(seconds)`` if it is still running after ``seconds``."""
    limit = _Limit(seconds)
    if _alarm_free():
        _enter_alarm(limit)
        stop: Callable[[], None] = lambda: _exit_alarm(limit)  # noqa: E731
    else:
        stop = _ThreadAlarm(limit, seconds).stop
    try:
        try:
            return fn(*args, **kwargs)
        finally:
            stop()
    except _Expired:
        if limit.expired():
            raise error(seconds) from None
        raise  # an enclosing run's limit: it ends that run


# The async twin of ``call_within``: the same arguments, the event loop's own timeout instead of ours.
async def await_within(
    seconds: float,
    error: type[RunTimeoutError],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    """``await fn(*args, **kwargs)``, cancelled and raising ``error(seconds)`` after ``seconds``."""
    import asyncio

    scope = getattr(asyncio, "timeout", None)
    if scope is None:  # Python 3.10
        try:
            return await asyncio.wait_for(fn(*args, **kwargs), seconds)
        except asyncio.TimeoutError:
            raise error(seconds) from None
    timer = scope(seconds)
    try:
        async with timer:
            return await fn(*args, **kwargs)
    except TimeoutError:
        if timer.expired():
            raise error(seconds) from None
        raise


TaskRunTimeoutError.__module__ = FlowRunTimeoutError.__module__ = "otel_runtime.exceptions"
