"""The retry policy of a flow or task, and the loop that runs a run's attempts.

A run with ``retries=0`` and no ``timeout_seconds`` has no policy and never enters this module: its
one attempt is a plain call. Otherwise each attempt runs within the time limit (``timeouts``), and a
failed one is tried again while retries are left and ``retry_condition_fn`` (if any) agrees, after
its delay: ``retry_delay_seconds`` (a number, a list whose last value repeats, or a callable of the
retry count such as ``exponential_backoff(...)``), jittered by ``retry_jitter_factor``.
"""

from __future__ import annotations

import inspect
import random
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Final

from otel_runtime._base import keys as _keys
from otel_runtime._engine.hooks import finish, hook_name
from otel_runtime._engine.retry_checks import check_retries, check_retry_delays
from otel_runtime._engine.run_log import engine_logger, log_line
from otel_runtime._engine.run_scope import record_exception
from otel_runtime._engine.states import Failed
from otel_runtime._engine.timeouts import RunTimeoutError, await_within, call_within

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope

__all__ = [
    "MAX_RETRY_DELAYS",
    "RetryCondition",
    "RetryDelays",
    "RetryPolicy",
    "exponential_backoff",
    "retry_policy",
]

RetryDelays = float | Sequence[float] | Callable[[int], Sequence[float]]
"""What ``retry_delay_seconds=`` takes."""
RetryCondition = Callable[[Any, Any, Any], Any]
"""``retry_condition_fn(task, task_run, state) -> bool`` (or an awaitable of one)."""

MAX_RETRY_DELAYS: Final = 50
"""Prefect's bound on the length of a list of retry delays."""

_jitter = random.Random()  # private, so a user's random.seed() does not make retries march in step


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """``retry_delay_seconds=exponential_backoff(backoff_factor=10)``: delays of 10, 20, 40, ... seconds,
    one per retry (as Prefect's ``prefect.tasks.exponential_backoff``)."""

    def delays(retries: int) -> list[float]:
        return [backoff_factor * 2**retry for retry in range(retries)]

    return delays


class RetryPolicy:
    """How each attempt of a run runs (its time limit), and whether and when a failed one is retried."""

    __slots__ = ("condition", "delays", "jitter", "retries", "timeout", "timeout_error")

    def __init__(
        self,
        retries: int,
        delays: float | Sequence[float],
        *,
        jitter: float | None = None,
        condition: Callable[..., Any] | None = None,
        timeout: float | None = None,
        timeout_error: type[RunTimeoutError] = RunTimeoutError,
    ) -> None:
        self.retries = retries
        self.delays = delays
        self.jitter = jitter
        self.condition = condition
        self.timeout = timeout
        self.timeout_error = timeout_error

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (1-based) before the next one, before jitter."""
        delays = self.delays
        if isinstance(delays, Sequence):
            return float(delays[min(attempt, len(delays)) - 1]) if delays else 0.0
        return float(delays)

    def next_delay(self, scope: RunScope, exc: Exception) -> float | None:
        """The attempt ``scope`` is on failed with ``exc``: the delay before the next attempt, recorded
        on the span and logged, or ``None`` when the run ends here."""
        attempt = scope.record.run_count
        if attempt > self.retries or (self.condition is not None and not self._allowed(scope, exc)):
            return None
        base = self.delay(attempt)
        delay = base
        attributes: dict[str, Any] = {_keys.RETRY_FAILED_ATTEMPT: attempt}
        if self.jitter:
            delay = _jitter.uniform(max(0.0, base * (1 - self.jitter)), base * (1 + self.jitter))
            attributes[_keys.RETRY_BASE_DELAY_SECONDS] = base
        attributes[_keys.RETRY_DELAY_SECONDS] = delay
        if self.condition is not None:
            attributes[_keys.RETRY_CONDITION] = hook_name(self.condition)
        record_exception(scope.span, exc)
        scope.span.add_event(_keys.RETRY_EVENT, attributes)
        when = f"{delay:g} second(s) from now" if delay else "immediately"
        failed = f"{scope.kind.label} run failed with exception: {exc!r}"
        log_line(engine_logger(), "info", f"{failed} - Retry {attempt}/{self.retries} will start {when}")
        return delay

    def _allowed(self, scope: RunScope, exc: Exception) -> bool:
        """Whether ``retry_condition_fn`` wants the run retried after ``exc`` (Prefect's arguments: the
        task, the task run, a ``Failed`` state holding ``exc``). A condition that raises says no."""
        condition = self.condition
        assert condition is not None
        name = hook_name(condition)
        record: Any = scope.record
        state = Failed(
            message=f"{scope.kind.label} run encountered unexpected exception: {exc!r}",
            data=exc,
            state_details={"task_run_id": record.id, "flow_run_id": getattr(record, "flow_run_id", None)},
        )
        try:
            answer = condition(scope.owner, record, state)
            if inspect.isawaitable(answer):
                answer = finish(answer)
        except Exception:
            log_line(
                engine_logger(),
                "error",
                f"An error was encountered while running `retry_condition_fn` check {name!r} for task "
                f"{scope.owner.name!r}",
                exc_info=True,
            )
            reason = _keys.RETRY_DECLINED_CONDITION_RAISED
        else:
            if answer:
                return True
            reason = _keys.RETRY_DECLINED_BY_CONDITION
        attributes: dict[str, str | int] = {
            _keys.RETRY_FAILED_ATTEMPT: scope.record.run_count,
            _keys.RETRY_CONDITION: name,
            _keys.RETRY_DECLINED_REASON: reason,
        }
        scope.span.add_event(_keys.RETRY_DECLINED_EVENT, attributes)
        return False

    def _timed_out(self, scope: RunScope) -> None:
        """The attempt ``scope`` is on exceeded the time limit: a span event and Prefect's error line."""
        attributes = {
            _keys.TIMEOUT_SECONDS: self.timeout or 0.0,
            _keys.TIMEOUT_ATTEMPT: scope.record.run_count,
        }
        scope.span.add_event(_keys.TIMEOUT_EVENT, attributes)
        message = f"{scope.kind.label} run exceeded timeout of {self.timeout} second(s)"
        log_line(engine_logger(), "error", message)

    # ``call`` and ``call_async`` are one loop written twice: the async one awaits the attempt and the
    # sleep. Every decision is ``next_delay``'s.
    def call(
        self, scope: RunScope, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run attempts of ``fn`` until one returns or the run ends (the last exception raised)."""
        timeout = self.timeout
        while True:
            try:
                if timeout is None:
                    return fn(*args, **kwargs)
                try:
                    return call_within(timeout, self.timeout_error, fn, args, kwargs)
                except RunTimeoutError:
                    self._timed_out(scope)
                    raise
            except Exception as exc:
                delay = self.next_delay(scope, exc)
                if delay is None:
                    raise
            if delay:
                time.sleep(delay)
            scope.record.run_count += 1

    async def call_async(
        self, scope: RunScope, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """:meth:`call` for a coroutine function."""
        timeout = self.timeout
        while True:
            try:
                if timeout is None:
                    return await fn(*args, **kwargs)
                try:
                    return await await_within(timeout, self.timeout_error, fn, args, kwargs)
                except RunTimeoutError:
                    self._timed_out(scope)
                    raise
            except Exception as exc:
                delay = self.next_delay(scope, exc)
                if delay is None:
                    raise
            if delay:
                import asyncio  # only async runs that retry need it; `import otel_runtime` stays light

                await asyncio.sleep(delay)
            scope.record.run_count += 1


def retry_policy(
    retries: int,
    retry_delay_seconds: RetryDelays,
    *,
    jitter: float | None = None,
    condition: Callable[..., Any] | None = None,
    timeout: float | None = None,
    timeout_error: type[RunTimeoutError] = RunTimeoutError,
) -> tuple[RetryPolicy | None, float | Sequence[float]]:
    """The policy of a flow or task (``None`` when it neither retries nor has a time limit), and its
    delays as numbers (a callable of the retry count called now, as Prefect does). Checked at decoration."""
    check_retries(retries)  # retry_checks: told at decoration, by the setting's name
    delays = retry_delay_seconds(retries) if callable(retry_delay_seconds) else retry_delay_seconds
    if isinstance(delays, Sequence) and not isinstance(delays, str):
        delays = list(delays)
        if len(delays) > MAX_RETRY_DELAYS:
            raise ValueError(f"Can not configure more than {MAX_RETRY_DELAYS} retry delays per task.")
    elif not isinstance(delays, (int, float)):
        raise TypeError(
            f"retry_delay_seconds must be a number, a list of numbers or a callable, got {delays!r}"
        )
    check_retry_delays(delays)  # finite, 0 or more (a negative one failed at the first sleep)
    if jitter is not None and jitter < 0:
        raise ValueError("`retry_jitter_factor` must be >= 0.")
    if condition is not None and not callable(condition):
        raise TypeError(f"retry_condition_fn must be a callable, got {condition!r}")
    if timeout is not None and timeout < 0:
        raise ValueError(f"timeout_seconds must be 0 or more, got {timeout}")
    if not retries and timeout is None:
        return None, delays
    policy = RetryPolicy(
        retries, delays, jitter=jitter, condition=condition, timeout=timeout, timeout_error=timeout_error
    )
    return policy, delays
