"""Prefect 3 docs, "Retries": a custom ``retry_condition_fn``, ``exponential_backoff`` delays with
``retry_jitter_factor``, and a list of delays. The HTTP errors are stand-ins (no network in tests).
"""

import time

from otel_runtime import flow, runtime, task
from otel_runtime.tasks import exponential_backoff


class HTTPStatusError(Exception):
    def __init__(self, status_code: int) -> None:
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code


class ConnectError(Exception):
    pass


def retry_handler(task, task_run, state) -> bool:
    """Custom retry handler that specifies when to retry a task"""
    try:
        # Attempt to get the result of the task
        state.result()
    except HTTPStatusError as exc:
        # Retry on any HTTP status code that is not 401 or 404
        do_not_retry_on_these_codes = [401, 404]
        return exc.status_code not in do_not_retry_on_these_codes
    except ConnectError:
        # Do not retry
        return False
    except:  # noqa: E722
        # For any other exception, retry
        return True


attempts = {}


@task(retries=2, retry_condition_fn=retry_handler)
def my_api_call_task(status_code: int):
    attempts[f"status {status_code}"] = runtime.task_run.run_count
    if runtime.task_run.run_count < 3:
        raise HTTPStatusError(status_code)
    return f"status {status_code} ok on attempt {runtime.task_run.run_count}"


@task(retries=3, retry_condition_fn=retry_handler)
def cannot_connect():
    attempts["connect"] = runtime.task_run.run_count
    raise ConnectError("refused")


def broken_handler(task, task_run, state) -> bool:
    raise RuntimeError("the handler itself fails")


@task(retries=3, retry_condition_fn=broken_handler)
def guarded():
    attempts["guarded"] = runtime.task_run.run_count
    raise ValueError("first failure")


@task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.05), retry_jitter_factor=1)
def some_task_with_exponential_backoff_retries():
    attempts["backoff"] = runtime.task_run.run_count
    if runtime.task_run.run_count < 4:
        raise RuntimeError("not yet")
    return "backed off"


@task(retries=4, retry_delay_seconds=[0.01, 0.02, 0.04, 0.08])
def melancholic_task():
    attempts["melancholic"] = runtime.task_run.run_count
    raise Exception("We used to see each other so much more often")  # noqa: TRY002 - the docs' example


@flow
def my_workflow():
    print(my_api_call_task(500))
    for name, state in [
        ("404", my_api_call_task(404, return_state=True)),
        ("connect", cannot_connect(return_state=True)),
        ("guarded", guarded(return_state=True)),
        ("melancholic", melancholic_task(return_state=True)),
    ]:
        print(f"{name}: {state.type.value} {state.name}")
    started = time.monotonic()
    print(some_task_with_exponential_backoff_retries())
    print(f"backoff took under 2 s: {time.monotonic() - started < 2}")


if __name__ == "__main__":
    print(f"exponential_backoff(10)(3): {exponential_backoff(backoff_factor=10)(3)}")
    my_workflow()
    print(f"attempts: {sorted(attempts.items())}")
    print(f"delays kept: {some_task_with_exponential_backoff_retries.retry_delay_seconds}")
