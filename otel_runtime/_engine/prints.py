"""``log_prints=True``: ``print`` inside such a run becomes a log line of the run logger."""

from __future__ import annotations

import builtins
import contextvars
import sys
import threading
from typing import Any

from otel_runtime._engine.run_context import FlowRunContext, TaskRunContext
from otel_runtime._engine.run_logger import run_logger

__all__ = ["capture_prints"]

_builtin_print = builtins.print
_logging = contextvars.ContextVar("otel_runtime_logging_a_print", default=False)
_install_lock = threading.Lock()


def _print(
    *values: object, sep: str | None = " ", end: str | None = "\n", file: Any = None, flush: bool = False
) -> None:
    """``print``, except in a ``log_prints`` run, where text meant for stdout goes to the run logger.

    Prints from structlog itself (its ``PrintLogger`` writes with ``print``) are never captured.
    """
    if (
        (file is None or file is sys.stdout)
        and not _logging.get()
        and not sys._getframe(1).f_globals.get("__name__", "").startswith("structlog")
    ):
        run = TaskRunContext.get() or FlowRunContext.get()
        if run is not None and run.log_prints:
            token = _logging.set(True)  # a logger that itself prints must reach the real print
            try:
                _log_print((" " if sep is None else sep).join(map(str, values)))
            finally:
                _logging.reset(token)
            return
    _builtin_print(*values, sep=sep, end=end, file=file, flush=flush)


def _log_print(text: str) -> None:
    """Log ``text`` as the run logger does (``otel_runtime.logging.get_run_logger().info(text)``)."""
    run_logger().info(text, stacklevel=3)  # the record's location is the print call, as in Prefect


def capture_prints() -> None:
    """Route ``print`` through :func:`_print` from now on (idempotent; outside such runs it prints)."""
    with _install_lock:
        if builtins.print is not _print:
            builtins.print = _print
