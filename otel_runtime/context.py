"""The run contexts: what the active flow run or task run is, for code running inside it.

``get_run_context()`` answers "which run am I in?" in the process that started the run. Contexts are
never serialized: a remote worker learns the run ids from baggage instead (see ``otel_runtime.runtime``).
"""

from __future__ import annotations

from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext

__all__ = ["FlowRunContext", "MissingContextError", "TaskRunContext", "get_run_context"]


class MissingContextError(RuntimeError):
    """Raised by ``get_run_context()`` and ``get_run_logger()`` outside any flow run or task run."""


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
