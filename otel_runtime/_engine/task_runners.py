"""Task runners: where submitted task runs execute (re-exported by ``otel_runtime.task_runners``)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import contextvars
import functools
import importlib.util
import pickle
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from otel_runtime._engine.futures import is_crash
from otel_runtime._engine.remote import (
    RemoteCall,
    WorkerSetup,
    default_worker_setup,
    prepare_pool_worker,
    run_blocked,
    run_crashed,
    run_task,
)
from otel_runtime._engine.resolution import BlockedBy, has_upstreams, resolve_inputs

if TYPE_CHECKING:
    from multiprocessing.context import BaseContext

    from typing_extensions import Self

    from otel_runtime._engine.tasks import Task

__all__ = ["DaskTaskRunner", "ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]


class TaskRunner(ABC):
    """Runs submitted task runs and returns a ``concurrent.futures.Future`` for each."""

    @abstractmethod
    def duplicate(self) -> Self:
        """A fresh, unstarted runner with the same settings, for one flow run."""

    @abstractmethod
    def submit(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], task_run_id: str
    ) -> concurrent.futures.Future[Any]:
        """Start the task run ``task_run_id`` of ``task(*args, **kwargs)`` in the current context."""

    @abstractmethod
    def shutdown(self, wait: bool = True) -> None:
        """Wait for the submitted task runs (unless ``wait=False``, which cancels pending ones) and stop."""


class ThreadPoolTaskRunner(TaskRunner):
    """Runs task runs in a thread pool (the default). Each carries the context of its ``submit`` call."""

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"

    def duplicate(self) -> Self:
        return type(self)(self.max_workers)

    def submit(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], task_run_id: str
    ) -> concurrent.futures.Future[Any]:
        executor = self._executor
        if executor is None:
            with self._lock:
                if self._executor is None:
                    self._executor = concurrent.futures.ThreadPoolExecutor(
                        self.max_workers, thread_name_prefix="otel_runtime-task"
                    )
                executor = self._executor
        return executor.submit(contextvars.copy_context().run, task.run_submitted, args, kwargs, task_run_id)

    def shutdown(self, wait: bool = True) -> None:
        # A task run still running may submit another one while we wait: that starts a new pool, which
        # is waited for in turn, until no task run is left to submit anything.
        if self._executor is None:  # nothing was submitted (most flow runs): no lock to take
            return
        while True:
            with self._lock:
                executor, self._executor = self._executor, None
            if executor is None:
                return
            executor.shutdown(wait=wait, cancel_futures=not wait)


class _OutOfProcessTaskRunner(TaskRunner):
    """What the process-pool and Dask runners share: the submit-time capture and upstream futures."""

    def __init__(self, configure_worker: WorkerSetup | None) -> None:
        self.configure_worker = configure_worker
        self._lock = threading.Lock()
        self._waiting: concurrent.futures.ThreadPoolExecutor | None = None

    def submit(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], task_run_id: str
    ) -> concurrent.futures.Future[Any]:
        pickle.dumps(task)  # a task that cannot reach a worker fails here, in the caller
        call = RemoteCall(task, args, kwargs, task_run_id, self.configure_worker)
        if not has_upstreams((args, kwargs)):
            future = self._start(call)
        else:
            with self._lock:
                if self._waiting is None:
                    self._waiting = concurrent.futures.ThreadPoolExecutor(
                        thread_name_prefix="otel_runtime-upstream"
                    )
                waiting = self._waiting
            future = waiting.submit(self._start_when_resolved, call)
        future.add_done_callback(functools.partial(self._record_if_crashed, call))
        return future

    def _record_if_crashed(self, call: RemoteCall, future: concurrent.futures.Future[Any]) -> None:
        """A run whose worker died leaves no span there: record its one span here (``run_crashed``)."""
        error = None if future.cancelled() else future.exception()
        if isinstance(error, Exception) and is_crash(error):
            run_crashed(call, error)

    def _start_when_resolved(self, call: RemoteCall) -> Any:
        """Wait for the upstream futures in ``call``'s arguments (and ``wait_for``), then run it; its
        result. An upstream that did not complete ends the run ``NotReady`` here, without a worker."""
        try:
            args = tuple(resolve_inputs(value) for value in call.args)
            kwargs = {key: resolve_inputs(value) for key, value in call.kwargs.items()}
        except BlockedBy as blocked:
            return run_blocked(call, blocked)
        return self._start(call.resolved(args, kwargs)).result()

    @abstractmethod
    def _start(self, call: RemoteCall) -> concurrent.futures.Future[Any]:
        """Send ``call`` to a worker; a future of its result."""

    @abstractmethod
    def _stop(self, wait: bool) -> None:
        """Wait for (or cancel) what was sent, and release the workers."""

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            waiting, self._waiting = self._waiting, None
        if waiting is not None:
            waiting.shutdown(wait=wait, cancel_futures=not wait)
        self._stop(wait)


class ProcessPoolTaskRunner(_OutOfProcessTaskRunner):
    """Runs task runs in worker processes, each a task run there with its own span, exported there.

    ``mp_context`` is a ``multiprocessing`` context or a start method name (``"spawn"``, ``"fork"``,
    ``"forkserver"``); default: the platform's. ``configure_worker`` runs once in each worker to set up
    its telemetry (default: ``otel_runtime.configure()`` from the inherited environment; a module-level
    function or ``functools.partial`` of one; ``None`` leaves the worker as it is).
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: BaseContext | str | None = None,
        *,
        configure_worker: WorkerSetup | None = default_worker_setup,
    ) -> None:
        super().__init__(configure_worker)
        self.max_workers = max_workers
        self.mp_context = mp_context
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None
        # The pipe the workers tell the runs they ended on (``remote.tell_ended``), what they told, and
        # the runs the pool failed as crashed, decided once its workers are gone (``_stop``).
        self._ended_pipe: Any = None
        self._ended: set[str] = set()
        self._crashed: list[tuple[RemoteCall, Exception]] = []

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers}, mp_context={self.mp_context!r})"

    def duplicate(self) -> Self:
        return type(self)(self.max_workers, self.mp_context, configure_worker=self.configure_worker)

    def _start(self, call: RemoteCall) -> concurrent.futures.Future[Any]:
        with self._lock:
            if self._executor is None:
                import multiprocessing  # a process pool only; `import otel_runtime` stays light

                context = self.mp_context
                if context is None or isinstance(context, str):
                    context = multiprocessing.get_context(context)
                reader, writer = context.Pipe(duplex=False)
                self._ended_pipe = (reader, writer)
                self._executor = concurrent.futures.ProcessPoolExecutor(
                    self.max_workers,
                    mp_context=context,
                    initializer=prepare_pool_worker,
                    initargs=(self.configure_worker, writer),
                )
            executor = self._executor
        try:
            return executor.submit(run_task, call)
        except concurrent.futures.BrokenExecutor as broken:
            return _crashed_future(broken)
        except OSError as error:
            if not getattr(executor, "_broken", False):
                raise
            # The pool broke while this submit was starting a worker for it (its queue closed under it).
            from concurrent.futures.process import BrokenProcessPool

            crashed = BrokenProcessPool(
                f"a pool process terminated abruptly as this run was submitted ({error})"
            )
            crashed.__cause__ = error
            return _crashed_future(crashed)

    def _record_if_crashed(self, call: RemoteCall, future: concurrent.futures.Future[Any]) -> None:
        # A broken pool fails every future at once, while its other workers may still be ending their
        # runs (and exporting their spans): which runs have no span is known when the workers are gone.
        error = None if future.cancelled() else future.exception()
        with self._lock:
            self._drain_ended()
            if isinstance(error, Exception) and is_crash(error):
                self._crashed.append((call, error))
            else:
                self._ended.discard(call.task_run_id)  # forgotten once its future is done

    def _drain_ended(self) -> None:
        """Read what the workers told (called for every finished future: the pipe never fills up)."""
        pipe = self._ended_pipe
        try:
            while pipe is not None and pipe[0].poll():
                self._ended.add(pipe[0].recv_bytes().decode())
        except (OSError, EOFError, UnicodeDecodeError):
            pass

    def _stop(self, wait: bool) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            if self._crashed or getattr(executor, "_broken", False):
                _terminate_workers(executor)
            executor.shutdown(wait=wait, cancel_futures=not wait)  # its workers have exited now
        with self._lock:
            self._drain_ended()
            crashed = [(call, error) for call, error in self._crashed if call.task_run_id not in self._ended]
            pipe, self._ended_pipe = self._ended_pipe, None
            self._ended.clear()
            self._crashed.clear()
        for end in pipe or ():
            end.close()
        for call, error in crashed:
            run_crashed(call, error)


def _crashed_future(broken: concurrent.futures.BrokenExecutor) -> concurrent.futures.Future[Any]:
    """A done future of a run the pool could not take: it crashed, as the runs already queued did."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_exception(broken)
    return future


def _terminate_workers(executor: concurrent.futures.ProcessPoolExecutor) -> None:
    """Send ``SIGTERM`` to the broken pool's workers that are still alive, so its shutdown can join them.

    A broken pool terminates its workers and joins them, but a worker that ``submit`` started on
    demand (spawn and forkserver pools start them one by one) while the pool was breaking escapes the
    terminate and is joined forever (a race in CPython's pool; 3.14's ``terminate_workers()`` does this).
    ``SIGTERM`` lets the worker's handler end the runs it has open (cancelled) and export them.
    """
    terminate = getattr(executor, "terminate_workers", None)
    if callable(terminate):  # Python 3.14+
        with contextlib.suppress(Exception):  # raises once shut down: nothing is left to terminate
            terminate()
        return
    workers: dict[int, Any] = dict(getattr(executor, "_processes", None) or {})
    for worker in workers.values():
        if worker.is_alive():
            worker.terminate()


_DASK_EXTRA: Final = "DaskTaskRunner needs dask.distributed: pip install 'otel-runtime[dask]'"
_LOCAL_CLUSTER_DEFAULTS: Final[Mapping[str, Any]] = {
    "processes": True,
    "threads_per_worker": 1,
    "host": "127.0.0.1",
    "dashboard_address": None,
    # No dashboard; the scheduler's health/metrics HTTP server takes a free port on loopback instead
    # of 8787, which a second cluster would find taken.
    "scheduler_kwargs": {"dashboard_address": "127.0.0.1:0"},
}


class DaskTaskRunner(_OutOfProcessTaskRunner):
    """Runs task runs on a ``dask.distributed`` cluster; each is a task run on its worker, exported there.

    Give an existing ``cluster`` object or a scheduler ``address``; with neither, each flow run starts
    its own ``LocalCluster`` of worker processes on 127.0.0.1 without a dashboard (``cluster_kwargs``
    override that) and closes it at the end. Sharing one cluster across flow runs is much faster.
    ``configure_worker`` runs once in each worker process, as for :class:`ProcessPoolTaskRunner`.
    """

    def __init__(
        self,
        cluster: Any = None,
        address: str | None = None,
        *,
        cluster_kwargs: Mapping[str, Any] | None = None,
        client_kwargs: Mapping[str, Any] | None = None,
        configure_worker: WorkerSetup | None = default_worker_setup,
    ) -> None:
        if importlib.util.find_spec("distributed") is None:
            raise ImportError(_DASK_EXTRA)
        if cluster is not None and address is not None:
            raise ValueError("give DaskTaskRunner a cluster or an address, not both")
        super().__init__(configure_worker)
        self.cluster = cluster
        self.address = address
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self._client: Any = None
        self._owned_cluster: Any = None
        self._sent: dict[concurrent.futures.Future[Any], Any] = {}
        self._run: Any = run_task  # what a worker runs: the death-aware run once connected

    def __repr__(self) -> str:
        where = f"address={self.address!r}" if self.address else f"cluster={self.cluster!r}"
        return f"DaskTaskRunner({where})"

    def duplicate(self) -> Self:
        return type(self)(
            self.cluster,
            self.address,
            cluster_kwargs=self.cluster_kwargs,
            client_kwargs=self.client_kwargs,
            configure_worker=self.configure_worker,
        )

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    distributed: Any = importlib.import_module("distributed")
                except ImportError as error:  # pragma: no cover - checked in __init__
                    raise ImportError(_DASK_EXTRA) from error
                options = {"set_as_default": False, **self.client_kwargs}
                if self.address is not None:
                    self._client = distributed.Client(self.address, **options)
                elif self.cluster is not None:
                    self._client = distributed.Client(self.cluster, **options)
                else:
                    self._owned_cluster = distributed.LocalCluster(
                        **{**_LOCAL_CLUSTER_DEFAULTS, **self.cluster_kwargs}
                    )
                    self._client = distributed.Client(self._owned_cluster, **options)
                from otel_runtime._engine import dask_deaths  # imports distributed: only here

                if dask_deaths.record_deaths(self._client):
                    self._run = dask_deaths.run_on_dask_worker
            return self._client

    def _start(self, call: RemoteCall) -> concurrent.futures.Future[Any]:
        client = self._connect()
        result: concurrent.futures.Future[Any] = concurrent.futures.Future()
        result.set_running_or_notify_cancel()
        sent = client.submit(self._run, call, pure=False, key=f"{call.task.name}-{call.task_run_id}")
        with self._lock:
            self._sent[result] = sent  # the Dask future must live until it is done
        sent.add_done_callback(lambda done: self._settle(result, done))
        return result

    def _settle(self, result: concurrent.futures.Future[Any], sent: Any) -> None:
        """Copy the outcome of the Dask future ``sent`` into ``result`` (on a Dask callback thread)."""
        try:
            if sent.status == "finished":
                result.set_result(sent.result())
            elif sent.status == "cancelled":
                result.set_exception(concurrent.futures.CancelledError(f"Dask cancelled {sent.key}"))
            else:
                error = sent.exception()
                result.set_exception(error if isinstance(error, BaseException) else RuntimeError(repr(error)))
        except BaseException as error:
            if not result.done():
                result.set_exception(error)
        finally:
            with self._lock:
                self._sent.pop(result, None)

    def _stop(self, wait: bool) -> None:
        with self._lock:
            client, self._client = self._client, None
            cluster, self._owned_cluster = self._owned_cluster, None
            sent = dict(self._sent)
        if wait:
            concurrent.futures.wait(list(sent))
        else:
            for dask_future in sent.values():
                dask_future.cancel()
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()


for _public in (TaskRunner, ThreadPoolTaskRunner, ProcessPoolTaskRunner, DaskTaskRunner):
    _public.__module__ = "otel_runtime.task_runners"
