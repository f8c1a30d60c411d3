"""get_run_context, FlowRunContext.get, TaskRunContext.get and MissingContextError."""

from __future__ import annotations

import pickle

import pytest

from otel_runtime import flow, task
from otel_runtime.context import FlowRunContext, MissingContextError, TaskRunContext, get_run_context


def test_outside_a_run_get_run_context_raises_missing_context_error() -> None:
    """With no run active, get_run_context raises MissingContextError, a RuntimeError."""
    with pytest.raises(MissingContextError):
        get_run_context()
    assert issubclass(MissingContextError, RuntimeError)


def test_get_never_raises_and_returns_none_outside_a_run() -> None:
    """FlowRunContext.get() and TaskRunContext.get() return None outside a run."""
    assert FlowRunContext.get() is None
    assert TaskRunContext.get() is None


def test_in_a_task_the_task_context_wins_and_exposes_the_run_objects() -> None:
    """Inside a task run get_run_context returns the task context, with task, task run, parameters, span."""
    seen = {}

    @task
    def inner(a: int) -> None:
        seen["context"] = get_run_context()
        seen["flow"] = FlowRunContext.get()

    @flow
    def outer() -> None:
        seen["flow_context"] = get_run_context()
        inner(5)

    outer()
    context = seen["context"]
    assert isinstance(context, TaskRunContext)
    assert context.task is inner
    assert context.parameters == {"a": 5}
    assert context.task_run.task_name == "inner"
    assert context.span.get_span_context().is_valid
    flow_context = seen["flow_context"]
    assert isinstance(flow_context, FlowRunContext) and flow_context.flow is outer
    assert seen["flow"] is flow_context


def test_in_a_subflow_called_from_a_task_the_subflow_context_is_returned() -> None:
    """A subflow started inside a task: get_run_context is the subflow's flow run context."""
    seen = {}

    @flow
    def sub() -> None:
        seen["context"] = get_run_context()
        seen["task"] = TaskRunContext.get()

    @task
    def launcher() -> None:
        sub()

    @flow
    def top() -> None:
        launcher()

    top()
    assert isinstance(seen["context"], FlowRunContext)
    assert seen["context"].flow is sub
    assert seen["task"] is None


def test_contexts_refuse_to_be_pickled() -> None:
    """Run contexts never travel to other processes: pickling one is a clear TypeError."""
    seen = {}

    @flow
    def holder() -> None:
        seen["context"] = get_run_context()

    holder()
    with pytest.raises(TypeError, match="baggage"):
        pickle.dumps(seen["context"])
