"""Task helpers, as Prefect's ``prefect.tasks``: ``task_input_hash`` for ``cache_key_fn=``,
``exponential_backoff`` for ``retry_delay_seconds=``.

::

    from otel_runtime import task
    from otel_runtime.tasks import task_input_hash

    @task(cache_key_fn=task_input_hash)
    def fetch(url: str) -> str: ...
"""

from otel_runtime._engine.cache_keys import task_input_hash
from otel_runtime._engine.retry import exponential_backoff

__all__ = [
    "exponential_backoff",
    "task_input_hash",
]
