"""The instrumentation scope of what otel_runtime emits: its name, the package's version, a schema URL.

The schema URL is that of the newest semantic-conventions version the installed
``opentelemetry-semantic-conventions`` package knows (``opentelemetry.semconv.schemas.Schemas``): the
standard attribute names otel_runtime writes (``code.*``, ``error.type``, ``exception.*``, ``cicd.*``)
are taken from that same package, so they follow that version.
"""

from __future__ import annotations

import functools
from typing import Final

from opentelemetry.semconv.schemas import Schemas

__all__ = ["SCHEMA_URL", "SCOPE_NAME", "scope_version"]

SCOPE_NAME: Final = "otel_runtime"
"""The tracer's scope name (the run events and run metrics use ``otel_runtime.*`` names of their own)."""


def _version_key(schema: Schemas) -> tuple[int, ...]:
    return tuple(int(part) for part in schema.value.rsplit("/", 1)[-1].split(".") if part.isdigit())


SCHEMA_URL: Final = max(Schemas, key=_version_key).value


@functools.cache
def scope_version() -> str:
    """The installed ``otel-runtime`` distribution's version (read once; ``0+unknown`` when not installed)."""
    from importlib import metadata  # email, zipfile, csv...: loaded by the first tracer, not the import

    try:
        return metadata.version("otel-runtime")
    except metadata.PackageNotFoundError:
        return "0+unknown"
