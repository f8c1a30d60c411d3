"""``@task``: each call of the decorated function is a task run and an OpenTelemetry span."""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from opentelemetry.context import Context
from opentelemetry.trace import Span

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core import names as _names
from otel_runtime._core.deployments import deployment_attributes, remote_deployment, run_tags
from otel_runtime._core.identity import TAGS, inbound, with_task_run
from otel_runtime._core.models import Deployment, TaskRun, new_run_id
from otel_runtime._engine.annotations import unmapped
from otel_runtime._engine.futures import PrefectFutureList, TaskRunFuture
from otel_runtime._engine.hooks import Hooks
from otel_runtime._engine.resolution import BlockedBy
from otel_runtime._engine.retry import RetryCondition, RetryDelays
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.run_kinds import TASK
from otel_runtime._engine.run_states import Control, handle_for, new_handle, submitted_outcome
from otel_runtime._engine.runs import Described, Runnable, RunScope
from otel_runtime._engine.shapes import Shape
from otel_runtime._engine.task_runners import TaskRunner, ThreadPoolTaskRunner

if TYPE_CHECKING:
    from otel_runtime._engine.cache_policies import CacheKeyFn, CachePolicy

__all__ = ["Task", "task", "unmapped"]

P = ParamSpec("P")
R = TypeVar("R")

_NO_PARAMETERS: Mapping[str, Any] = MappingProxyType({})
"""The parameters of every task run called without arguments (read-only, so one can serve all)."""

_default_runner: TaskRunner = ThreadPoolTaskRunner()
"""Runs task runs submitted outside any flow run."""


class Task(Runnable[P, R], Generic[P, R]):
    """A function whose every call is a task run. Calling it runs it and returns its result."""

    # The keywords a task shares with a flow (name, tags, retries, ...) are spelled out here and in
    # ``Flow.__init__``, so each decorator's signature is explicit; ``Runnable`` holds what they mean.
    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        task_run_name: str | Callable[..., str] | None = None,
        tags: Sequence[str] = (),
        retries: int = 0,
        retry_delay_seconds: RetryDelays = 0,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: RetryCondition | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        record_parameters: bool = True,
        description: str | None = None,
        on_completion: Hooks = None,
        on_failure: Hooks = None,
        on_running: Hooks = None,
        cache_policy: CachePolicy | None = None,
        cache_key_fn: CacheKeyFn | None = None,
        cache_expiration: timedelta | None = None,
        refresh_cache: bool | None = None,
        cache_result_in_memory: bool = True,
        persist_result: bool | None = None,
    ) -> None:
        super().__init__(
            fn,
            name=name,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            log_prints=log_prints,
            record_parameters=record_parameters,
            description=description,
            hooks={"on_completion": on_completion, "on_failure": on_failure, "on_running": on_running},
            timeout_seconds=timeout_seconds,
            retry_jitter_factor=retry_jitter_factor,
            retry_condition_fn=retry_condition_fn,
        )
        self.task_run_name = task_run_name
        self.tags = tuple(dict.fromkeys(tags))
        self._in_flow_run: tuple[Any, ...] | None = None
        """What its runs in the latest flow run it ran in share: ``((flow run id, deployment, active tags,
        own tags), span attributes, run tags)`` (``_describe``)."""
        # Prefect's cache options, kept as given (``with_options`` reads them); ``_cache`` is what runs use.
        self.cache_policy, self.cache_key_fn = cache_policy, cache_key_fn
        self.cache_expiration, self.refresh_cache = cache_expiration, refresh_cache
        self.cache_result_in_memory, self.persist_result = cache_result_in_memory, persist_result
        self._cache = None
        if (
            cache_policy is not None
            or cache_key_fn is not None
            or cache_expiration is not None
            or persist_result
        ):
            # Only a task with cache options loads the caching machinery (hashlib, pickle, file store).
            from otel_runtime._engine.caching import task_cache

            self._cache = task_cache(
                self.name,
                cache_policy=cache_policy,
                cache_key_fn=cache_key_fn,
                cache_expiration=cache_expiration,
                refresh_cache=refresh_cache,
                cache_result_in_memory=cache_result_in_memory,
                persist_result=persist_result,
            )
        if self._cache is not None and self._shape not in (Shape.SYNC, Shape.ASYNC):
            warn_once(f"cache-generator:{self.name}", f"task {self.name!r} is a generator: it is not cached")
            self._cache = None

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle by reference, as ``module.qualname``, so a worker process resolves the same task."""
        module, qualname = self.__module__, str(getattr(self, "__qualname__", self.name))
        try:
            found = _task_by_name(module, qualname)
        except (ImportError, AttributeError, TypeError):
            found = None
        if found is not self:
            raise pickle.PicklingError(
                f"task {self.name!r} cannot be sent to another process: it is not reachable as "
                f"{module}.{qualname}; define it with @task at module level"
            )
        return (_task_by_name, (module, qualname))

    def _generated_name(self, run_id: str) -> str:
        return _names.task_run_name(self.name, run_id)

    # ``Runnable._describe``, called by ``opening.open_run`` with the same arguments as a flow's.
    def _describe(
        self,
        parent: Context,
        flow_context: FlowRunContext | None,
        parameters: dict[str, Any],
        run_id: str,
        name: str,
    ) -> Described:
        if flow_context is not None:
            # What every run of this task in this flow run (and ``with tags(...)`` block) shares, merged
            # on its first run there instead of on each: its span attributes but the id and name, its
            # tags. Keyed on the flow run's id and deployment, not its context, so that a finished flow
            # run is not kept alive.
            flow_run = flow_context.flow_run
            flow_run_id: str | None = flow_run.id
            deployment = flow_run.deployment
            key = (flow_run_id, deployment, parent.get(TAGS), self.tags)  # compared as ``Flow._describe``'s
            shared = self._in_flow_run
            if shared is None or shared[0] != key:
                attributes, tags = self._attributes(deployment, flow_run_id), run_tags(self.tags, parent)
                shared = self._in_flow_run = (key, attributes, tags)
            attributes, tags = shared[1].copy(), shared[2]
        else:
            flow_run_id = inbound(_keys.FLOW_RUN_ID, parent)
            attributes = self._attributes(remote_deployment(parent), flow_run_id)
            tags = run_tags(self.tags, parent)
        attributes[_keys.TASK_RUN_ID] = run_id
        attributes[_keys.TASK_RUN_NAME] = name
        # Positional (id, name, task_name, parameters, tags, flow_run_id): keywords cost a run 0.3 us.
        record = TaskRun(
            run_id,
            name,
            self.name,
            MappingProxyType(parameters) if parameters else _NO_PARAMETERS,
            tags,
            flow_run_id,
        )
        return record, attributes, parent, None

    def _attributes(self, deployment: Deployment | None, flow_run_id: str | None) -> dict[str, Any]:
        """The span attributes of a run of this task in ``deployment`` and flow run, in span order (its
        id and name still empty)."""
        attributes = {**self._attribute_template, **deployment_attributes(deployment)}
        if flow_run_id is not None:
            attributes[_keys.FLOW_RUN_ID] = flow_run_id
        return attributes

    def _enter(self, span: Span, parent: Context, record: TaskRun, log_prints: bool) -> RunScope:
        # Positional (task_run, task, parameters, span, log_prints), as ``TaskRun`` in ``_describe``.
        run_context = TaskRunContext(record, self, record.parameters, span, log_prints)
        context = with_task_run(parent, span, run_context, record.id)
        return RunScope(span, context, record, TASK)

    def run_submitted(self, args: tuple[Any, ...], kwargs: dict[str, Any], task_run_id: str) -> Any:
        """Run a submitted task run in the current context: wait for its upstreams (``wait_for`` and the
        futures in its arguments), then call. Its outcome: the value, or a ``Settled`` state."""
        if self._shape is not Shape.ASYNC and self._shape is not Shape.SYNC:
            raise TypeError(f"task {self.name!r} is a generator; call it instead of submitting it")
        control = Control(handle=handle_for(task_run_id))
        kwargs = dict(kwargs)
        wait_for = kwargs.pop("wait_for", None)
        try:
            args, kwargs = self._resolve(args, kwargs, wait_for, control)
        except BlockedBy as blocked:
            return self.run_blocked(args, kwargs, task_run_id, blocked, control)
        if self._shape is Shape.ASYNC:
            import asyncio  # a worker running an async task; `import otel_runtime` stays light

            value = asyncio.run(self._run_async(args, kwargs, task_run_id, control))
        else:
            value = self._run_sync(args, kwargs, task_run_id, control)
        return submitted_outcome(control, value)

    def run_blocked(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        task_run_id: str,
        blocked: BlockedBy,
        control: Control | None = None,
    ) -> Any:
        """A submitted run that will not start, an upstream having failed: its ``NotReady`` outcome."""
        control = control if control is not None else Control(handle=handle_for(task_run_id))
        kwargs = {key: value for key, value in kwargs.items() if key != "wait_for"}
        self._run_blocked(args, kwargs, task_run_id, blocked, control)
        return submitted_outcome(control, None)

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        """Start a task run on the flow run's task runner and return its future.

        The run sees the context of this call (span, baggage, deployment, tags). Outside a flow run,
        a shared thread pool runs it. ``wait_for=[...]`` names upstream futures to wait for first;
        ``return_state=True`` waits for the run and returns its final state instead of a future.
        """
        return_state = bool(kwargs.pop("return_state", False))
        call_kwargs = {key: value for key, value in kwargs.items() if key != "wait_for"} if kwargs else kwargs
        self.bind(args, call_kwargs)  # a call that could never run fails here, in the caller
        flow_run = FlowRunContext.get()
        runner = flow_run.task_runner if flow_run is not None else _default_runner
        task_run_id = new_run_id()
        handle = new_handle(task_run_id)
        future = TaskRunFuture(runner.submit(self, args, kwargs, task_run_id), task_run_id, handle)
        if return_state:
            future.wait()
            return future.state
        return future

    def map(self, *args: Any, **kwargs: Any) -> PrefectFutureList[Any]:
        """Submit one task run per element of the iterable arguments, zipped; others go to every run.

        Strings, bytes, mappings and ``unmapped(...)`` values are passed whole. Raises ``ValueError``
        when the iterables differ in length.
        """
        wait_for = kwargs.pop("wait_for", None)
        extra = {} if wait_for is None else {"wait_for": wait_for}
        mapped_args = [_mappable(value) for value in args]
        mapped_kwargs = {key: _mappable(value) for key, value in kwargs.items()}
        lengths = {len(value) for value in (*mapped_args, *mapped_kwargs.values()) if isinstance(value, list)}
        if len(lengths) > 1:
            raise ValueError(f"{self.name}.map got iterables of different lengths: {sorted(lengths)}")
        count = lengths.pop() if lengths else 1
        return PrefectFutureList(
            self.submit(
                *[_pick(value, index) for value in mapped_args],
                **{key: _pick(value, index) for key, value in mapped_kwargs.items()},
                **extra,
            )
            for index in range(count)
        )


def _task_by_name(module: str, qualname: str) -> Task[..., Any]:
    """The task defined as ``qualname`` in ``module`` (how a pickled task is found again)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    if not isinstance(found, Task):
        raise TypeError(f"{module}.{qualname} is not a task")
    return found


def _mappable(value: Any) -> Any:
    """A list of the values to map over, or the value itself wrapped in ``unmapped`` if it is static."""
    if isinstance(value, unmapped):
        return value
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        return unmapped(value)
    return list(value)


def _pick(value: Any, index: int) -> Any:
    return value.value if isinstance(value, unmapped) else value[index]


# The decorator's keywords repeat ``Task.__init__``'s (and the overload's) so each signature is
# explicit for type checkers and ``help()``; ``with_options`` reads them from ``Task.__init__``.
@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...
@overload
def task(
    *,
    name: str | None = None,
    task_run_name: str | Callable[..., str] | None = None,
    tags: Sequence[str] = (),
    retries: int = 0,
    retry_delay_seconds: RetryDelays = 0,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: RetryCondition | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    record_parameters: bool = True,
    description: str | None = None,
    on_completion: Hooks = None,
    on_failure: Hooks = None,
    on_running: Hooks = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | None = None,
    refresh_cache: bool | None = None,
    cache_result_in_memory: bool = True,
    persist_result: bool | None = None,
) -> Callable[[Callable[P, R]], Task[P, R]]: ...
def task(
    __fn: Callable[P, R] | None = None,
    *,
    name: str | None = None,
    task_run_name: str | Callable[..., str] | None = None,
    tags: Sequence[str] = (),
    retries: int = 0,
    retry_delay_seconds: RetryDelays = 0,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: RetryCondition | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    record_parameters: bool = True,
    description: str | None = None,
    on_completion: Hooks = None,
    on_failure: Hooks = None,
    on_running: Hooks = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: CacheKeyFn | None = None,
    cache_expiration: timedelta | None = None,
    refresh_cache: bool | None = None,
    cache_result_in_memory: bool = True,
    persist_result: bool | None = None,
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task: each call is a task run, traced as the span ``task <name>``.

    Works bare (``@task``) or with options (``@task(retries=3)``), on sync and async functions and on
    generators. ``task_run_name`` is a ``str.format`` template over the parameters, or a callable.
    """

    def decorate(fn: Callable[P, R]) -> Task[P, R]:
        return Task(
            fn,
            name=name,
            task_run_name=task_run_name,
            tags=tags,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            retry_jitter_factor=retry_jitter_factor,
            retry_condition_fn=retry_condition_fn,
            timeout_seconds=timeout_seconds,
            log_prints=log_prints,
            record_parameters=record_parameters,
            description=description,
            on_completion=on_completion,
            on_failure=on_failure,
            on_running=on_running,
            cache_policy=cache_policy,
            cache_key_fn=cache_key_fn,
            cache_expiration=cache_expiration,
            refresh_cache=refresh_cache,
            cache_result_in_memory=cache_result_in_memory,
            persist_result=persist_result,
        )

    return decorate if __fn is None else decorate(__fn)


Task.__module__ = unmapped.__module__ = "otel_runtime"
