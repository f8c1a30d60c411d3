"""The exceptions of run states, as Prefect's ``prefect.exceptions`` names them.

::

    OtelRuntimeError (alias PrefectException)
    ├── FailedRun          result() of a FAILED state with no exception of its own
    ├── CrashedRun         ... of a CRASHED state
    ├── CancelledRun       ... of a CANCELLED state
    ├── PausedRun          result() of a PAUSED state
    ├── UnfinishedRun      result() of a state that is not final (``NotReady``, ``Pending``)
    ├── MissingResult      a COMPLETED state that holds no result
    ├── UpstreamTaskError  an upstream run did not complete, so this one did not start
    └── ParameterTypeError a flow's parameters do not fit its type hints (``validate_parameters``)

    TimeoutError
    ├── TaskRunTimeoutError  a task run exceeded its timeout_seconds (Prefect: ``prefect.task_engine``)
    └── FlowRunTimeoutError  a flow run exceeded its timeout_seconds (Prefect: ``prefect.flow_engine``)
"""

from otel_runtime._engine.exceptions import (
    CancelledRun,
    CrashedRun,
    FailedRun,
    MissingResult,
    OtelRuntimeError,
    ParameterTypeError,
    PausedRun,
    PrefectException,
    UnfinishedRun,
    UpstreamTaskError,
)
from otel_runtime._engine.timeouts import FlowRunTimeoutError, TaskRunTimeoutError

# The names of ``_engine.exceptions.__all__`` and the two timeouts, listed again so the public surface
# reads at a glance.
__all__ = [
    "CancelledRun",
    "CrashedRun",
    "FailedRun",
    "FlowRunTimeoutError",
    "MissingResult",
    "OtelRuntimeError",
    "ParameterTypeError",
    "PausedRun",
    "PrefectException",
    "TaskRunTimeoutError",
    "UnfinishedRun",
    "UpstreamTaskError",
]
