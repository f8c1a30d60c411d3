"""Layer 1: the names on the wire, settings and environment-variable names (stdlib only)."""
