"""Process-wide choices made by ``configure()``, read where they apply (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT_MILLIS", "Settings", "settings"]

DEFAULT_SHUTDOWN_TIMEOUT_MILLIS: Final = 5_000
"""How long a shutdown of the export pipelines may take (at process exit, or one pipeline's own), when
neither ``export_timeout`` nor ``OTEL_EXPORTER_OTLP_TIMEOUT`` says otherwise."""


@dataclass(slots=True)
class Settings:
    """``record_parameters``: whether runs record their parameters as span attributes (read on the hot
    path); ``shutdown_timeout_millis``: the bound on shutting the exporters down at process exit."""

    record_parameters: bool = True
    shutdown_timeout_millis: float = DEFAULT_SHUTDOWN_TIMEOUT_MILLIS
    semconv_cicd: bool = False
    """Whether run spans also carry the CI/CD conventions (``OTEL_RUNTIME_SEMCONV=cicd``); read only as a
    run ends in a state other than ``Completed`` (``run_states.close_state``)."""


settings = Settings()
