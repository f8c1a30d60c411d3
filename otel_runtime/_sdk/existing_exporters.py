"""What a provider installed before ``configure()`` already exports to, so that nothing is exported twice.

``opentelemetry-instrument`` (the SDK's ``_configuration``) builds its providers from the same ``OTEL_*``
variables ``configure()`` reads, with one batch processor per exporter. An exporter of ours that goes
to a destination such a provider already exports to would send every span and log record a second
time; :func:`drop_duplicates` leaves it out. A destination is the exporter's class and its endpoint
(``_endpoint`` for the OTLP exporters, ``endpoint`` for Zipkin's; none for the console).

The SDK has no public way to list a provider's processors or a processor's exporter, so this reads the
attributes the SDK (1.39 to 1.45) keeps them in. Where it finds none (another SDK version, a processor
of another kind), it sees no duplicate, and ``configure()`` adds its exporters as before.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk.trace import TracerProvider

from otel_runtime._base.guard import internal_logger
from otel_runtime._sdk.slots import Slot

__all__ = ["destination_of", "drop_duplicates", "exporters_of"]

_ExporterT = TypeVar("_ExporterT")

Destination = tuple[type, str | None]


def _processors(provider: TracerProvider | LoggerProvider) -> Sequence[Any]:
    if isinstance(provider, TracerProvider):
        multi = getattr(provider, "_active_span_processor", None)
        return tuple(getattr(multi, "_span_processors", ()))
    multi = getattr(provider, "_multi_log_record_processor", None)
    return tuple(getattr(multi, "_log_record_processors", ()))


def _exporter_of(processor: Any) -> Any:
    """The exporter of a simple or batch processor of the SDK, else ``None``."""
    for holder in (processor, getattr(processor, "_batch_processor", None)):
        for name in ("span_exporter", "_exporter"):
            exporter = getattr(holder, name, None)
            if exporter is not None:
                return exporter
    return None


def exporters_of(provider: TracerProvider | LoggerProvider) -> Iterator[Any]:
    """The exporters of ``provider``'s own processors (not those ``configure()`` put in its slot)."""
    for processor in _processors(provider):
        if isinstance(processor, Slot):
            continue
        exporter = _exporter_of(processor)
        if exporter is not None:
            yield exporter


def destination_of(exporter: object) -> Destination:
    """Where ``exporter`` sends: its class (the SDK's, for ours built on one) and its endpoint, if any."""
    endpoint = getattr(exporter, "_endpoint", None) or getattr(exporter, "endpoint", None)
    kind = getattr(type(exporter), "exports_as", type(exporter))
    return kind, endpoint if isinstance(endpoint, str) else None


def drop_duplicates(
    provider: TracerProvider | LoggerProvider, built: Sequence[tuple[str, _ExporterT]]
) -> list[tuple[str, _ExporterT]]:
    """``built`` (name, exporter) without the exporters whose destination ``provider`` already exports
    to; those are shut down."""
    taken = {destination_of(exporter) for exporter in exporters_of(provider)}
    kept: list[tuple[str, _ExporterT]] = []
    for name, exporter in built:
        if destination_of(exporter) in taken:
            internal_logger.debug(
                "otel_runtime.configure(): the %s installed before already exports to %s; %r not added",
                type(provider).__name__,
                destination_of(exporter)[1] or type(exporter).__name__,
                name,
            )
            shutdown = getattr(exporter, "shutdown", None)
            if callable(shutdown):
                shutdown()
            continue
        kept.append((name, exporter))
    return kept
