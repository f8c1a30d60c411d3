"""What a run is: plain records of deployments, flow runs and task runs (stdlib only)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = ["Deployment", "FlowRun", "TaskRun", "deployment_id_for", "new_run_id"]

_DEPLOYMENT_NAMESPACE = uuid.UUID("6f1c3a52-8b0e-5d43-9a8e-2c1f4b7d9e10")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


def deployment_id_for(name: str) -> str:
    """The stable id of a deployment that was given no explicit id: a UUID5 of its name."""
    return str(uuid.uuid5(_DEPLOYMENT_NAMESPACE, name))


def new_run_id() -> str:
    """A fresh run id (a random UUID, as Prefect's run ids are)."""
    return str(uuid.uuid4())


@dataclass(frozen=True, slots=True)
class Deployment:
    """A named, versioned entry point that starts flow runs.

    ``name`` is ``None`` only for a deployment a remote caller identified by id alone.
    """

    name: str | None
    id: str
    version: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)


@dataclass(slots=True)
class FlowRun:
    """One execution of a flow. ``run_count`` grows with each attempt."""

    id: str
    name: str
    flow_name: str
    flow_version: str | None
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    deployment: Deployment | None
    parent_flow_run_id: str | None
    parent_deployment_id: str | None
    root_flow_run_id: str
    start_time: datetime
    run_count: int = 0


@dataclass(slots=True)
class TaskRun:
    """One execution of a task. ``flow_run_id`` is ``None`` for a task called outside any flow."""

    id: str
    name: str
    task_name: str
    parameters: Mapping[str, Any]
    tags: tuple[str, ...]
    flow_run_id: str | None
    run_count: int = 0
