"""A run's name from its ``flow_run_name`` / ``task_run_name``: a ``str.format`` template over the
parameters, or a callable, called inside the run (``runtime.flow_run.parameters``,
``runtime.task_run.parameters``, ``.flow_name``, ``.task_name`` answer for the run being named), as
Prefect does. A callable with a ``parameters`` keyword gets the parameters too. A template that fails,
or a callable that returns something other than a string, gives a generated name and one warning per
flow or task.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context

from otel_runtime._base.guard import warn_once

if TYPE_CHECKING:
    from otel_runtime._engine.runs import Runnable

__all__ = ["NameTemplate", "called_name", "formatted_name"]

NameTemplate = str | Callable[..., str]
"""What ``flow_run_name=`` / ``task_run_name=`` take."""


def _failed(owner: Runnable[..., Any], run_id: str) -> str:
    kind = owner.kind
    what = f"{kind.name_option} of {kind.label.lower()} {owner.name!r}"
    warn_once(f"{kind.name_option}:{owner.name}", f"{what} failed; using a generated name", exc_info=True)
    return owner._generated_name(run_id)


def formatted_name(owner: Runnable[..., Any], template: str, parameters: dict[str, Any], run_id: str) -> str:
    """``template`` filled in with the run's parameters, or a generated name when that fails."""
    try:
        return template.format(**parameters)
    except Exception:
        return _failed(owner, run_id)


def _takes_parameters(template: Callable[..., Any]) -> bool:
    try:
        return "parameters" in inspect.signature(template).parameters
    except (TypeError, ValueError):
        return False


def called_name(
    owner: Runnable[..., Any],
    template: Callable[..., Any],
    parameters: dict[str, Any],
    record: Any,
    parent: Context,
) -> str:
    """What ``template`` returns, called in a context where ``record`` (not yet named) is the active run,
    or a generated name when it raises or returns no string."""
    provisional = owner._enter(trace.get_current_span(parent), parent, record, False)
    token = otel_context.attach(provisional.context)
    try:
        name = _string(
            owner,
            template,
            template(parameters=dict(parameters)) if _takes_parameters(template) else template(),
        )
    except Exception:
        return _failed(owner, record.id)
    finally:
        otel_context.detach(token)
    return name


def _string(owner: Runnable[..., Any], template: Callable[..., Any], name: object) -> str:
    """``name`` if it is a string, else Prefect's ``TypeError``."""
    if not isinstance(name, str):
        raise TypeError(
            f"Callable {template!r} for {owner.kind.name_option!r} returned type "
            f"{type(name).__name__} but a string is required."
        )
    return name
