"""Runtime context in the style of ``prefect.runtime``: which deployment, flow run and task run is this?

>>> from otel_runtime import runtime
>>> runtime.flow_run.id is None   # outside a flow run: an empty value, never an error
True

Read accessors where the value is needed, not at import time: each access reads the active context.
"""

from otel_runtime.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
