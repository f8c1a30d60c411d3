"""What ``configure()`` will set up: its keyword arguments over the ``OTEL_*`` variables, settled once."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from opentelemetry.environment_variables import OTEL_LOGS_EXPORTER, OTEL_TRACES_EXPORTER
from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
    OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
    OTEL_EXPORTER_OTLP_PROTOCOL,
    OTEL_EXPORTER_OTLP_TIMEOUT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    OTEL_SDK_DISABLED,
)
from opentelemetry.sdk.resources import SERVICE_NAME, Resource

from otel_runtime._base.environ import parse_bool, read_env
from otel_runtime._base.guard import warn_once
from otel_runtime._base.settings import DEFAULT_SHUTDOWN_TIMEOUT_MILLIS
from otel_runtime._sdk.exporter_names import check_exporter_names
from otel_runtime._sdk.file_export import DEFAULT_TELEMETRY_PATH
from otel_runtime._sdk.signals import Signal
from otel_runtime.environment_variables import OTEL_RUNTIME_RECORD_PARAMETERS, OTEL_RUNTIME_TELEMETRY_FILE

__all__ = [
    "Destination",
    "ExportPlan",
    "Options",
    "SignalChoice",
    "check_endpoint",
    "make_resource",
    "resolve_options",
    "resolve_protocol",
]

DEFAULT_SERVICE_NAME: Final = "otel-runtime"

_PROTOCOLS: Final = ("grpc", "http/protobuf")
_EXPORTER_VARIABLES: Final[dict[Signal, str]] = {"traces": OTEL_TRACES_EXPORTER, "logs": OTEL_LOGS_EXPORTER}
_ENDPOINT_VARIABLES: Final[dict[Signal, str]] = {
    "traces": OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
    "logs": OTEL_EXPORTER_OTLP_LOGS_ENDPOINT,
}
_PROTOCOL_VARIABLES: Final[dict[Signal, str]] = {
    "traces": OTEL_EXPORTER_OTLP_TRACES_PROTOCOL,
    "logs": OTEL_EXPORTER_OTLP_LOGS_PROTOCOL,
}


@dataclass(frozen=True, slots=True)
class SignalChoice:
    """The exporters chosen for one signal (``none`` left out) and the OTLP protocol they use."""

    exporters: tuple[str, ...]
    protocol: str
    explicit: bool = False
    """Whether the caller named the exporters (``configure(traces_exporter=...)``): then they are added to
    a provider installed before even where it already exports to the same destination."""


@dataclass(frozen=True, slots=True)
class Destination:
    """Where the exporters send: the OTLP endpoint, headers and per-export timeout, and the local file.

    ``None`` leaves the OTLP exporters to their own ``OTEL_EXPORTER_OTLP_*`` variables.
    """

    endpoint: str | None
    headers: Mapping[str, str] | None
    timeout: float | None
    file_path: Path


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """What ``configure()`` exports, how and where, and the resource the caller asked for."""

    traces: SignalChoice
    logs: SignalChoice
    destination: Destination
    service_name: str | None
    resource_attributes: Mapping[str, Any] | None

    @property
    def explicit_resource(self) -> dict[str, Any]:
        """The resource attributes the caller asked for, ``service_name`` included."""
        return _explicit_resource(self.service_name, self.resource_attributes)

    @property
    def uses_file(self) -> bool:
        """Whether either signal goes to the local file."""
        return "file" in self.traces.exporters or "file" in self.logs.exporters


@dataclass(frozen=True, slots=True)
class Options:
    """Everything ``configure()`` decides, from its arguments and the environment."""

    record_parameters: bool
    shutdown_timeout_millis: float
    export: ExportPlan | None
    """``None`` when the SDK is disabled: nothing is exported."""


def resolve_options(
    *,
    service_name: str | None,
    resource_attributes: Mapping[str, Any] | None,
    endpoint: str | None,
    protocol: str | None,
    headers: Mapping[str, str] | None,
    traces_exporter: str | None,
    logs_exporter: str | None,
    export_timeout: float | None,
    telemetry_file: str | os.PathLike[str] | None,
    record_parameters: bool | None,
    disabled: bool | None,
) -> Options:
    """Settle ``configure()``'s arguments over the environment; ``ValueError`` for a bad one, even when
    the SDK is disabled."""
    if record_parameters is None:
        record_parameters = _boolean_variable(OTEL_RUNTIME_RECORD_PARAMETERS, default=True)
    if disabled is None:
        disabled = _boolean_variable(OTEL_SDK_DISABLED, default=False)
    if endpoint is not None:
        endpoint = check_endpoint(endpoint)
    if export_timeout is not None and not export_timeout > 0:
        raise ValueError(f"export_timeout must be a positive number of seconds, got {export_timeout!r}")
    environment_timeout = _timeout_from_environment()
    traces = _exporter_names("traces", traces_exporter, endpoint)
    logs = _exporter_names("logs", logs_exporter, endpoint)
    trace_protocol = resolve_protocol("traces", protocol) if "otlp" in traces else "grpc"
    log_protocol = resolve_protocol("logs", protocol) if "otlp" in logs else "grpc"
    bound_s = export_timeout or environment_timeout
    shutdown_timeout_millis = bound_s * 1000 if bound_s else DEFAULT_SHUTDOWN_TIMEOUT_MILLIS
    if disabled:
        return Options(record_parameters, shutdown_timeout_millis, None)
    file_path = Path(telemetry_file or read_env(OTEL_RUNTIME_TELEMETRY_FILE) or DEFAULT_TELEMETRY_PATH)
    plan = ExportPlan(
        traces=SignalChoice(traces, trace_protocol, explicit=traces_exporter is not None),
        logs=SignalChoice(logs, log_protocol, explicit=logs_exporter is not None),
        destination=Destination(endpoint, headers, export_timeout, file_path.absolute()),
        service_name=service_name,
        resource_attributes=resource_attributes,
    )
    return Options(record_parameters, shutdown_timeout_millis, plan)


def _boolean_variable(name: str, *, default: bool) -> bool:
    """A boolean variable as the OpenTelemetry spec reads it: ``true`` / ``false`` in any case; anything
    else is the default, with one warning per process unless it is empty or unset."""
    raw = read_env(name)
    if raw is not None and raw.strip().lower() not in ("true", "false"):
        warn_once(
            f"boolean-variable-{name}",
            f"{name}={raw!r} is neither 'true' nor 'false'; read as {str(default).lower()}",
        )
    return parse_bool(raw, default=default)


def _exporter_names(signal: Signal, given: str | None, endpoint: str | None) -> tuple[str, ...]:
    variable = _EXPORTER_VARIABLES[signal]
    raw = given or read_env(variable)
    if raw is None:
        has_endpoint = (
            endpoint or read_env(OTEL_EXPORTER_OTLP_ENDPOINT) or read_env(_ENDPOINT_VARIABLES[signal])
        )
        raw = "otlp" if has_endpoint else "file"
    names = check_exporter_names(signal, raw, "configure()" if given else variable)
    return tuple(name for name in names if name != "none")


def resolve_protocol(signal: Signal, given: str | None) -> str:
    """The OTLP protocol: ``given``, else the per-signal then the generic variable, else ``grpc``."""
    per_signal = _PROTOCOL_VARIABLES[signal]
    protocol = (
        (given or read_env(per_signal) or read_env(OTEL_EXPORTER_OTLP_PROTOCOL) or "grpc").strip().lower()
    )
    if protocol not in _PROTOCOLS:
        raise ValueError(f"OTLP protocol must be 'grpc' or 'http/protobuf', got {protocol!r}")
    return protocol


def check_endpoint(endpoint: str) -> str:
    """``endpoint`` if it is an ``http://`` or ``https://`` URL with a host, else ``ValueError``."""
    scheme, _, rest = endpoint.strip().partition("://")
    if scheme.lower() not in ("http", "https") or not rest.strip("/"):
        raise ValueError(f"OTLP endpoint must be a URL such as http://localhost:4317, got {endpoint!r}")
    return endpoint.strip()


def _timeout_from_environment() -> float | None:
    """``OTEL_EXPORTER_OTLP_TIMEOUT`` in seconds (as the Python OTLP exporters read it), if set."""
    raw = read_env(OTEL_EXPORTER_OTLP_TIMEOUT)
    if raw is None:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ValueError(f"{OTEL_EXPORTER_OTLP_TIMEOUT} must be a positive number of seconds, got {raw!r}")
    return seconds


def _explicit_resource(
    service_name: str | None, resource_attributes: Mapping[str, Any] | None
) -> dict[str, Any]:
    attributes = dict(resource_attributes or {})
    if service_name is not None:
        attributes[SERVICE_NAME] = service_name
    return attributes


def make_resource(service_name: str | None, resource_attributes: Mapping[str, Any] | None) -> Resource:
    """The resource from the arguments over ``OTEL_RESOURCE_ATTRIBUTES`` and ``OTEL_SERVICE_NAME``."""
    resource = Resource.create(_explicit_resource(service_name, resource_attributes))
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    return resource
