"""The run context objects the engine creates: the active flow run or task run in this process.

They are stored under private OpenTelemetry context keys (``_core.identity``) and refuse pickling: a
remote worker learns the run ids from baggage instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from opentelemetry.trace import Span

from otel_runtime._core.current_context import current_context
from otel_runtime._core.identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._core.models import FlowRun, TaskRun

if TYPE_CHECKING:
    from otel_runtime._engine.flows import Flow
    from otel_runtime._engine.task_runners import TaskRunner
    from otel_runtime._engine.tasks import Task

__all__ = ["FlowRunContext", "TaskRunContext"]


def _refuse_pickling(self: object) -> NoReturn:
    raise TypeError(
        f"{type(self).__name__} is not serialized to other processes; the run identity travels in "
        "baggage (otel_runtime.propagation.inject)"
    )


# The two contexts share a shape (record, callable, parameters, span, log_prints, get): two classes on
# purpose, since user code tells them apart with isinstance, as it does with Prefect's.
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
        value = current_context().get(FLOW_RUN_CONTEXT)
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
        value = current_context().get(TASK_RUN_CONTEXT)
        return value if isinstance(value, TaskRunContext) else None

    __reduce__ = _refuse_pickling


FlowRunContext.__module__ = TaskRunContext.__module__ = "otel_runtime.context"
