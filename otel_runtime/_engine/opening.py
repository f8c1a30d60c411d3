"""Opening a run, for flows and tasks alike: its id, name, span, log_prints and context.

:func:`open_run` does what every run does; the flow or task adds what only its kind has through
three methods of ``Runnable``: ``_generated_name``, ``_describe`` (its record, its span attributes, the
context its span starts in and the span's links) and ``_enter`` (its run context, the context the
run executes in, its scope).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from opentelemetry.context import Context, get_current
from opentelemetry.trace import Link, SpanKind

from otel_runtime._base import keys as _keys
from otel_runtime._base.settings import settings
from otel_runtime._core.identity import EARLIER_DEATHS, FLOW_RUN_CONTEXT, TASK_RUN_CONTEXT
from otel_runtime._core.models import new_run_id
from otel_runtime._core.parameters import parameter_attributes
from otel_runtime._core.tracing import tracer
from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.run_names import NameTemplate, called_name, formatted_name

if TYPE_CHECKING:
    from otel_runtime._engine.run_scope import RunScope
    from otel_runtime._engine.runs import Runnable

__all__ = ["Described", "open_run"]

Described = tuple[Any, "dict[str, Any]", Context, "list[Link] | None"]
"""What ``_describe`` returns: the run's record, its span attributes (a fresh dict, in span order, the
run's id and name in it), the context its span starts in, the span's links."""


def open_run(owner: Runnable[..., Any], parameters: dict[str, Any], run_id: str | None) -> RunScope:
    """Start a run of ``owner``: its span (``run_count`` 1 until ``RunScope.close`` says otherwise) and
    the scope it executes in, a child of the current context."""
    current = get_current()
    flow_context = current.get(FLOW_RUN_CONTEXT)
    if not isinstance(flow_context, FlowRunContext):
        flow_context = None
    kind = owner.kind
    given = run_id is not None  # a submitted run's, or a remote attempt's: only those may have died before
    run_id = run_id or new_run_id()
    template: NameTemplate | None = getattr(owner, kind.name_option)
    if template is None:
        name = owner._generated_name(run_id)
    elif callable(template):
        name = ""  # named below, once its record exists: the callable may read it through ``runtime``
    else:
        name = formatted_name(owner, template, parameters, run_id)
    record, attributes, parent, links = owner._describe(current, flow_context, parameters, run_id, name)
    if callable(template):
        record.name = attributes[kind.run_name_key] = called_name(owner, template, parameters, record, parent)
    if record.tags:
        attributes[kind.tags_key] = record.tags
    if parameters and owner.record_parameters and settings.record_parameters:
        parameter_attributes(kind.parameter_prefix, parameters, attributes)
    span = tracer().start_span(
        owner._span_name, parent, kind=SpanKind.INTERNAL, attributes=attributes, links=links
    )
    if given:
        deaths: Any = current.get(EARLIER_DEATHS)
        if deaths is not None and deaths[0] == run_id:  # a remote attempt after its earlier workers died
            _record_deaths(span, deaths[1])
    log_prints = owner.log_prints
    if log_prints is None:  # inherited from the enclosing task run, else the enclosing flow run
        enclosing = current.get(TASK_RUN_CONTEXT)
        if not isinstance(enclosing, TaskRunContext):
            enclosing = flow_context
        log_prints = enclosing is not None and enclosing.log_prints
    return owner._enter(span, parent, record, log_prints)


def _record_deaths(span: Any, workers: tuple[str, ...]) -> None:
    """One ``worker.died`` event per dead worker of the earlier attempts, and the attempt count."""
    span.set_attribute(_keys.TASK_RUN_ATTEMPTS, len(workers) + 1)
    for address in workers:
        span.add_event(_keys.WORKER_DIED_EVENT, {_keys.WORKER_ADDRESS: address})
