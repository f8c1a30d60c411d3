"""Opening a run, for flows and tasks alike: its id, name, span, log_prints and context.

:func:`open_run` does what every run does; the flow or task adds what only its kind has through
three methods of ``Runnable``: ``_generated_name``, ``_describe`` (its record, its own span attributes,
the context its span starts in and the span's links) and ``_enter`` (its run context, the context the
run executes in, its scope).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context, get_current
from opentelemetry.trace import Link, SpanKind

from otel_runtime._base import keys as _keys
from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import settings
from otel_runtime._core.identity import FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._core.models import new_run_id
from otel_runtime._core.parameters import parameter_attributes
from otel_runtime._core.tracing import tracer
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope
    from otel_runtime._engine.runs import Runnable

__all__ = ["Described", "open_run", "run_name"]

Described = tuple[Any, Context, "list[Link] | None"]
"""What ``_describe`` returns: the run's record, the context its span starts in, the span's links."""


def run_name(
    owner: Runnable[..., Any], template: str | Callable[[], str], parameters: dict[str, Any], run_id: str
) -> str:
    """The run's name from its ``flow_run_name`` / ``task_run_name`` ``template``, or a generated one
    (with one warning per flow or task) when the template fails."""
    try:
        return template() if callable(template) else template.format(**parameters)
    except Exception:
        kind = owner.kind
        what = f"{kind.name_option} of {kind.label.lower()} {owner.name!r}"
        warn_once(f"{kind.name_option}:{owner.name}", f"{what} failed; using a generated name", exc_info=True)
        return owner._generated_name(run_id)


def open_run(owner: Runnable[..., Any], parameters: dict[str, Any], run_id: str | None) -> RunScope:
    """Start a run of ``owner``: its span (``run_count`` 1 until ``RunScope.close`` says otherwise) and
    the scope it executes in, a child of the current context."""
    current = get_current()
    flow_context = current.get(FLOW_RUN_CONTEXT)
    if not isinstance(flow_context, FlowRunContext):
        flow_context = None
    kind = owner.kind
    run_id = run_id or new_run_id()
    template: str | Callable[[], str] | None = getattr(owner, kind.name_option)
    name = (
        owner._generated_name(run_id) if template is None else run_name(owner, template, parameters, run_id)
    )
    attributes: dict[str, Any] = {
        _keys.RUN_TYPE: kind.run_type,
        kind.name_key: owner.name,
        kind.run_id_key: run_id,
        kind.run_name_key: name,
        **owner._start_attributes,
    }
    record, parent, links = owner._describe(current, flow_context, parameters, run_id, name, attributes)
    if record.tags:
        attributes[kind.tags_key] = record.tags
    if parameters and owner.record_parameters and settings.record_parameters:
        attributes.update(parameter_attributes(kind.parameter_prefix, parameters))
    span = tracer().start_span(
        owner._span_name, parent, kind=SpanKind.INTERNAL, attributes=attributes, links=links
    )
    log_prints = owner.log_prints
    if log_prints is None:  # inherited from the enclosing task run, else the enclosing flow run
        enclosing = current.get(TASK_RUN_CONTEXT)
        if not isinstance(enclosing, TaskRunContext):
            enclosing = flow_context
        log_prints = enclosing is not None and enclosing.log_prints
    return owner._enter(span, parent, record, log_prints)
