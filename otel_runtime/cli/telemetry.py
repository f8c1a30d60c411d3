"""The command's own telemetry: ``configure()`` with a one-line error, flushing, where it went."""

from __future__ import annotations

import sys
from typing import Final

from otel_runtime._sdk.configure import Telemetry, configure
from otel_runtime.cli.errors import CliError
from otel_runtime.cli.terminal import PROGRAM

__all__ = ["configure_telemetry", "flush_telemetry", "telemetry_destination"]

_FLUSH_TIMEOUT_MILLIS: Final = 5_000


def configure_telemetry() -> Telemetry:
    try:
        return configure()
    except ValueError as error:
        raise CliError(f"bad telemetry configuration: {error}") from None


def telemetry_destination(telemetry: Telemetry) -> str:
    if telemetry.tracer_provider is None:
        return "telemetry is disabled (OTEL_SDK_DISABLED)"
    parts = []
    if telemetry.telemetry_file is not None:
        parts.append(f"telemetry written to {telemetry.telemetry_file}")
    others = [name for name in telemetry.traces_exporters if name != "file"]
    if others:
        parts.append(f"spans exported with {', '.join(others)}")
    return "; ".join(parts) or "no span exporter is configured (OTEL_TRACES_EXPORTER=none)"


def flush_telemetry(telemetry: Telemetry) -> None:
    if not telemetry.force_flush(_FLUSH_TIMEOUT_MILLIS):
        print(
            f"{PROGRAM}: warning: telemetry not delivered within {_FLUSH_TIMEOUT_MILLIS // 1000} s "
            "(is the OTLP endpoint up? `otel-runtime check` tells)",
            file=sys.stderr,
        )
