"""Task runners: where submitted task runs execute. Pass one as ``@flow(task_runner=...)``.

Every flow run works on its own copy of its flow's runner (``duplicate()``), started at the first
``submit`` and shut down when the flow run ends, after its task runs have finished.

- :class:`ThreadPoolTaskRunner` (the default): threads of this process; each task run carries the
  context of its ``submit`` call.
- :class:`ProcessPoolTaskRunner`: worker processes (``fork``, ``spawn`` or ``forkserver``).
- :class:`DaskTaskRunner`: a ``dask.distributed`` cluster (``pip install 'otel-runtime[dask]'``).

The last two never send run context objects. Each task run travels as the task (pickled by
reference: define tasks at module level), its arguments, its id and a W3C carrier of the submit-time
context; the worker attaches the carrier and runs a real task run there, a child of the flow span with
the flow run and deployment from baggage. Each worker process sets up its own telemetry once (by
default ``otel_runtime.configure()`` from the ``OTEL_*`` variables it inherited; pass
``configure_worker=`` to choose) and flushes its spans after every task run. Futures passed as
arguments are resolved in this process first, so their results must pickle, as must return values
and exceptions.
"""

from otel_runtime._engine.task_runners import (
    DaskTaskRunner,
    ProcessPoolTaskRunner,
    TaskRunner,
    ThreadPoolTaskRunner,
)

ConcurrentTaskRunner = ThreadPoolTaskRunner
"""Prefect 3's other name for the thread-pool runner (``prefect.task_runners.ConcurrentTaskRunner``)."""

__all__ = [
    "ConcurrentTaskRunner",
    "DaskTaskRunner",
    "ProcessPoolTaskRunner",
    "TaskRunner",
    "ThreadPoolTaskRunner",
]
