"""Both ends of a task run shipped to another process: a process-pool worker or a Dask worker.

The submitting side sends the task (pickled by reference), its arguments, the task run id, the active
tags and a W3C carrier of the submit-time context; never a run context object, which refuses pickling.
The worker:

1. sets up its own telemetry once per process (by default ``otel_runtime.configure()``, from the
   ``OTEL_*`` variables it inherited), first forgetting the tracer and logger providers a ``fork``
   copied from the parent: their exporters' connections belong to the parent;
2. attaches the carrier, so the task run's span is a child of the submitting flow (or task) span and
   ``runtime.flow_run.id`` / ``runtime.deployment.*`` come from baggage;
3. runs a real task run (its own ``TaskRunContext``, span and ``runtime.task_run.*``);
4. flushes spans and logs before the result goes back, so nothing is lost when a worker is killed.

The carrier is written and read by a fixed propagator pair (W3C trace context and otel_runtime's
spec-encoded baggage, without a key policy), so both ends agree on the encoding whatever each
process's global propagators are; the baggage key policy is for requests that leave the program.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import _logs, trace
from opentelemetry.context import Context, attach, detach, get_current, set_value
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util._once import Once

from otel_runtime._base.guard import warn_once
from otel_runtime._core.baggage_policy import BaggagePolicy
from otel_runtime._core.baggage_propagator import BaggagePropagator
from otel_runtime._core.deployments import active_tags
from otel_runtime._core.identity import TAGS

if TYPE_CHECKING:
    from otel_runtime._engine.tasks import Task

__all__ = [
    "RemoteCall",
    "call_context",
    "default_worker_setup",
    "prepare_pool_worker",
    "prepare_worker",
    "register_worker_setup",
    "run_blocked",
    "run_crashed",
    "run_task",
    "tell_ended",
    "tell_running_ended",
]

WorkerSetup = Callable[[], object]
"""Called once in each worker process to set up its telemetry; must pickle (a module-level function)."""

# How long a worker waits, after a task run, for the collector to confirm its spans: a healthy one does
# in milliseconds; one that takes longer (slow or black-holed) must not hold up the task runs, so the
# flush gives up then, and at once for later runs while it stays that slow. What is left is exported by
# the worker's exit hook (otel_runtime._sdk.slots), which also gives up on a collector that stalls.
_FLUSH_TIMEOUT_MILLIS: Final = 250
_CARRIER: Final = CompositePropagator(
    [TraceContextTextMapPropagator(), BaggagePropagator(policy=BaggagePolicy())]
)

_forked = False
_prepared_pid: int | None = None
_prepare_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _forked, _prepare_lock  # noqa: PLW0603 - facts about this process, set once
    _forked = True
    _prepare_lock = threading.Lock()  # a fork taken mid set-up would leave it held forever


os.register_at_fork(after_in_child=_after_fork_in_child)


_registered_setup: WorkerSetup | None = None


def register_worker_setup(setup: WorkerSetup) -> None:
    """Make ``setup`` what :func:`default_worker_setup` runs: the package registers ``configure()``.

    The engine does not know the SDK wiring (a higher layer); the package facade, which knows both,
    registers it when ``otel_runtime`` is imported, in the parent and again in every spawned worker.
    """
    global _registered_setup  # noqa: PLW0603 - one set-up per process, registered at import
    _registered_setup = setup


def default_worker_setup() -> None:
    """The default worker set-up: the registered one (``otel_runtime.configure()`` from the environment)."""
    if _registered_setup is not None:
        _registered_setup()


class RemoteCall:
    """Everything a worker needs for one task run, captured at submit time; pickles as plain data."""

    __slots__ = ("args", "carrier", "kwargs", "setup", "tags", "task", "task_run_id")

    def __init__(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_run_id: str,
        setup: WorkerSetup | None,
    ) -> None:
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.task_run_id = task_run_id
        self.setup = setup
        self.tags = active_tags()
        self.carrier: dict[str, str] = {}
        _CARRIER.inject(self.carrier, get_current())

    def __getstate__(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}

    def __setstate__(self, state: Mapping[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def resolved(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> RemoteCall:
        """This call with its arguments replaced (upstream futures resolved), the context kept."""
        call = RemoteCall.__new__(RemoteCall)
        call.__setstate__({**self.__getstate__(), "args": args, "kwargs": kwargs})
        return call


def _forget_inherited_providers() -> None:
    """Drop the global tracer and logger providers a fork copied, so set-up builds fresh ones.

    OpenTelemetry offers no public way to replace a global provider; this resets the same private
    globals its own test utilities reset. The copied providers are left alone, neither used nor shut
    down: their exporters hold the parent's connections.
    """
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    from opentelemetry._logs import _internal as logs_internal

    logs_internal._LOGGER_PROVIDER = None
    logs_internal._LOGGER_PROVIDER_SET_ONCE = Once()


def prepare_worker(setup: WorkerSetup | None) -> None:
    """Set up this worker process's telemetry with ``setup``, once per process. Never raises."""
    global _prepared_pid  # noqa: PLW0603 - which process has been set up
    pid = os.getpid()
    if _prepared_pid == pid:
        return
    with _prepare_lock:  # a Dask worker may start several task runs at once
        if _prepared_pid == pid:
            return
        try:
            if setup is not None:
                if _forked:
                    _forget_inherited_providers()
                setup()
        except Exception:
            warn_once("worker-setup", "otel_runtime could not set up telemetry in a worker", exc_info=True)
        finally:
            _prepared_pid = pid


def _flush() -> None:
    for provider in (trace.get_tracer_provider(), _logs.get_logger_provider()):
        force_flush = getattr(provider, "force_flush", None)
        if callable(force_flush):
            try:
                force_flush(_FLUSH_TIMEOUT_MILLIS)
            except Exception:
                warn_once("worker-flush", "otel_runtime could not flush telemetry in a worker", exc_info=True)


def call_context(call: RemoteCall) -> Context:
    """The submit-time context of ``call``: its carrier's trace and baggage, and its tags."""
    context = _CARRIER.extract(call.carrier, context=Context())
    if call.tags:
        context = set_value(TAGS, call.tags, context)
    return context


# A process-pool worker tells its pool which task runs it ended (their spans exported), so that the
# submitting process, when the pool breaks, records a crash only for the runs that have no span: one
# task-run id per message on a pipe shared by the pool's workers (a short message is one atomic write).
_ended_pipe: Any = None
_running: set[str] = set()


def prepare_pool_worker(setup: WorkerSetup | None, ended_pipe: Any) -> None:
    """A process-pool worker's initializer: :func:`prepare_worker`, and the pipe to tell ended runs on."""
    global _ended_pipe  # noqa: PLW0603 - this worker's pipe to its pool
    _ended_pipe = ended_pipe
    prepare_worker(setup)


def tell_ended(*task_run_ids: str) -> None:
    """Tell this worker's pool that these task runs ended here (a no-op outside a process-pool worker)."""
    pipe = _ended_pipe
    if pipe is None:
        return
    try:
        for task_run_id in task_run_ids:
            pipe.send_bytes(task_run_id.encode())
    except Exception:  # the pool is gone: nobody to tell
        pass


def tell_running_ended() -> None:
    """The task runs running here were just ended (as cancelled, at SIGTERM): tell the pool."""
    tell_ended(*list(_running))


def run_task(call: RemoteCall, context: Context | None = None) -> Any:
    """Run ``call`` as a task run in this (worker) process and return its result; in ``context``, else
    its own (:func:`call_context`)."""
    prepare_worker(call.setup)
    token = attach(call_context(call) if context is None else context)
    _running.add(call.task_run_id)
    try:
        return call.task.run_submitted(call.args, call.kwargs, call.task_run_id)
    finally:
        detach(token)
        _flush()
        _running.discard(call.task_run_id)
        tell_ended(call.task_run_id)


def run_crashed(call: RemoteCall, crash: Exception) -> None:
    """In the submitting process: record ``call`` as a run whose worker died, the death on its span.

    Its worker cannot: it is gone (or, for a run still queued when the pool broke, never had one).
    """
    token = attach(call_context(call))
    try:
        kwargs = {key: value for key, value in call.kwargs.items() if key != "wait_for"}
        call.task._run_crashed(call.args, kwargs, call.task_run_id, crash)
    except Exception:
        warn_once("crashed-run", "otel_runtime could not record a task run whose worker died", exc_info=True)
    finally:
        detach(token)


def run_blocked(call: RemoteCall, blocked: Exception) -> Any:
    """In the submitting process: record ``call`` as a run that will not start (an upstream failed)."""
    token = attach(call_context(call))
    try:
        return call.task.run_blocked(call.args, call.kwargs, call.task_run_id, blocked)  # type: ignore[arg-type]
    finally:
        detach(token)
