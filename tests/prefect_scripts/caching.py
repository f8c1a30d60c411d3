"""Prefect's task-caching examples (docs: "Cache workflow steps", "Task caching", "Customize caching"),
with the ``prefect`` imports changed to ``otel_runtime`` ones. Each task prints when its body runs, so
the test sees which calls were answered from the cache. Run it twice in one directory: the second
process hits what the first one stored (``INPUTS``, ``TASK_SOURCE``, ``task_input_hash``).
"""

import sys
import threading
from datetime import timedelta

from otel_runtime import flow, task
from otel_runtime.cache_policies import FLOW_PARAMETERS, INPUTS, NO_CACHE, TASK_SOURCE
from otel_runtime.tasks import task_input_hash

PHASE = sys.argv[1] if len(sys.argv) > 1 else "first"


@task(persist_result=True)
def add_one(x: int):
    print(f"add_one({x}) ran")
    return x + 1


@flow
def my_flow():
    add_one(1)  # will not be cached
    add_one(1)  # will be cached
    add_one(2)  # will not be cached
    state = add_one(1, return_state=True)
    print(f"my_flow last: {state.type.value} {state.name} {state.result()} {state}")


@task(cache_policy=INPUTS)
def my_cached_task(x: int):
    print(f"my_cached_task({x}) ran")
    return x + 42


@task(cache_policy=INPUTS - "debug")
def my_subset_task(x: int, debug: bool = False):
    print(f"my_subset_task({x}, debug={debug}) ran")
    return x + 42


@task(cache_policy=TASK_SOURCE)
def my_stateful_task():
    print("my_stateful_task ran")
    return "state"


def static_cache_key(context, parameters):
    # return a constant
    return "static cache key"


@task(cache_key_fn=static_cache_key)
def cached_task():
    print("cached_task ran")
    return 42


@task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
def hello_task(name_input):
    print(f"hello_task({name_input}) ran")
    return "hello " + name_input


@task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=-1))
def expired_task(x: int):
    print(f"expired_task({x}) ran")
    return x


@task(cache_policy=INPUTS, refresh_cache=True)
def refreshed_task(x: int):
    print(f"refreshed_task({x}) ran")
    return x


@task(cache_policy=FLOW_PARAMETERS)
def by_flow_parameters():
    print("by_flow_parameters ran")
    return "p"


@flow
def parameterised(day: str):
    return by_flow_parameters()


@task(cache_policy=INPUTS)
def with_lock(x: int, lock_obj: threading.Lock):
    print(f"with_lock({x}) ran")
    return x


@task(cache_policy=INPUTS - "lock_obj")
def without_lock(x: int, lock_obj: threading.Lock):
    print(f"without_lock({x}) ran")
    return x


@task(cache_policy=NO_CACHE)
def never_cached(x: int):
    print(f"never_cached({x}) ran")
    return x


@task(cache_policy=INPUTS)
def unpicklable(x: int):
    print(f"unpicklable({x}) ran")
    return threading.Lock()


@flow
def customised():
    # INPUTS alone does not tell tasks apart (as in Prefect): each task gets its own inputs here
    my_cached_task(1)
    my_cached_task(1)
    my_subset_task(2, debug=True)
    my_subset_task(2, debug=False)
    my_stateful_task()
    cached_task()
    cached_task()
    hello_task("Marvin")
    hello_task("Marvin")
    expired_task(3)
    expired_task(3)
    refreshed_task(4)
    refreshed_task(4)
    lock = threading.Lock()
    with_lock(5, lock)
    with_lock(5, lock)
    without_lock(6, lock)
    without_lock(6, lock)
    never_cached(7)
    never_cached(7)
    unpicklable(8)
    unpicklable(8)
    future = my_cached_task.submit(1)
    future.wait()
    print(f"submitted: {future.state.name} {future.result()}")
    shared = my_subset_task(1)  # the key of my_cached_task(1): Prefect's INPUTS shares it too
    print(f"shared key: {shared}")


if __name__ == "__main__":
    my_flow()
    customised()
    parameterised("mon")
    parameterised("mon")
    parameterised("tue")
    print(f"{PHASE} phase done")
