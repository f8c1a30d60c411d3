"""States and futures through worker processes: the same rules as the thread pool, and a worker that
dies gives its future a ``Crashed`` state instead of hanging. ``python workers.py process|dask``."""

import os
import sys

from otel_runtime import flow, task
from otel_runtime.futures import wait
from otel_runtime.states import Completed, Failed
from otel_runtime.task_runners import DaskTaskRunner, ProcessPoolTaskRunner


@task
def double(x):
    return 2 * x


@task
def boom():
    raise ValueError("raised in a worker")


@task
def toggle(fail: bool):
    return Failed(message="the worker says no") if fail else Completed(name="Skipped", data=5)


@task
def die():
    os._exit(13)


def runner():
    if sys.argv[1] == "process":
        return ProcessPoolTaskRunner(2, "fork", configure_worker=None)
    cluster = {"n_workers": 1, "threads_per_worker": 1}
    return DaskTaskRunner(cluster_kwargs=cluster, configure_worker=None)


def states_flow():
    futures = double.map([1, 2, 3])
    print("map:", futures.result())
    failed = boom.submit()
    blocked = double.submit(failed)
    wait([failed, blocked])
    print("failed:", failed.state.type.value, failed.state.name, failed.state.message)
    print("blocked:", blocked.state.type.value, blocked.state.name)
    refused, skipped = toggle.submit(True), toggle.submit(False)
    wait([refused, skipped])
    print("refused:", refused.state.type.value, refused.state.message)
    print("skipped:", skipped.state.type.value, skipped.state.name, skipped.result())
    late = double.submit(21, wait_for=[skipped])
    print("wait_for:", late.result())


def crash_flow():
    dead = die.submit()
    dead.wait(timeout=120)
    print("dead:", dead.done(), dead.state.type.value, dead.state.name)
    print("dead message:", dead.state.message.split(":")[0])


if __name__ == "__main__":
    flow(states_flow, name="states-flow", task_runner=runner())()
    flow(crash_flow, name="crash-flow", task_runner=runner())()
