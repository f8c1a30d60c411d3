"""What a run is: plain records of deployments, flow runs and task runs (stdlib only)."""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType
from typing import Any

__all__ = ["Deployment", "FlowRun", "TaskRun", "deployment_id_for", "new_run_id"]

_DEPLOYMENT_NAMESPACE = uuid.UUID("6f1c3a52-8b0e-5d43-9a8e-2c1f4b7d9e10")
_EMPTY: Mapping[str, Any] = MappingProxyType({})

_random = random.Random()  # seeded from os.urandom; private, so a user's random.seed() cannot repeat ids
if hasattr(os, "register_at_fork"):  # a forked worker must not draw the same ids as its parent
    os.register_at_fork(after_in_child=_random.seed)
_UUID4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))  # the version nibble and the two variant bits
_UUID4_SET = (0x4000 << 64) | (0x8000 << 48)  # version 4, variant RFC 4122


def deployment_id_for(name: str) -> str:
    """The stable id of a deployment that was given no explicit id: a UUID5 of its name."""
    return str(uuid.uuid5(_DEPLOYMENT_NAMESPACE, name))


def new_run_id() -> str:
    """A fresh run id: a random UUID (version 4), as Prefect's run ids are.

    Drawn from a private Mersenne Twister, as OpenTelemetry draws its trace and span ids, rather than
    ``uuid.uuid4()``: its ``os.urandom`` system call made it a tenth of a task run's overhead. Run ids
    must be unique, not secret.
    """
    raw = (_random.getrandbits(128) & _UUID4_CLEAR | _UUID4_SET).to_bytes(16, "big")
    # 8-4-4-4-12 hex digits; the middle three groups in one ``hex`` call (two bytes between dashes).
    return f"{raw[:4].hex()}-{raw[4:10].hex('-', 2)}-{raw[10:].hex()}"


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
