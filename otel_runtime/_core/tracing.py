"""The tracer our runs use, from whichever tracer provider is global at the time (OpenTelemetry API)."""

from __future__ import annotations

from opentelemetry import trace

from otel_runtime._core.scope import SCHEMA_URL, SCOPE_NAME, scope_version

__all__ = ["tracer"]
_cache: tuple[trace.TracerProvider, trace.Tracer] | None = None


def tracer() -> trace.Tracer:
    """The ``otel_runtime`` tracer of the current global provider (with the package version and the
    semantic conventions' schema URL), rebuilt only when the provider changes."""
    global _cache  # noqa: PLW0603 - one cached pair, replaced whole
    provider = trace.get_tracer_provider()
    cached = _cache
    if cached is None or cached[0] is not provider:
        cached = (provider, provider.get_tracer(SCOPE_NAME, scope_version(), schema_url=SCHEMA_URL))
        _cache = cached
    return cached[1]
