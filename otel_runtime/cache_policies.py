"""Cache policies, as Prefect's ``prefect.cache_policies``: how a task run's cache key is computed.

::

    from datetime import timedelta

    from otel_runtime import flow, task
    from otel_runtime.cache_policies import INPUTS, TASK_SOURCE

    @task(cache_policy=TASK_SOURCE + INPUTS - "debug", cache_expiration=timedelta(hours=1))
    def load(path: str, debug: bool = False) -> bytes:
        ...

A run whose key has an unexpired value returns it without running: its state is ``Cached`` and its
span links to the span of the run that stored the value. Values are kept in memory and in files under
``.otel_runtime/cache`` (``OTEL_RUNTIME_CACHE_DIR``, or ``policy.configure(key_storage=...)``), so
the next process hits them too. ``DEFAULT`` is ``INPUTS + TASK_SOURCE + RUN_ID``; ``NONE`` and
``NO_CACHE`` turn caching off.
"""

from otel_runtime._engine.cache_policies import (
    DEFAULT,
    FLOW_PARAMETERS,
    INPUTS,
    NO_CACHE,
    NONE,
    RUN_ID,
    TASK_SOURCE,
    CacheKeyFnPolicy,
    CachePolicy,
    CompoundCachePolicy,
    FlowParameters,
    Inputs,
    RunId,
    TaskSource,
)

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NONE",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyFnPolicy",
    "CachePolicy",
    "CompoundCachePolicy",
    "FlowParameters",
    "Inputs",
    "RunId",
    "TaskSource",
]
