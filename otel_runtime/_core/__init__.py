"""Layer 2: run identity on the OpenTelemetry context (OpenTelemetry API only)."""
