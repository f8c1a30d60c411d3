"""The counters and outage state of one export pipeline, and the one warning per outage they give."""

from __future__ import annotations

import threading
import time
from typing import Final

from otel_runtime._base.guard import internal_logger
from otel_runtime._sdk.drops import add_dropped
from otel_runtime._sdk.forks import after_fork_in_child
from otel_runtime._sdk.signals import NOUNS, Signal

__all__ = ["ExportHealth", "target_of"]


def target_of(exporter: object) -> str:
    """Where ``exporter`` sends to, for messages: its endpoint and class (the SDK's, for ours built on
    one), or its class alone."""
    endpoint = getattr(exporter, "_endpoint", None)
    name = getattr(type(exporter), "exports_as", type(exporter)).__name__
    return f"{endpoint} ({name})" if isinstance(endpoint, str) and endpoint else name


_OVERLOAD_QUIET_S: Final = 5.0
"""An overload episode ends once no item has found the queue full for this long."""


class ExportHealth:
    """The counters and outage state of one export pipeline (one exporter behind one batch processor).

    ``ended``: items handed to the pipeline; ``exported``: items the exporter confirmed; ``dropped``:
    items counted as lost (failed exports, a full queue, after shutdown, left over at shutdown).
    """

    def __init__(self, signal: Signal, target: str) -> None:
        self.signal: Signal = signal
        self.target = target
        self._lock = threading.Lock()
        self.ended = 0
        self.exported = 0
        self.dropped = 0
        self.finished = False
        self.closing = False
        self.outages = 0
        self.last_reason: str | None = None
        self._outage_since: float | None = None
        self._dropped_at_outage = 0
        self.overloads = 0
        """Overload episodes so far: stretches in which items found the export queue full."""
        self.overload_quiet_s = _OVERLOAD_QUIET_S
        self._overload_since: float | None = None
        self._last_overflow = 0.0
        self._dropped_at_overload = 0
        self.exporting_since: float | None = None
        """When the export in flight started (``time.monotonic()``); ``None`` between exports."""
        self.last_export_s = 0.0
        """How long the last export that returned took, in seconds."""
        after_fork_in_child(self._reset_in_child)

    def __repr__(self) -> str:
        return (
            f"ExportHealth({self.signal!r}, target={self.target!r}, ended={self.ended}, "
            f"exported={self.exported}, dropped={self.dropped}, outages={self.outages})"
        )

    @property
    def in_outage(self) -> bool:
        """Whether exports are failing now (since the last warning, without a success after it)."""
        return self._outage_since is not None

    def slower_than(self, seconds: float) -> bool:
        """Whether the collector takes longer than ``seconds`` to answer: the export in flight has been
        waiting that long, or the last one took that long. A black hole and a slow collector look alike
        until the answer comes; either way, whoever waits for it would wait that long."""
        since = self.exporting_since
        if since is not None and time.monotonic() - since > seconds:
            return True
        return self.last_export_s > seconds

    def export_started(self) -> None:
        """An export call begins."""
        self.exporting_since = time.monotonic()

    def export_returned(self) -> None:
        """The export call returned (whatever its result)."""
        since, self.exporting_since = self.exporting_since, None
        if since is not None:
            self.last_export_s = time.monotonic() - since

    def _reset_in_child(self) -> None:
        # The parent's queue is cleared in a forked child (the SDK does it), so are its counts.
        self._lock = threading.Lock()
        self.ended = self.exported = self.dropped = self.outages = self._dropped_at_outage = 0
        self._outage_since = self.last_reason = self.exporting_since = self._overload_since = None
        self.overloads = self._dropped_at_overload = 0
        self.last_export_s = 0.0
        self.finished = self.closing = False

    def start_closing(self) -> bool:
        """Mark the pipeline as shutting down; ``False`` if that had already begun."""
        with self._lock:
            if self.closing:
                return False
            self.closing = True
            return True

    def accept(self) -> bool:
        """Count one item handed to the pipeline; ``False`` (and counted dropped) once it has finished."""
        with self._lock:
            if not self.finished:
                self.ended += 1
                return True
            self.dropped += 1
        add_dropped(self.signal, 1)
        return False

    def trouble(self, reason: str | None) -> None:
        """Exporting is failing (an attempt failed, or the queue is full): warn if this starts an outage.

        ``reason`` is what went wrong, ``None`` when nothing more was said than "the export failed".
        """
        with self._lock:
            if reason is not None and not (self.closing and self.last_reason):  # keep the cause, not
                self.last_reason = reason.strip().rstrip(".")  # "shutdown in progress" that follows it
            reason = self.last_reason
            if self._outage_since is not None or self.closing:
                return  # already reported; or shutting down, when the closing line says it all
            self._outage_since = time.monotonic()
            self._dropped_at_outage = self.dropped
            self.outages += 1
        noun = NOUNS[self.signal]
        internal_logger.warning(
            "otel_runtime could not export %s to %s: %s. Export is retried; %s that cannot be delivered "
            "are dropped and counted (otel_runtime.dropped()). Not repeated until export recovers.",
            noun,
            self.target,
            reason or "the export failed",
            noun,
        )

    def overflowed(self) -> None:
        """An item found the export queue full and was dropped: warn once if this starts an overload.

        Under sustained overload the queue fills, drains a batch, fills again: one episode, one warning,
        until no item has found the queue full for ``overload_quiet_s``; then one ``INFO`` line says how
        many items the episode dropped. Overload is not an outage: exports go on succeeding meanwhile.
        """
        now = time.monotonic()
        with self._lock:
            if self.finished:
                return
            ended = self._overload_ended(now)
            starts = self._overload_since is None
            if starts:
                self._overload_since, self._dropped_at_overload = now, self.dropped
                self.overloads += 1
            self.dropped += 1
            self._last_overflow = now
        add_dropped(self.signal, 1)
        self._report_overload_end(ended)
        if starts:
            internal_logger.warning(
                "otel_runtime: the export queue to %s is full: %s end faster than they can be exported. "
                "Those that find it full are dropped and counted (otel_runtime.dropped()); one line will "
                "say how many once it keeps up again.",
                self.target,
                NOUNS[self.signal],
            )

    def _overload_ended(self, now: float) -> tuple[int, float] | None:
        """End the overload episode if it is over by ``now``: its count and length (caller holds the lock)."""
        since = self._overload_since
        if since is None or now - self._last_overflow < self.overload_quiet_s:
            return None
        self._overload_since = None
        return self.dropped - self._dropped_at_overload, self._last_overflow - since

    def _report_overload_end(self, ended: tuple[int, float] | None) -> None:
        if ended is not None:
            internal_logger.info(
                "otel_runtime: the export queue to %s keeps up again; %d %s dropped in %.1f s of overload",
                self.target,
                ended[0],
                NOUNS[self.signal],
                ended[1],
            )

    def succeeded(self, count: int) -> None:
        """``count`` items were exported; an outage, if any, is over."""
        with self._lock:
            overload = self._overload_ended(time.monotonic())
            self.exported += count
            if self.finished:  # an export that outlived shutdown: its items were counted dropped then
                late = min(count, self.dropped)
                self.dropped -= late
                add_dropped(self.signal, -late)
                return
            since, self._outage_since = self._outage_since, None
            lost = self.dropped - self._dropped_at_outage
        self._report_overload_end(overload)
        if since is not None:
            internal_logger.info(
                "otel_runtime: exporting %s to %s recovered after %.1f s; %d dropped meanwhile",
                NOUNS[self.signal],
                self.target,
                time.monotonic() - since,
                lost,
            )

    def lost(self, count: int, reason: str | None) -> None:
        """``count`` items were dropped because of ``reason`` (``None``: the exporter's last complaint)."""
        with self._lock:
            if self.finished:  # an export still running at shutdown: its items were counted then
                return
            self.dropped += count
        add_dropped(self.signal, count)
        self.trouble(reason)

    def finish(self) -> int:
        """The pipeline has shut down: count what was neither exported nor dropped; log one line if any."""
        with self._lock:
            if self.finished:
                return self.dropped
            self.finished = self.closing = True
            left_over = max(0, self.ended - self.exported - self.dropped)
            self.dropped += left_over
            total, ended, reason = self.dropped, self.ended, self.last_reason
        add_dropped(self.signal, left_over)
        noun = NOUNS[self.signal]
        if total:
            internal_logger.warning(
                "otel_runtime dropped %d of %d %s: they were not exported to %s (last error: %s). "
                "See otel_runtime.dropped().",
                total,
                ended,
                noun,
                self.target,
                reason or "the export failed",
            )
        else:
            internal_logger.debug("otel_runtime exported all %d %s to %s", ended, noun, self.target)
        return total
