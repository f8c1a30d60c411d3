"""Process-wide choices made by ``configure()`` and read on the hot path (stdlib only)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Settings", "settings"]


@dataclass(slots=True)
class Settings:
    """``record_parameters``: whether runs record their parameters as span attributes."""

    record_parameters: bool = True


settings = Settings()
