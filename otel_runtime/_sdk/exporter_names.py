"""Exporter names, resolved as the OpenTelemetry SDK resolves them: through its entry points.

The SDK's ``_configuration`` module (what ``opentelemetry-instrument`` runs) looks each name of
``OTEL_TRACES_EXPORTER`` / ``OTEL_LOGS_EXPORTER`` / ``OTEL_METRICS_EXPORTER`` up in the entry point group
``opentelemetry_traces_exporter`` / ``opentelemetry_logs_exporter`` / ``opentelemetry_metrics_exporter``
and calls the class it finds with no arguments. ``configure()`` does the same for every installed name
(``console``, ``zipkin``, ``zipkin_json``, a vendor's), and keeps its own meaning for a few:

- ``otlp``: OTLP over the protocol ``OTEL_EXPORTER_OTLP_[SIGNAL_]PROTOCOL`` chooses (``grpc`` by default);
- ``otlp_proto_grpc`` / ``otlp_proto_http``: OTLP over that protocol. ``configure()`` builds these
  itself, so its ``endpoint``, ``headers`` and ``export_timeout`` arguments apply to them;
- ``file``: the local OTLP/JSON lines file (traces and logs);
- ``none``: nothing.
"""

from __future__ import annotations

from typing import Any, Final, Literal

from opentelemetry.util._importlib_metadata import entry_points

__all__ = [
    "ENTRY_POINT_GROUPS",
    "OTLP_PROTOCOLS",
    "AnySignal",
    "check_exporter_names",
    "installed_exporters",
    "load_exporter",
]

AnySignal = Literal["traces", "logs", "metrics"]

ENTRY_POINT_GROUPS: Final[dict[AnySignal, str]] = {
    "traces": "opentelemetry_traces_exporter",
    "logs": "opentelemetry_logs_exporter",
    "metrics": "opentelemetry_metrics_exporter",
}
OTLP_PROTOCOLS: Final = {"otlp_proto_grpc": "grpc", "otlp_proto_http": "http/protobuf"}
"""The SDK's protocol-specific OTLP names, and the protocol each stands for."""

_OURS: Final[dict[AnySignal, frozenset[str]]] = {
    "traces": frozenset({"otlp", "file", "none", *OTLP_PROTOCOLS}),
    "logs": frozenset({"otlp", "file", "none", *OTLP_PROTOCOLS}),
    "metrics": frozenset({"otlp", "none", *OTLP_PROTOCOLS}),
}


def installed_exporters(signal: AnySignal, extra: frozenset[str] = frozenset()) -> frozenset[str]:
    """Every name ``signal`` can export with: ours and the installed entry points' (read each call)."""
    found = {entry.name for entry in entry_points(group=ENTRY_POINT_GROUPS[signal])}
    return frozenset(found) | _OURS[signal] | extra


def check_exporter_names(
    signal: AnySignal, raw: str, where: str, extra: frozenset[str] = frozenset()
) -> tuple[str, ...]:
    """The names of a comma list, lower-cased, de-duplicated, in order; ``ValueError`` naming the
    installed choices for a name that nobody provides. ``where`` says where the list came from."""
    names = tuple(dict.fromkeys(name.strip().lower() for name in raw.split(",") if name.strip()))
    known = installed_exporters(signal, extra)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(
            f"unknown {signal} exporter {', '.join(unknown)!r} (from {where}); "
            f"installed: {', '.join(sorted(known))} (an exporter package registers its name under the "
            f"{ENTRY_POINT_GROUPS[signal]!r} entry point)"
        )
    return names


def load_exporter(signal: AnySignal, name: str, base: type[Any] | tuple[type[Any], ...]) -> Any:
    """An instance of the exporter (or, for metrics, reader) class registered as ``name``, made with no
    arguments as the SDK makes it; ``ValueError`` if it cannot be loaded or is not a ``base``."""
    group = ENTRY_POINT_GROUPS[signal]
    found = list(entry_points(group=group, name=name))
    if not found:
        raise ValueError(f"no {signal} exporter {name!r} is installed (entry point group {group!r})")
    try:
        made = found[0].load()
    except Exception as error:
        raise ValueError(f"cannot load the {signal} exporter {name!r} ({found[0].value}): {error}") from None
    if not (isinstance(made, type) and issubclass(made, base)):
        bases = base if isinstance(base, tuple) else (base,)
        wanted = " or ".join(kind.__name__ for kind in bases)
        raise ValueError(f"the {signal} exporter {name!r} ({found[0].value}) is not a {wanted}")  # noqa: TRY004 - configure()'s one error
    return made()
