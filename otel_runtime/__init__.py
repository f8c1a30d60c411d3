"""otel_runtime: Prefect-style runtime context carried by OpenTelemetry.

Flow runs and task runs are spans; their baggage carries the run and deployment ids, so the identity
follows the work across threads, asyncio, processes and HTTP::

    from otel_runtime import flow, task, runtime

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def pipeline(x: int) -> int:
        print("flow run", runtime.flow_run.name)
        return double(x)
"""

from typing import TYPE_CHECKING, Any

from otel_runtime import runtime
from otel_runtime._core.deployments import deployment, tags
from otel_runtime._engine.annotations import allow_failure, quote, unmapped
from otel_runtime._engine.flows import Flow, flow
from otel_runtime._engine.futures import TaskRunFuture
from otel_runtime._engine.remote import register_worker_setup
from otel_runtime._engine.states import State
from otel_runtime._engine.tasks import Task, task

if TYPE_CHECKING:
    from otel_runtime._sdk import Dropped, Telemetry, configure, dropped
    from otel_runtime.logging import get_run_logger

__all__ = [
    "Dropped",
    "Flow",
    "State",
    "Task",
    "TaskRunFuture",
    "Telemetry",
    "allow_failure",
    "configure",
    "deployment",
    "dropped",
    "flow",
    "get_run_logger",
    "quote",
    "runtime",
    "tags",
    "task",
    "unmapped",
]

_SDK_WIRING = frozenset({"Dropped", "Telemetry", "configure", "dropped"})


def __getattr__(name: str) -> Any:
    """Load the SDK wiring on first use, so ``import otel_runtime`` loads no exporter, protobuf or gRPC."""
    if name in _SDK_WIRING:
        import otel_runtime._sdk as sdk

        value = getattr(sdk, name)
        globals()[name] = value
        return value
    if name == "get_run_logger":  # Prefect exports it here too; structlog loads on first use
        from otel_runtime.logging import get_run_logger

        globals()[name] = get_run_logger
        return get_run_logger
    raise AttributeError(f"module 'otel_runtime' has no attribute {name!r}")


def _configure_worker() -> None:
    """How a process-pool or Dask worker sets up telemetry: ``configure()`` from its inherited ``OTEL_*``."""
    import otel_runtime._sdk as sdk

    sdk.configure()


register_worker_setup(_configure_worker)


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SDK_WIRING | {"get_run_logger"})
