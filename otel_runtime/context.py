"""The run contexts: what the active flow run or task run is, for code running inside it.

``get_run_context()`` answers "which run am I in?" in the process that started the run. Contexts are
never serialized: a remote worker learns the run ids from baggage instead (see ``otel_runtime.runtime``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from opentelemetry.context import get_value
from opentelemetry.trace import Span

from otel_runtime._identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._models import FlowRun, TaskRun

if TYPE_CHECKING:
    from otel_runtime._flows import Flow
    from otel_runtime._tasks import Task
    from otel_runtime.task_runners import TaskRunner

__all__ = ["FlowRunContext", "MissingContextError", "TaskRunContext", "get_run_context"]


class MissingContextError(RuntimeError):
    """Raised by ``get_run_context()`` and ``get_run_logger()`` outside any flow run or task run."""


def _refuse_pickling(self: object) -> NoReturn:
    raise TypeError(
        f"{type(self).__name__} is not serialized to other processes; the run identity travels in "
        "baggage (otel_runtime.propagation.inject)"
    )


@dataclass(eq=False, slots=True)
class FlowRunContext:
    """The active flow run: its record, the flow, its bound parameters, its span and task runner."""

    flow_run: FlowRun
    flow: Flow[..., Any]
    parameters: Mapping[str, Any]
    span: Span
    task_runner: TaskRunner
    log_prints: bool

    @classmethod
    def get(cls) -> FlowRunContext | None:
        """The active flow run context, or ``None``. Never raises."""
        value = get_value(FLOW_RUN_CONTEXT)
        return value if isinstance(value, FlowRunContext) else None

    __reduce__ = _refuse_pickling


@dataclass(eq=False, slots=True)
class TaskRunContext:
    """The active task run: its record, the task, its bound parameters and its span."""

    task_run: TaskRun
    task: Task[..., Any]
    parameters: Mapping[str, Any]
    span: Span
    log_prints: bool

    @classmethod
    def get(cls) -> TaskRunContext | None:
        """The active task run context, or ``None``. Never raises."""
        value = get_value(TASK_RUN_CONTEXT)
        return value if isinstance(value, TaskRunContext) else None

    __reduce__ = _refuse_pickling


def get_run_context() -> FlowRunContext | TaskRunContext:
    """The task run context if a task run is active, else the flow run context.

    Inside a subflow called from a task this is the subflow's flow run context: entering a flow run
    leaves the task run. Raises :class:`MissingContextError` outside any run.
    """
    task_run = TaskRunContext.get()
    if task_run is not None:
        return task_run
    flow_run = FlowRunContext.get()
    if flow_run is not None:
        return flow_run
    raise MissingContextError("No run context is active: call this inside a @flow or @task run.")
