"""The engine's own log lines in a run (hooks, retries, timeouts), written as Prefect's engine writes them.

They go to the run logger (``otel_runtime.run``), bound to the run's fields; a line that cannot be
written is dropped with one warning, never raised into the run.
"""

from __future__ import annotations

from typing import Any

from otel_runtime._base.guard import warn_once
from otel_runtime._engine.run_logger import run_logger

__all__ = ["engine_logger", "log_line"]


def engine_logger() -> Any:
    """The run logger bound to the current run's fields, or ``None`` if there is none to be had."""
    try:
        return run_logger()
    except Exception:
        return None


def log_line(logger: Any, level: str, message: str, **kwargs: Any) -> None:
    """Write ``message`` at ``level`` (``"info"``, ``"error"``...) on ``logger``; never raises."""
    if logger is None:
        return
    try:
        getattr(logger, level)(message, **kwargs)
    except Exception:
        warn_once("engine-log", "otel_runtime could not log an engine line", exc_info=True)
