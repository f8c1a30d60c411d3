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

from otel_runtime import runtime
from otel_runtime._core.deployments import deployment, tags
from otel_runtime._engine.flows import Flow, flow
from otel_runtime._engine.futures import TaskRunFuture
from otel_runtime._engine.tasks import Task, task, unmapped
from otel_runtime._sdk import Dropped, Telemetry, configure, dropped

__all__ = [
    "Dropped",
    "Flow",
    "Task",
    "TaskRunFuture",
    "Telemetry",
    "configure",
    "deployment",
    "dropped",
    "flow",
    "runtime",
    "tags",
    "task",
    "unmapped",
]
