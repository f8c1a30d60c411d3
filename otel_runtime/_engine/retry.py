"""The retry policy of a flow or task, and the loop that retries a run's failed attempts.

A run with ``retries=0`` has no policy and never enters this module: its one attempt is a plain call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope

__all__ = ["RetryPolicy", "retry_policy"]


class RetryPolicy:
    """How many times a failed run is tried again, and how long it waits before each new attempt."""

    __slots__ = ("delays", "retries")

    def __init__(self, retries: int, delays: float | Sequence[float]) -> None:
        self.retries = retries
        self.delays = delays

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed ``attempt`` (1-based) before the next one."""
        delays = self.delays
        if isinstance(delays, Sequence):
            return float(delays[min(attempt, len(delays)) - 1]) if delays else 0.0
        return float(delays)

    def next_delay(self, scope: RunScope, exc: Exception) -> float | None:
        """The attempt ``scope`` is on failed with ``exc``: the delay before the next attempt, recorded
        on the span, or ``None`` when the run is out of retries."""
        attempt = scope.record.run_count
        if attempt > self.retries:
            return None
        delay = self.delay(attempt)
        scope.retrying(exc, delay)
        return delay

    # ``call`` and ``call_async`` are one loop written twice: the async one awaits the attempt and the
    # sleep. Every decision is ``next_delay``'s.
    def call(
        self, scope: RunScope, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Call ``fn`` until an attempt returns or the policy stops retrying (its exception raised)."""
        while True:
            try:
                return fn(*args, **kwargs)
            except Exception as exc:
                delay = self.next_delay(scope, exc)
                if delay is None:
                    raise
            if delay:
                import time  # only runs that retry sleep

                time.sleep(delay)
            scope.record.run_count += 1

    async def call_async(
        self, scope: RunScope, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """:meth:`call` for a coroutine function."""
        while True:
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:
                delay = self.next_delay(scope, exc)
                if delay is None:
                    raise
            if delay:
                import asyncio  # only async runs that retry need it; `import otel_runtime` stays light

                await asyncio.sleep(delay)
            scope.record.run_count += 1


def retry_policy(retries: int, retry_delay_seconds: float | Sequence[float]) -> RetryPolicy | None:
    """The policy of a flow or task, or ``None`` when it never retries (checked at decoration)."""
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    return RetryPolicy(retries, retry_delay_seconds) if retries else None
