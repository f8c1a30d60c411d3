"""``@flow``: each call of the decorated function is a flow run and an OpenTelemetry span."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from types import MappingProxyType
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar, overload

from opentelemetry import context as otel_context
from opentelemetry.context import Context
from opentelemetry.trace import Span

from otel_runtime._base import keys as _keys
from otel_runtime._core import names as _names
from otel_runtime._core.deployments import deployment_attributes, resolve_deployment, run_tags
from otel_runtime._core.identity import TAGS, inbound, is_valid_name, with_flow_run
from otel_runtime._core.models import Deployment, FlowRun
from otel_runtime._core.trace_join import root_parent
from otel_runtime._engine.exceptions import ParameterTypeError
from otel_runtime._engine.hooks import FlowHookLists, Hooks
from otel_runtime._engine.run_context import FlowRunContext
from otel_runtime._engine.run_kinds import FLOW
from otel_runtime._engine.run_log import engine_logger, log_line
from otel_runtime._engine.runs import Described, Runnable, RunScope
from otel_runtime._engine.task_runners import TaskRunner, ThreadPoolTaskRunner
from otel_runtime._engine.timeouts import FlowRunTimeoutError
from otel_runtime._engine.validation import ParameterValidator, parameter_validator

__all__ = ["Flow", "flow"]

P = ParamSpec("P")
R = TypeVar("R")


class _FlowScope(RunScope):
    """A flow run also waits for the task runs it submitted, then stops its task runner."""

    __slots__ = ("run_context",)

    def __init__(self, run_context: FlowRunContext, context: Context) -> None:
        super().__init__(run_context.span, context, run_context.flow_run, FLOW)
        self.run_context = run_context

    def close(self, exc: BaseException | None) -> None:
        cancelled = exc is not None and not isinstance(exc, Exception)
        try:
            self.run_context.task_runner.shutdown(wait=not cancelled)
        finally:
            super().close(exc)


class Flow(FlowHookLists, Runnable[P, R], Generic[P, R]):
    """A function whose every call is a flow run. Calling it runs it and returns its result."""

    kind = FLOW
    _timeout_error = FlowRunTimeoutError
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
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
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
            timeout_seconds=timeout_seconds,
        )
        self.flow_run_name = flow_run_name
        self.version = version
        self.tags = tuple(dict.fromkeys(tags))
        self.task_runner = task_runner if task_runner is not None else ThreadPoolTaskRunner()
        self.should_validate_parameters = validate_parameters
        self._validation: tuple[Any, ParameterValidator | None] | None = None
        self._in_deployment: tuple[Any, ...] | None = None
        """``((deployment, version, own tags, active tags), span attributes, run tags)`` of its latest run
        (``_describe``)."""

    def _generated_name(self, run_id: str) -> str:
        return _names.flow_run_name()

    # Parameter validation (``validation``): before a run's function runs, its span already started.
    def validate_parameters(self, parameters: dict[str, Any]) -> dict[str, Any]:
        """Prefect's ``Flow.validate_parameters``: ``parameters`` cast to the flow's type hints, or
        ``ParameterTypeError``."""
        validator = self._validator()
        return parameters if validator is None else validator.validate(parameters)

    def _validator(self) -> ParameterValidator | None:
        cached = self._validation
        if cached is None or cached[0] is not self.fn:  # built on the first run (pydantic loads then)
            cached = self._validation = (self.fn, parameter_validator(self.fn, self.name))
        return cached[1]

    def _checked(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], run_id: str | None, control: Any
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The call's arguments validated; a run refused (its span failed) when they do not fit."""
        if not self.should_validate_parameters or not self._signature.parameters:
            return args, kwargs
        validator = self._validator()
        if validator is None:
            return args, kwargs
        try:
            return validator.arguments(validator.validate(self.bind(args, kwargs)))
        except ParameterTypeError as invalid:
            self._refuse(args, kwargs, run_id, control, invalid)

    def _refuse(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None,
        control: Any,
        invalid: Exception,
    ) -> NoReturn:
        """A run whose parameters failed validation: its span, with the problems and the exception, and
        Prefect's log line; the function does not run. Raises ``invalid``."""
        scope = self._start(args, kwargs, run_id, control)
        if scope is not None:
            token = otel_context.attach(scope.context)
            try:
                log_line(
                    engine_logger(), "error", f"Validation of flow parameters failed with error: {invalid}"
                )
                problems = str(invalid).split("\n - ")[1:]
                scope.span.add_event(_keys.PARAMETERS_INVALID_EVENT, {_keys.PARAMETERS_ERRORS: problems})
                scope.fail(invalid)
            finally:
                otel_context.detach(token)
                scope.close(invalid)
        raise invalid

    def _run_sync(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None = None,
        control: Any = None,
    ) -> R:
        args, kwargs = self._checked(args, kwargs, run_id, control)
        return super()._run_sync(args, kwargs, run_id, control)

    async def _run_async(
        self,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        run_id: str | None = None,
        control: Any = None,
    ) -> Any:
        args, kwargs = self._checked(args, kwargs, run_id, control)
        return await super()._run_async(args, kwargs, run_id, control)

    # ``Runnable._describe``, called by ``opening.open_run`` with the same arguments as a task's.
    def _describe(
        self,
        parent: Context,
        flow_context: FlowRunContext | None,
        parameters: dict[str, Any],
        run_id: str,
        name: str,
    ) -> Described:
        links = None
        if flow_context is None:
            parent, links = root_parent(parent)
        deployment = resolve_deployment(parent)
        if flow_context is not None:
            parent_record = flow_context.flow_run
            parent_id: str | None = parent_record.id
            root_id = parent_record.root_flow_run_id
            parent_deployment = parent_record.deployment.id if parent_record.deployment else None
        else:
            parent_id = inbound(_keys.FLOW_RUN_ID, parent)
            root_id = parent_id or run_id
            parent_deployment = inbound(_keys.DEPLOYMENT_ID, parent) if parent_id else None
        # What every run of this flow in this deployment (and ``with tags(...)`` block) shares, merged
        # once, not per run: its span attributes but the run's own, its tags.
        # (A tuple compares its items by identity first: the same objects cost no ``__eq__``.)
        version = self.version
        key = (deployment, version, self.tags, parent.get(TAGS))
        shared = self._in_deployment
        if shared is None or shared[0] != key:
            attributes, tags = self._attributes(deployment, version), run_tags(self.tags, parent)
            shared = self._in_deployment = (key, attributes, tags)
        # Positional, in field order (id, name, flow_name, flow_version, parameters, tags, deployment,
        # parent_flow_run_id, parent_deployment_id, root_flow_run_id, start_time): keywords cost.
        record = FlowRun(
            run_id,
            name,
            self.name,
            version,
            MappingProxyType(parameters),
            shared[2],
            deployment,
            parent_id,
            parent_deployment,
            root_id,
            datetime.now(timezone.utc),
        )
        attributes = shared[1].copy()
        attributes[_keys.FLOW_RUN_ID] = run_id
        attributes[_keys.FLOW_RUN_NAME] = name
        attributes[_keys.FLOW_RUN_ROOT_ID] = root_id
        if parent_id is not None:
            attributes[_keys.FLOW_RUN_PARENT_ID] = parent_id
        return record, attributes, parent, links

    def _attributes(self, deployment: Deployment | None, version: str | None) -> dict[str, Any]:
        """The span attributes of a run of this flow in ``deployment``, in span order (its id, name and
        root id still empty; its parent id, when it has one, comes last)."""
        attributes = {**self._attribute_template, _keys.FLOW_RUN_ROOT_ID: ""}
        attributes.update(deployment_attributes(deployment))
        if version is not None:
            attributes[_keys.FLOW_VERSION] = version
        return attributes

    def _enter(self, span: Span, parent: Context, record: FlowRun, log_prints: bool) -> RunScope:
        # Positional (flow_run, flow, parameters, span, task_runner, log_prints), as ``FlowRun`` above.
        run_context = FlowRunContext(
            record, self, record.parameters, span, self.task_runner.duplicate(), log_prints
        )
        entries = {_keys.FLOW_RUN_ID: record.id, _keys.FLOW_NAME: self.name}
        if is_valid_name(record.name):
            entries[_keys.FLOW_RUN_NAME] = record.name
        deployment = record.deployment
        if deployment is not None:
            entries[_keys.DEPLOYMENT_ID] = deployment.id
            if deployment.name is not None:
                entries[_keys.DEPLOYMENT_NAME] = deployment.name
        context = with_flow_run(parent, span, run_context, entries)
        return _FlowScope(run_context, context)


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
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
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
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
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
            timeout_seconds=timeout_seconds,
            validate_parameters=validate_parameters,
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
