"""The one processor ``configure()`` adds to each provider, whose contents a later call swaps.

Each provider gets one *slot* of ours, added once; ``configure()`` swaps what the slot holds, so
calling it again replaces the exporters instead of adding a second set. At process exit (and when a
provider is shut down) the slots shut their processors down within the process's shutdown bound,
even when the endpoint is down.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any, Final, Generic, TypeVar

from opentelemetry import _logs, trace
from opentelemetry.sdk._logs import LoggerProvider, LogRecordProcessor, ReadWriteLogRecord
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from otel_runtime._base.guard import internal_logger
from otel_runtime._sdk.drops import add_dropped
from otel_runtime._sdk.monitored_processor import (
    MonitoredLogProcessor,
    MonitoredProcessor,
    MonitoredSpanProcessor,
)
from otel_runtime._sdk.shutdown import exit_deadline, shutdown_within

__all__ = [
    "LOGGER_SLOTS",
    "TRACER_SLOTS",
    "LogSlot",
    "ProviderSlots",
    "Slot",
    "SpanSlot",
    "install",
    "lock",
    "shutdown_at_exit",
]

_ProcessorT = TypeVar("_ProcessorT", bound=MonitoredProcessor[Any])
_ProviderT = TypeVar("_ProviderT", TracerProvider, LoggerProvider)

lock: Final = threading.Lock()
"""Held while the slots change, so that one ``configure()`` sets both signals' slots together."""
# A fork taken while another thread holds it would leave the child's copy held for ever (the exit hook
# takes it): reinitialise it there, as the standard library does its own locks.
os.register_at_fork(after_in_child=lock._at_fork_reinit)  # type: ignore[attr-defined]
_EXIT_SLACK_S: Final = 1.0
"""What the exit hook may take beyond the bound (closing exporters, the last log lines) before it returns."""


class Slot(Generic[_ProcessorT]):
    """The processors a provider's slot holds now; shut down within the exit bound with the provider."""

    def __init__(self) -> None:
        self.held: tuple[_ProcessorT, ...] = ()
        self.closed = False
        """Emptied by a shutdown (not by ``configure(disabled=True)``): what ends now is counted dropped."""

    def shutdown(self) -> None:
        """Shut down what the slot holds, within the exit bound; the slot stays usable for configure()."""
        held, self.held = self.held, ()
        self.closed = True
        shutdown_within(held, exit_deadline())

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        """Flush every processor held; ``False`` if one did not finish."""
        return all([processor.force_flush(timeout_millis) for processor in self.held])  # noqa: C419 - flush all


# A tracer provider takes a SpanProcessor and a logger provider a LogRecordProcessor (different base
# classes with different hooks), so each signal keeps a slot class that adds itself to its provider and
# forwards its one hook; the rest is the generic Slot above.
class SpanSlot(Slot[MonitoredSpanProcessor], SpanProcessor):
    """The slot of a tracer provider."""

    @classmethod
    def added_to(cls, provider: TracerProvider) -> SpanSlot:
        """A new slot, added to ``provider``."""
        slot = cls()
        provider.add_span_processor(slot)
        return slot

    def on_end(self, span: ReadableSpan) -> None:
        """Hand the span to every processor held; count it dropped if the slot was shut down."""
        held = self.held
        if not held:
            context = span.context
            if self.closed and context is not None and context.trace_flags.sampled:
                add_dropped("traces", 1)  # after shutdown, or after the exit hook
            return
        for processor in held:
            processor.on_end(span)


class LogSlot(Slot[MonitoredLogProcessor], LogRecordProcessor):
    """The slot of a logger provider."""

    @classmethod
    def added_to(cls, provider: LoggerProvider) -> LogSlot:
        """A new slot, added to ``provider``."""
        slot = cls()
        provider.add_log_record_processor(slot)
        return slot

    def on_emit(self, log_record: ReadWriteLogRecord) -> None:
        """Hand the record to every processor held; count it dropped if the slot was shut down."""
        held = self.held
        if not held:
            scope = log_record.instrumentation_scope
            if self.closed and (scope is None or scope.name != internal_logger.name):
                add_dropped("logs", 1)  # not otel_runtime's own lines about the shutdown itself
            return
        for processor in held:
            processor.on_emit(log_record)


class ProviderSlots(Generic[_ProviderT, _ProcessorT]):
    """The slot of each SDK provider of one signal, and the global provider they go to.

    Callers hold :data:`lock` around every method.
    """

    def __init__(
        self,
        provider_type: type[_ProviderT],
        get_global: Callable[[], object],
        set_global: Callable[[_ProviderT], None],
        add_slot: Callable[[_ProviderT], Slot[_ProcessorT]],
    ) -> None:
        self._provider_type: type[_ProviderT] = provider_type
        self._get_global = get_global
        self._set_global: Callable[[_ProviderT], None] = set_global
        self._add_slot: Callable[[_ProviderT], Slot[_ProcessorT]] = add_slot
        self._slots: weakref.WeakKeyDictionary[_ProviderT, Slot[_ProcessorT]] = weakref.WeakKeyDictionary()

    def fill(
        self, resource: Resource, processors: tuple[_ProcessorT, ...]
    ) -> tuple[_ProviderT, Sequence[_ProcessorT]]:
        """Put ``processors`` in the slot of the global provider (made with ``resource`` if there is no SDK
        provider yet); return the provider and what the slot held before."""
        provider = self._get_global()
        if not isinstance(provider, self._provider_type):
            provider = self._provider_type(resource=resource)
            self._set_global(provider)
        # else opentelemetry-instrument or the user got there first: add to their provider
        slot = self._slots.get(provider)
        if slot is None:
            slot = self._slots[provider] = self._add_slot(provider)
        replaced, slot.held = slot.held, processors
        slot.closed = False
        return provider, replaced

    def empty_global(self) -> Sequence[_ProcessorT]:
        """Empty the slot of the current global provider; return what it held."""
        provider = self._get_global()
        slot = self._slots.get(provider) if isinstance(provider, self._provider_type) else None
        return self._empty(slot)

    def withdraw(self, provider: _ProviderT | None, processors: Sequence[_ProcessorT]) -> None:
        """Take ``processors`` out of ``provider``'s slot, if they are still in it."""
        slot = self._slots.get(provider) if provider is not None else None
        if slot is not None:
            kept = tuple(processor for processor in slot.held if processor not in processors)
            slot.closed = slot.closed or (not kept and bool(slot.held))
            slot.held = kept

    def empty_all(self) -> list[_ProcessorT]:
        """Empty every slot (at exit): return what they held; what ends after is counted dropped."""
        return [
            processor for slot in list(self._slots.values()) for processor in self._empty(slot, closed=True)
        ]

    @staticmethod
    def _empty(slot: Slot[_ProcessorT] | None, *, closed: bool = False) -> Sequence[_ProcessorT]:
        if slot is None:
            return ()
        held, slot.held = slot.held, ()
        slot.closed = slot.closed or (closed and bool(held))
        return held


TRACER_SLOTS: Final[ProviderSlots[TracerProvider, MonitoredSpanProcessor]] = ProviderSlots(
    TracerProvider, trace.get_tracer_provider, trace.set_tracer_provider, SpanSlot.added_to
)
LOGGER_SLOTS: Final[ProviderSlots[LoggerProvider, MonitoredLogProcessor]] = ProviderSlots(
    LoggerProvider, _logs.get_logger_provider, _logs.set_logger_provider, LogSlot.added_to
)


def install(
    resource: Resource,
    span_processors: tuple[MonitoredSpanProcessor, ...],
    log_processors: tuple[MonitoredLogProcessor, ...],
) -> tuple[TracerProvider, LoggerProvider, list[MonitoredProcessor[Any]]]:
    """Put the new processors in the global providers' slots; return the providers and what they replaced."""
    with lock:
        tracer_provider, replaced_spans = TRACER_SLOTS.fill(resource, span_processors)
        logger_provider, replaced_logs = LOGGER_SLOTS.fill(resource, log_processors)
    # The last configure() decides the order: our exit hook runs before the providers' own (LIFO).
    atexit.unregister(shutdown_at_exit)
    atexit.register(shutdown_at_exit)
    _hook_worker_exit()
    return tracer_provider, logger_provider, [*replaced_spans, *replaced_logs]


_WORKER_EXIT_PATIENCE_MILLIS: Final = 1_000
"""At a worker's exit, a collector that has not answered an export for this long is given up on."""
_worker_hooked: int | None = None


def _hook_worker_exit() -> None:
    """In a ``multiprocessing`` child (a process-pool worker), export at its exit too.

    Such a process ends with ``os._exit()``: ``atexit`` hooks do not run there, ``multiprocessing``
    finalizers do. The pool's ``shutdown()`` (at the end of a flow) waits for the worker to exit, so the
    exit does not wait for a collector that has stalled (see :func:`shutdown_worker_at_exit`).
    """
    global _worker_hooked  # noqa: PLW0603 - once per process
    multiprocessing = sys.modules.get("multiprocessing")  # never imported here: loaded by the pool
    if multiprocessing is None or _worker_hooked == os.getpid() or multiprocessing.parent_process() is None:
        return
    _worker_hooked = os.getpid()
    from multiprocessing import util

    util.Finalize(None, shutdown_worker_at_exit, exitpriority=100)


def shutdown_worker_at_exit() -> None:
    """A worker's exit: flush each pipeline unless its collector stalls, then stop them all, in bound."""
    deadline = exit_deadline()
    if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
        return  # held by a thread stuck in configure(): the worker still exits
    try:
        held: list[MonitoredProcessor[Any]] = [*TRACER_SLOTS.empty_all(), *LOGGER_SLOTS.empty_all()]
    finally:
        lock.release()
    flushed: list[MonitoredProcessor[Any]] = []

    def flush(processor: MonitoredProcessor[Any]) -> None:
        remaining = int(max(0.0, deadline - time.monotonic()) * 1000)
        if processor.force_flush(remaining, patience_millis=_WORKER_EXIT_PATIENCE_MILLIS):
            flushed.append(processor)

    flushes = [threading.Thread(target=flush, args=(processor,), daemon=True) for processor in held]
    for thread in flushes:  # spans and logs at once: the pool's shutdown waits for the slower one only
        thread.start()
    for thread in flushes:
        thread.join(max(0.0, deadline - time.monotonic()))
    for processor in held:
        if processor not in flushed:
            processor.shutdown(timeout_millis=0)  # stalled: what is left is counted dropped
    shutdown_within(flushed, deadline)


def shutdown_at_exit() -> None:
    """Flush and stop every exporter configure() installed, all within the exit bound.

    The work runs in a helper thread the exit waits for only as long as the bound (and a little): in a
    forked child, something inherited from the parent (a gRPC connection's lock) could block for ever,
    and the process must still exit.
    """
    deadline = exit_deadline()

    def shut() -> None:
        if not lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
            return
        try:
            held: list[MonitoredProcessor[Any]] = [*TRACER_SLOTS.empty_all(), *LOGGER_SLOTS.empty_all()]
        finally:
            lock.release()
        shutdown_within(held, deadline)

    try:
        helper = threading.Thread(target=shut, name="otel_runtime-exit", daemon=True)
        helper.start()
    except RuntimeError:  # no new threads at this point of the interpreter's exit: do it here
        shut()
        return
    helper.join(max(0.0, deadline - time.monotonic()) + _EXIT_SLACK_S)
