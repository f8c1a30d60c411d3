"""Layer 5: SDK wiring: configure, exporters, export health, the local telemetry file."""
