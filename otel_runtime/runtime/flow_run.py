"""The active flow run: ``runtime.flow_run.id``, ``.name``, ``.parameters``, ...

Attributes are computed on access from the active OpenTelemetry context; outside a flow run they are
empty values (``None``, ``[]``, ``{}``, ``0``; ``scheduled_start_time`` is now). In a process that only
received baggage, ``id``, ``name`` and ``flow_name`` come from it.
"""

from otel_runtime.runtime._accessors import FLOW_RUN
from otel_runtime.runtime._lazy import lazy_module

__getattr__, __dir__ = lazy_module(__name__, FLOW_RUN)
del FLOW_RUN, lazy_module
