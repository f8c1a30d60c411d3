"""Stop processors and flush within a time bound, where the SDK's own calls wait for a down endpoint."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import settings

__all__ = ["Stoppable", "call_within", "exit_deadline", "shutdown_within"]

# Every processor gets at least this long to shut down, so one slow exporter cannot starve the rest
# of the time they need to write a local file.
_MIN_PROCESSOR_SHUTDOWN_MILLIS: Final = 200.0


class Stoppable(Protocol):
    """A processor whose shutdown takes a bound, as the monitored processors' does."""

    def shutdown(self, timeout_millis: float | None = None) -> None:
        """Stop within ``timeout_millis``."""


def exit_deadline() -> float:
    """The ``time.monotonic()`` by which a shutdown starting now must end: the process's exit bound."""
    return time.monotonic() + settings.shutdown_timeout_millis / 1000


def shutdown_within(processors: Iterable[Stoppable], deadline: float) -> None:
    """Shut ``processors`` down one after the other, all by ``deadline`` (``time.monotonic()``).

    The SDK's ``BatchSpanProcessor.shutdown()`` takes no timeout and waits for an exporter that retries
    a down endpoint; the monitored processors stop within theirs and count what they could not send.
    """
    for processor in processors:
        remaining_millis = max((deadline - time.monotonic()) * 1000, _MIN_PROCESSOR_SHUTDOWN_MILLIS)
        try:
            processor.shutdown(timeout_millis=remaining_millis)
        except Exception:
            warn_once("configure-shutdown", "otel_runtime could not shut down an exporter", exc_info=True)


def call_within(function: Callable[[], bool], timeout_millis: float, name: str) -> bool:
    """``function()``, or ``False`` if it has not returned within ``timeout_millis``.

    For flushes: the SDK's batch processors ignore their flush timeout and wait for the exporter, which
    retries a down endpoint for its whole timeout. The call goes on in a daemon thread if it overruns.
    """
    outcome: list[bool] = []

    def call() -> None:
        try:
            outcome.append(bool(function()))
        except Exception:
            warn_once("configure-flush", "otel_runtime could not flush telemetry", exc_info=True)
            outcome.append(False)

    thread = threading.Thread(target=call, name=name, daemon=True)
    thread.start()
    thread.join(max(timeout_millis, 0) / 1000)
    return bool(outcome) and outcome[0]
