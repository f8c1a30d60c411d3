"""The getters behind ``runtime.deployment``, ``runtime.flow_run`` and ``runtime.task_run``.

Each reads the active OpenTelemetry context: the run context object in the process that started the
run, else the validated baggage a remote caller sent. None does I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, Final

from opentelemetry import trace

from otel_runtime._base import keys as _keys
from otel_runtime._base.environ import live_reader
from otel_runtime._core.deployments import remote_deployment
from otel_runtime._core.identity import inbound
from otel_runtime._core.models import Deployment
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime.environment_variables import OTEL_RUNTIME_UI_URL

__all__ = ["DEPLOYMENT", "FLOW_RUN", "TASK_RUN"]

_ui_url_template = live_reader(OTEL_RUNTIME_UI_URL)


def _current_trace_id() -> str | None:
    span_context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(span_context.trace_id) if span_context.is_valid else None


def _ui_url(trace_id: str | None) -> str | None:
    template = _ui_url_template()
    return template.replace("{trace_id}", trace_id) if template and trace_id else None


# deployment
def _deployment_active() -> Deployment | None:
    run = FlowRunContext.get()
    return run.flow_run.deployment if run is not None else remote_deployment()


# id, name and version: ``_deployment_active`` written out in each, a call less on a hot path.
def _deployment_id() -> str | None:
    run = FlowRunContext.get()
    deployment = run.flow_run.deployment if run is not None else remote_deployment()
    return deployment.id if deployment is not None else None


def _deployment_name() -> str | None:
    run = FlowRunContext.get()
    deployment = run.flow_run.deployment if run is not None else remote_deployment()
    return deployment.name if deployment is not None else None


def _deployment_version() -> str | None:
    run = FlowRunContext.get()
    deployment = run.flow_run.deployment if run is not None else remote_deployment()
    return deployment.version if deployment is not None else None


def _deployment_parameters() -> dict[str, Any]:
    deployment = _deployment_active()
    return dict(deployment.parameters) if deployment is not None else {}


def _deployment_flow_run_id() -> str | None:
    run = FlowRunContext.get()
    if run is not None:
        return run.flow_run.id if run.flow_run.deployment is not None else None
    return inbound(_keys.FLOW_RUN_ID) if remote_deployment() is not None else None


DEPLOYMENT: Final[dict[str, Callable[[], Any]]] = {
    "id": _deployment_id,
    "name": _deployment_name,
    "version": _deployment_version,
    "parameters": _deployment_parameters,
    "flow_run_id": _deployment_flow_run_id,
}


# flow_run
def _flow_run_id() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.id if run is not None else inbound(_keys.FLOW_RUN_ID)


def _flow_run_name() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.name if run is not None else inbound(_keys.FLOW_RUN_NAME)


def _flow_run_flow_name() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.flow_name if run is not None else inbound(_keys.FLOW_NAME)


def _flow_run_flow_version() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.flow_version if run is not None else None


def _flow_run_parent_flow_run_id() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.parent_flow_run_id if run is not None else None


def _flow_run_parent_deployment_id() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.parent_deployment_id if run is not None else None


def _flow_run_root_flow_run_id() -> str | None:
    run = FlowRunContext.get()
    return run.flow_run.root_flow_run_id if run is not None else None


def _flow_run_tags() -> list[str]:
    run = FlowRunContext.get()
    return list(run.flow_run.tags) if run is not None else []


def _flow_run_parameters() -> dict[str, Any]:
    run = FlowRunContext.get()
    return dict(run.parameters) if run is not None else {}


def _flow_run_run_count() -> int:
    run = FlowRunContext.get()
    return run.flow_run.run_count if run is not None else 0


def _flow_run_scheduled_start_time() -> datetime:
    run = FlowRunContext.get()
    return run.flow_run.start_time if run is not None else datetime.now(timezone.utc)


def _flow_run_trace_id() -> str | None:
    return _current_trace_id() if _flow_run_id() is not None else None


def _flow_run_ui_url() -> str | None:
    return _ui_url(_flow_run_trace_id())


FLOW_RUN: Final[dict[str, Callable[[], Any]]] = {
    "id": _flow_run_id,
    "name": _flow_run_name,
    "flow_name": _flow_run_flow_name,
    "flow_version": _flow_run_flow_version,
    "parent_flow_run_id": _flow_run_parent_flow_run_id,
    "parent_deployment_id": _flow_run_parent_deployment_id,
    "root_flow_run_id": _flow_run_root_flow_run_id,
    "tags": _flow_run_tags,
    "parameters": _flow_run_parameters,
    "run_count": _flow_run_run_count,
    "scheduled_start_time": _flow_run_scheduled_start_time,
    "trace_id": _flow_run_trace_id,
    "ui_url": _flow_run_ui_url,
}


# task_run
def _task_run_id() -> str | None:
    run = TaskRunContext.get()
    return run.task_run.id if run is not None else inbound(_keys.TASK_RUN_ID)


def _task_run_name() -> str | None:
    run = TaskRunContext.get()
    return run.task_run.name if run is not None else None


def _task_run_task_name() -> str | None:
    run = TaskRunContext.get()
    return run.task_run.task_name if run is not None else None


def _task_run_tags() -> list[str]:
    run = TaskRunContext.get()
    return list(run.task_run.tags) if run is not None else []


def _task_run_parameters() -> dict[str, Any]:
    run = TaskRunContext.get()
    return dict(run.parameters) if run is not None else {}


def _task_run_run_count() -> int:
    run = TaskRunContext.get()
    return run.task_run.run_count if run is not None else 0


def _task_run_trace_id() -> str | None:
    return _current_trace_id() if _task_run_id() is not None else None


def _task_run_ui_url() -> str | None:
    return _ui_url(_task_run_trace_id())


TASK_RUN: Final[dict[str, Callable[[], Any]]] = {
    "id": _task_run_id,
    "name": _task_run_name,
    "task_name": _task_run_task_name,
    "tags": _task_run_tags,
    "parameters": _task_run_parameters,
    "run_count": _task_run_run_count,
    "trace_id": _task_run_trace_id,
    "ui_url": _task_run_ui_url,
}
