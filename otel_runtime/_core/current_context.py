"""The active OpenTelemetry context in one call: what every accessor read and log line starts with.

``opentelemetry.context.get_current()`` asks the runtime context, which asks its ``ContextVar``: two
calls more than needed, on the hottest path. With the default runtime context (``contextvars``, the
only one OpenTelemetry ships), :data:`current_context` is that ``ContextVar``'s own ``get``; with any
other, or if the SDK's private attribute moves, it is ``get_current`` itself.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Final

from opentelemetry import context as _otel_context
from opentelemetry.context import Context
from opentelemetry.context.contextvars_context import ContextVarsRuntimeContext

__all__ = ["current_context"]


def _reader() -> Callable[[], Context]:
    runtime = getattr(_otel_context, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime) is ContextVarsRuntimeContext and isinstance(variable, ContextVar):
        return variable.get
    return _otel_context.get_current


current_context: Final[Callable[[], Context]] = _reader()
"""The active context, as ``opentelemetry.context.get_current()`` returns it."""
