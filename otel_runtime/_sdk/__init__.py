"""Layer 5: SDK wiring: configure, exporters, export health, the local telemetry file."""

from otel_runtime._sdk.configure import Telemetry, configure
from otel_runtime._sdk.drops import Dropped, dropped

__all__ = ["Dropped", "Telemetry", "configure", "dropped"]
