"""Where a root flow run's span goes: a caller's trace, the environment's, or a new one (OpenTelemetry API).

A *root* flow run starts with no enclosing flow run in this process. With an active span it is that
span's child, as any span is. Without one, two things can decide instead:

- the new-root switch (``propagation.attach(carrier, trust=False)``, ``propagation.new_root()``) put
  the untrusted caller's span context on the context, with no span and no baggage: the flow span
  starts a new trace and only *links* to the caller;
- the process was started with a trace context in its environment (``propagation.to_env()``:
  ``TRACEPARENT``, ``TRACESTATE``, ``BAGGAGE``, one variable per propagator field, upper-cased): when
  the context holds no baggage either, the flow span becomes a child of the parent process's span and
  the environment's baggage, run identity included, joins the context. The environment is read once,
  at the first root flow run, and then serves every root flow run of the process.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping

from opentelemetry import baggage, propagate, trace
from opentelemetry.context import Context, create_key, get_value, set_value
from opentelemetry.trace import INVALID_SPAN, Link, SpanContext

from otel_runtime._core.baggage_propagator import spec_textmap

__all__ = ["UNTRUSTED_CALLER", "env_name", "is_header_text", "read_env_carrier", "root_parent", "untrusted"]

UNTRUSTED_CALLER = create_key("otel_runtime.untrusted_caller")
"""Context key: the span context of a caller whose trace a root flow run must not join, only link to."""

_NOT_ALNUM = re.compile(r"[^0-9A-Za-z]")
_lock = threading.Lock()
_environment_carrier: dict[str, str] | None = None


def env_name(field: str) -> str:
    """The environment variable for the propagator field ``field``: ``traceparent`` -> ``TRACEPARENT``."""
    return _NOT_ALNUM.sub("_", field).upper()


def is_header_text(value: object) -> bool:
    """Whether ``value`` can be a header value: a string that encodes as UTF-8.

    ``os.environ`` holds bytes that are not UTF-8 as lone surrogates, and the propagators raise on
    those; such a value is dropped, never raised.
    """
    if not isinstance(value, str):
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def read_env_carrier(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The carrier held in ``environ`` (default ``os.environ``) for the global propagators' fields."""
    environ = os.environ if environ is None else environ
    carrier: dict[str, str] = {}
    for field in sorted(propagate.get_global_textmap().fields):
        value = environ.get(env_name(field))
        if value and is_header_text(value):
            carrier[field] = value
    return carrier


def _environment() -> dict[str, str]:
    global _environment_carrier  # noqa: PLW0603 - read once per process, then kept
    carrier = _environment_carrier
    if carrier is None:
        with _lock:
            if _environment_carrier is None:
                _environment_carrier = read_env_carrier()
            carrier = _environment_carrier
    return carrier


def untrusted(context: Context, caller: SpanContext | None) -> Context:
    """``context`` without its span and baggage, remembering ``caller`` (if valid) to link to."""
    context = baggage.clear(trace.set_span_in_context(INVALID_SPAN, context))
    if caller is not None and caller.is_valid:
        context = set_value(UNTRUSTED_CALLER, caller, context)
    return context


def root_parent(context: Context) -> tuple[Context, list[Link] | None]:
    """The parent context and links of a root flow run that starts in ``context``."""
    if trace.get_current_span(context).get_span_context().is_valid:
        return context, None
    caller = get_value(UNTRUSTED_CALLER, context)
    if isinstance(caller, SpanContext):
        return context, [Link(caller)]
    carrier = _environment()
    if not carrier or baggage.get_all(context):
        return context, None
    return spec_textmap().extract(carrier, context=context), None
