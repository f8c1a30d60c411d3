"""The exceptions of run states (re-exported by ``otel_runtime.exceptions``), named as Prefect names them.

::

    OtelRuntimeError (alias PrefectException)
    ├── FailedRun        a FAILED state without an exception of its own (``Failed(message=...)``)
    ├── CrashedRun       a CRASHED state without an exception of its own
    ├── CancelledRun     a CANCELLED state
    ├── PausedRun        ``result()`` of a PAUSED state
    ├── UnfinishedRun    ``result()`` of a state that is not final (``Pending``, ``NotReady``, ``Running``)
    ├── MissingResult    a COMPLETED state that holds no result
    ├── UpstreamTaskError an upstream run did not complete, so this one did not start (state ``NotReady``)
    └── ParameterTypeError a flow's parameters do not fit its type hints
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CancelledRun",
    "CrashedRun",
    "FailedRun",
    "MissingResult",
    "OtelRuntimeError",
    "ParameterTypeError",
    "PausedRun",
    "PrefectException",
    "UnfinishedRun",
    "UpstreamTaskError",
]


class OtelRuntimeError(Exception):
    """Base of the exceptions otel_runtime raises for run states."""


PrefectException = OtelRuntimeError
"""Prefect's name for the base class, so ``except PrefectException`` ports unchanged."""


class FailedRun(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised for a FAILED state that carries no exception of its own (a returned ``Failed(...)``)."""


class CrashedRun(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised for a CRASHED state that carries no exception of its own (a worker that died)."""


class CancelledRun(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised for a CANCELLED state."""


class PausedRun(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised by ``result()`` of a PAUSED state: a paused run has no result."""

    def __init__(self, *args: Any, state: Any = None) -> None:
        super().__init__(*args)
        self.state = state


class UnfinishedRun(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised by ``result()`` of a state that is not final, such as ``NotReady``."""


class MissingResult(OtelRuntimeError):  # noqa: N818 - Prefect's name
    """Raised by ``result()`` of a COMPLETED state that holds no result."""


class UpstreamTaskError(OtelRuntimeError):
    """An upstream run did not reach a COMPLETED state, so the downstream run was not started."""


class ParameterTypeError(OtelRuntimeError):
    """A flow's parameters do not fit its type hints (``validate_parameters=True``): the run fails
    before its function runs, as in Prefect."""


for _name in __all__:
    if _name != "PrefectException":
        globals()[_name].__module__ = "otel_runtime.exceptions"
del _name
