"""Prefect 3 docs, "Write and run workflows" / "Write tasks": cancel a workflow or a task that runs for
too long with ``timeout_seconds`` (sync and async, called and submitted), and a retry after a timeout.
"""

import asyncio
import time

from otel_runtime import flow, runtime, task


@flow(timeout_seconds=0.5, log_prints=True)
def show_timeouts():
    print("I will execute")
    time.sleep(5)
    print("I will not execute")


@task(timeout_seconds=0.3)
def slow_task():
    time.sleep(5)
    return "too late"


@task(timeout_seconds=0.3)
async def slow_async_task():
    await asyncio.sleep(5)


@task(timeout_seconds=0.3, retries=1)
def slow_then_quick():
    if runtime.task_run.run_count == 1:
        time.sleep(5)
    return f"done on attempt {runtime.task_run.run_count}"


@task(timeout_seconds=0.2)
def blocking_in_a_worker():
    time.sleep(0.6)  # a worker thread's blocking call is not cut short; the limit applies after it
    return "never returned"


@flow
def tasks_with_timeouts():
    try:
        slow_task()
    except TimeoutError as exc:
        print(f"slow_task raised: {type(exc).__name__}: {exc}")
    state = slow_task(return_state=True)
    print(f"slow_task state: {state.type.value} {state.name} {state.message}")
    print(f"retried: {slow_then_quick()}")
    future = blocking_in_a_worker.submit()
    future.wait()
    print(f"submitted state: {future.state.name} {future.state.message}")
    return "flow finished"


if __name__ == "__main__":
    started = time.monotonic()
    try:
        show_timeouts()
    except TimeoutError as exc:
        print(f"show_timeouts raised: {type(exc).__name__}: {exc}")
    state = show_timeouts(return_state=True)
    print(f"show_timeouts state: {state.type.value} {state.name} {state.message}")
    print(tasks_with_timeouts())
    try:
        asyncio.run(slow_async_task())
    except TimeoutError as exc:
        print(f"slow_async_task raised: {type(exc).__name__}")
    print(f"took under 5 s: {time.monotonic() - started < 5}")
