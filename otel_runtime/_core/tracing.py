"""The tracer our runs use, from whichever tracer provider is global at the time (OpenTelemetry API)."""

from __future__ import annotations

from opentelemetry import trace

__all__ = ["tracer"]

_INSTRUMENTATION_SCOPE = "otel_runtime"
_cache: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """The ``otel_runtime`` tracer of the current global provider, rebuilt only when the provider changes."""
    global _cache  # noqa: PLW0603 - one cached pair, replaced whole
    provider = trace.get_tracer_provider()
    cached = _cache
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer(_INSTRUMENTATION_SCOPE))
        _cache = cached
    return cached[1]
