"""Telemetry failures are reported once and swallowed: they must never break the user's program."""

from __future__ import annotations

import logging
import threading

__all__ = ["internal_logger", "warn_once"]

internal_logger = logging.getLogger("otel_runtime")
_reported: set[str] = set()
_lock = threading.Lock()


def warn_once(topic: str, message: str, *, exc_info: bool = False) -> None:
    """Log ``message`` as a warning the first time ``topic`` comes up in this process, then stay quiet."""
    with _lock:
        if topic in _reported:
            return
        _reported.add(topic)
    internal_logger.warning(message, exc_info=exc_info)
