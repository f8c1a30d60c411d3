"""``@flow``: each call of the decorated function is a flow run and an OpenTelemetry span."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Generic, ParamSpec, TypeVar, overload

from opentelemetry.context import Context, get_current, get_value
from opentelemetry.trace import SpanKind, set_span_in_context

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import settings
from otel_runtime._core import names as _names
from otel_runtime._core.deployments import deployment_attributes, resolve_deployment, run_tags
from otel_runtime._core.identity import (
    FLOW_RUN_CONTEXT,
    TASK_RUN_CONTEXT,
    inbound,
    is_valid_name,
    with_flow_run,
)
from otel_runtime._core.models import FlowRun, new_run_id
from otel_runtime._core.parameters import parameter_attributes
from otel_runtime._core.trace_join import root_parent
from otel_runtime._core.tracing import tracer
from otel_runtime._engine.hooks import FlowHookLists, Hooks
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.runs import Runnable, RunScope
from otel_runtime._engine.task_runners import TaskRunner, ThreadPoolTaskRunner

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class _FlowScope(RunScope):
    """A flow run also waits for the task runs it submitted, then stops its task runner."""

    __slots__ = ("run_context",)

    def __init__(self, run_context: FlowRunContext, context: Context) -> None:
        super().__init__(run_context.span, context, run_context.flow_run, _keys.FLOW_RUN_RUN_COUNT)
        self.run_context = run_context

    def close(self, exc: BaseException | None) -> None:
        cancelled = exc is not None and not isinstance(exc, Exception)
        try:
            self.run_context.task_runner.shutdown(wait=not cancelled)
        finally:
            super().close(exc)


class Flow(FlowHookLists, Runnable[P, R], Generic[P, R]):
    """A function whose every call is a flow run. Calling it runs it and returns its result."""

    _state_keys = (_keys.FLOW_RUN_STATE_TYPE, _keys.FLOW_RUN_STATE_NAME)
    _settle_always = True  # a flow's return value decides its state (futures in it are waited for)

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        flow_run_name: str | Callable[[], str] | None = None,
        version: str | None = None,
        tags: Sequence[str] = (),
        retries: int = 0,
        retry_delay_seconds: float | Sequence[float] = 0,
        log_prints: bool | None = None,
        task_runner: TaskRunner | None = None,
        record_parameters: bool = True,
        description: str | None = None,
        on_completion: Hooks = None,
        on_failure: Hooks = None,
        on_cancellation: Hooks = None,
        on_crashed: Hooks = None,
        on_running: Hooks = None,
    ) -> None:
        super().__init__(
            fn,
            name=name,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            log_prints=log_prints,
            record_parameters=record_parameters,
            description=description,
            hooks={
                "on_completion": on_completion,
                "on_failure": on_failure,
                "on_cancellation": on_cancellation,
                "on_crashed": on_crashed,
                "on_running": on_running,
            },
        )
        self.flow_run_name = flow_run_name
        self.version = version
        self.tags = tuple(dict.fromkeys(tags))
        self.task_runner = task_runner if task_runner is not None else ThreadPoolTaskRunner()
        self._span_name = _keys.FLOW_SPAN_PREFIX + self.name

    def _run_name(self, parameters: dict[str, Any]) -> str:
        template = self.flow_run_name
        if template is None:
            return _names.flow_run_name()
        try:
            return template() if callable(template) else template.format(**parameters)
        except Exception:
            warn_once(f"flow_run_name:{self.name}", f"flow_run_name of flow {self.name!r} failed; "
                      "using a generated name", exc_info=True)
            return _names.flow_run_name()

    def _open(self, parameters: dict[str, Any], run_id: str | None) -> RunScope:
        parent = get_current()
        parent_flow = parent.get(FLOW_RUN_CONTEXT)
        if not isinstance(parent_flow, FlowRunContext):
            parent_flow = None
        links = None
        if parent_flow is None:
            parent, links = root_parent(parent)
        deployment = resolve_deployment(parent)
        run_id = run_id or new_run_id()
        if parent_flow is not None:
            parent_record = parent_flow.flow_run
            parent_id: str | None = parent_record.id
            root_id = parent_record.root_flow_run_id
            parent_deployment = parent_record.deployment.id if parent_record.deployment else None
        else:
            parent_id = inbound(_keys.FLOW_RUN_ID, parent)
            root_id = parent_id or run_id
            parent_deployment = inbound(_keys.DEPLOYMENT_ID, parent) if parent_id else None
        record = FlowRun(
            id=run_id,
            name=self._run_name(parameters),
            flow_name=self.name,
            flow_version=self.version,
            parameters=MappingProxyType(parameters),
            tags=run_tags(self.tags, parent),
            deployment=deployment,
            parent_flow_run_id=parent_id,
            parent_deployment_id=parent_deployment,
            root_flow_run_id=root_id,
            start_time=datetime.now(timezone.utc),
        )
        attributes: dict[str, Any] = {
            _keys.RUN_TYPE: _keys.RUN_TYPE_FLOW,
            _keys.FLOW_NAME: self.name,
            _keys.FLOW_RUN_ID: run_id,
            _keys.FLOW_RUN_NAME: record.name,
            _keys.FLOW_RUN_ROOT_ID: root_id,
            **deployment_attributes(deployment),
            **self._code_attributes,
            _keys.FLOW_RUN_RUN_COUNT: 1,
        }
        if self.version is not None:
            attributes[_keys.FLOW_VERSION] = self.version
        if record.tags:
            attributes[_keys.FLOW_RUN_TAGS] = record.tags
        if parent_id is not None:
            attributes[_keys.FLOW_RUN_PARENT_ID] = parent_id
        if parameters and self.record_parameters and settings.record_parameters:
            attributes.update(parameter_attributes(_keys.FLOW_RUN_PARAMETER_PREFIX, parameters))
        span = tracer().start_span(
            self._span_name, parent, kind=SpanKind.INTERNAL, attributes=attributes, links=links
        )
        run_context = FlowRunContext(
            flow_run=record,
            flow=self,
            parameters=record.parameters,
            span=span,
            task_runner=self.task_runner.duplicate(),
            log_prints=self._inherited_log_prints(parent),
        )
        entries = {
            _keys.FLOW_RUN_ID: run_id,
            _keys.FLOW_NAME: self.name,
        }
        if is_valid_name(record.name):
            entries[_keys.FLOW_RUN_NAME] = record.name
        if deployment is not None:
            entries[_keys.DEPLOYMENT_ID] = deployment.id
            if deployment.name is not None:
                entries[_keys.DEPLOYMENT_NAME] = deployment.name
        context = with_flow_run(set_span_in_context(span, parent), run_context, entries)
        return _FlowScope(run_context, context)

    def _inherited_log_prints(self, parent: Context) -> bool:
        if self.log_prints is not None:
            return self.log_prints
        enclosing = get_value(TASK_RUN_CONTEXT, parent) or FlowRunContext.get()
        return isinstance(enclosing, (FlowRunContext, TaskRunContext)) and enclosing.log_prints


# The decorator's keywords repeat ``Flow.__init__``'s (and the overload's) so each signature is
# explicit for type checkers and ``help()``; ``with_options`` reads them from ``Flow.__init__``.
@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...
@overload
def flow(
    *,
    name: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    version: str | None = None,
    tags: Sequence[str] = (),
    retries: int = 0,
    retry_delay_seconds: float | Sequence[float] = 0,
    log_prints: bool | None = None,
    task_runner: TaskRunner | None = None,
    record_parameters: bool = True,
    description: str | None = None,
    on_completion: Hooks = None,
    on_failure: Hooks = None,
    on_cancellation: Hooks = None,
    on_crashed: Hooks = None,
    on_running: Hooks = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...
def flow(
    __fn: Callable[P, R] | None = None,
    *,
    name: str | None = None,
    flow_run_name: str | Callable[[], str] | None = None,
    version: str | None = None,
    tags: Sequence[str] = (),
    retries: int = 0,
    retry_delay_seconds: float | Sequence[float] = 0,
    log_prints: bool | None = None,
    task_runner: TaskRunner | None = None,
    record_parameters: bool = True,
    description: str | None = None,
    on_completion: Hooks = None,
    on_failure: Hooks = None,
    on_cancellation: Hooks = None,
    on_crashed: Hooks = None,
    on_running: Hooks = None,
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Make a function a flow: each call is a flow run, traced as the span ``flow <name>``.

    Works bare (``@flow``) or with options (``@flow(retries=2)``), on sync and async functions.
    ``flow_run_name`` is a ``str.format`` template over the parameters, or a callable taking none.
    ``record_parameters=False`` keeps this flow's parameters off its span. ``on_completion``,
    ``on_failure``, ``on_cancellation``, ``on_crashed`` and ``on_running`` take lists of state hooks,
    each called as ``hook(flow, flow_run, state)``.
    """

    def decorate(fn: Callable[P, R]) -> Flow[P, R]:
        return Flow(
            fn,
            name=name,
            flow_run_name=flow_run_name,
            version=version,
            tags=tags,
            retries=retries,
            retry_delay_seconds=retry_delay_seconds,
            log_prints=log_prints,
            task_runner=task_runner,
            record_parameters=record_parameters,
            description=description,
            on_completion=on_completion,
            on_failure=on_failure,
            on_cancellation=on_cancellation,
            on_crashed=on_crashed,
            on_running=on_running,
        )

    return decorate if __fn is None else decorate(__fn)


Flow.__module__ = "otel_runtime"
