"""The process's count of dropped telemetry: :func:`dropped` and the :class:`Dropped` it returns."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from otel_runtime._sdk.signals import Signal

__all__ = ["Dropped", "add_dropped", "dropped"]


@dataclass(frozen=True, slots=True)
class Dropped:
    """How many spans and log records this process dropped instead of exporting them."""

    spans: int = 0
    logs: int = 0

    def __bool__(self) -> bool:
        return bool(self.spans or self.logs)


_totals_lock = threading.Lock()
_totals: dict[Signal, int] = {"traces": 0, "logs": 0}


def dropped() -> Dropped:
    """Spans and log records that this process's monitored pipelines dropped so far.

    Counted: every item in a batch whose export failed (after the exporter's own retries), every item
    the collector rejected in an OTLP partial success or did not confirm (a 200 reply that is not OTLP),
    every item that found the export queue full or ended after shutdown (or after the exit hook), and,
    at shutdown, every item that was not exported within the bound (corrected if its export succeeds
    after all). A fork starts the child at zero.
    """
    with _totals_lock:
        return Dropped(spans=_totals["traces"], logs=_totals["logs"])


def add_dropped(signal: Signal, count: int) -> None:
    """Add ``count`` dropped items of ``signal`` to the process's totals."""
    with _totals_lock:
        _totals[signal] += count


def _reset_totals_in_child() -> None:
    global _totals_lock  # noqa: PLW0603 - a fork taken while the lock was held would leave it held
    _totals_lock = threading.Lock()
    _totals["traces"] = _totals["logs"] = 0


os.register_at_fork(after_in_child=_reset_totals_in_child)

Dropped.__module__ = "otel_runtime"
