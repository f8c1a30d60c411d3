"""The active task run: ``runtime.task_run.id``, ``.name``, ``.parameters``, ...

Attributes are computed on access from the active OpenTelemetry context; outside a task run (and
inside a subflow, which is not a task run) they are empty values (``None``, ``[]``, ``{}``, ``0``).
In a process that only received baggage, ``id`` comes from it.
"""

from otel_runtime.runtime._accessors import TASK_RUN
from otel_runtime.runtime._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, TASK_RUN)
del TASK_RUN, lazy_module
