"""Which deployment a flow run belongs to, and the ``deployment(...)`` / ``tags(...)`` context managers."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry.context import Context, get_value, set_value

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._core.identity import (
    DEPLOYMENT,
    FLOW_RUN_CONTEXT,
    TAGS,
    inbound,
    is_valid_id,
    is_valid_name,
)
from otel_runtime._core.models import Deployment, deployment_id_for
from otel_runtime.environment_variables import (
    OTEL_RUNTIME_DEPLOYMENT_ID,
    OTEL_RUNTIME_DEPLOYMENT_NAME,
    OTEL_RUNTIME_DEPLOYMENT_VERSION,
)

__all__ = [
    "active_tags",
    "deployment",
    "deployment_attributes",
    "environment_deployment",
    "remote_deployment",
    "resolve_deployment",
    "run_tags",
    "tags",
]


def _new_deployment(
    name: str, id: str | None, version: str | None, parameters: Mapping[str, Any] | None
) -> Deployment:
    if not is_valid_name(name):
        raise ValueError(f"deployment name must be printable text of 1-256 characters, got {name!r}")
    if id is not None and not is_valid_id(id):
        raise ValueError(f"deployment id must be 1-128 of [0-9A-Za-z._:-], got {id!r}")
    return Deployment(
        name=name,
        id=id or deployment_id_for(name),
        version=version,
        parameters=MappingProxyType(dict(parameters or {})),
    )


@contextmanager
def deployment(
    name: str,
    id: str | None = None,
    version: str | None = None,
    parameters: Mapping[str, Any] | None = None,
) -> Iterator[Deployment]:
    """Run the flows started in this block as runs of the deployment ``name``.

    Without ``id``, the id is a stable UUID5 derived from the name. Raises ``ValueError`` for a name
    or id that could not travel in baggage.
    """
    active = _new_deployment(name, id, version, parameters)
    token = otel_context.attach(set_value(DEPLOYMENT, active))
    try:
        yield active
    finally:
        otel_context.detach(token)


@contextmanager
def tags(*names: str) -> Iterator[tuple[str, ...]]:
    """Add ``names`` to the tags of every flow run and task run started in this block."""
    merged = tuple(dict.fromkeys((*active_tags(), *names)))
    token = otel_context.attach(set_value(TAGS, merged))
    try:
        yield merged
    finally:
        otel_context.detach(token)


def active_tags(context: Context | None = None) -> tuple[str, ...]:
    """Tags added by enclosing ``with tags(...)`` blocks."""
    value = get_value(TAGS, context)
    return value if isinstance(value, tuple) else ()


def run_tags(own: tuple[str, ...], context: Context) -> tuple[str, ...]:
    """A run's tags: its decorator's, then those of enclosing ``with tags(...)`` blocks, each once."""
    active = active_tags(context)
    return tuple(dict.fromkeys((*own, *active))) if active else own


@functools.cache
def environment_deployment() -> Deployment | None:
    """The deployment named by ``OTEL_RUNTIME_DEPLOYMENT_*``, read once per process.

    A name or id that could not travel in baggage is ignored with one warning: flow runs still run
    traced, without the environment's deployment.
    """
    name = os.environ.get(OTEL_RUNTIME_DEPLOYMENT_NAME)
    if not name:
        return None
    try:
        return _new_deployment(
            name,
            os.environ.get(OTEL_RUNTIME_DEPLOYMENT_ID) or None,
            os.environ.get(OTEL_RUNTIME_DEPLOYMENT_VERSION) or None,
            None,
        )
    except ValueError as error:
        warn_once(
            "environment-deployment",
            f"otel_runtime ignores the deployment set by {OTEL_RUNTIME_DEPLOYMENT_NAME} / "
            f"{OTEL_RUNTIME_DEPLOYMENT_ID}: {error}",
        )
        return None


def resolve_deployment(context: Context) -> Deployment | None:
    """The deployment of a flow run starting in ``context``.

    In order: ``with deployment(...)`` (the CLI uses it too), the process environment, the enclosing
    flow run in this process, then inbound baggage from a remote caller.
    """
    explicit = get_value(DEPLOYMENT, context)
    if isinstance(explicit, Deployment):
        return explicit
    from_environment = environment_deployment()
    if from_environment is not None:
        return from_environment
    parent = get_value(FLOW_RUN_CONTEXT, context)
    if parent is not None:
        inherited: Deployment | None = parent.flow_run.deployment  # type: ignore[attr-defined]
        return inherited
    return remote_deployment(context)


def remote_deployment(context: Context | None = None) -> Deployment | None:
    """The deployment a remote caller sent in baggage, if its values are well formed."""
    name = inbound(_keys.DEPLOYMENT_NAME, context)
    id_ = inbound(_keys.DEPLOYMENT_ID, context)
    if name is None and id_ is None:
        return None
    return Deployment(name=name, id=id_ or deployment_id_for(name or ""))


_NONE: Mapping[str, str] = MappingProxyType({})
_last_attributes: tuple[Deployment, Mapping[str, str]] | None = None


def deployment_attributes(deployment: Deployment | None) -> Mapping[str, str]:
    """The ``deployment.*`` span attributes of a run that belongs to ``deployment`` (not to be changed:
    the last deployment's are kept, as every run of a flow run asks for the same)."""
    global _last_attributes  # noqa: PLW0603 - one cached pair, replaced whole
    if deployment is None:
        return _NONE
    last = _last_attributes
    if last is not None and last[0] is deployment:
        return last[1]
    attributes = {_keys.DEPLOYMENT_ID: deployment.id}
    if deployment.name is not None:
        attributes[_keys.DEPLOYMENT_NAME] = deployment.name
    if deployment.version is not None:
        attributes[_keys.DEPLOYMENT_VERSION] = deployment.version
    _last_attributes = (deployment, attributes)
    return attributes
