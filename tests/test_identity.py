"""Run identity in baggage: set on entering a run, restored on every way out, never crossing runs."""

from __future__ import annotations

import asyncio
import threading

import pytest
from opentelemetry import baggage

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._base import keys as _keys


@task
def task_baggage() -> dict[str, object]:
    return dict(baggage.get_all())


@flow
def flow_baggage() -> tuple[dict[str, object], dict[str, object]]:
    return dict(baggage.get_all()), task_baggage()


def test_flow_and_task_runs_put_the_design_keys_in_baggage() -> None:
    """A flow run's baggage has deployment, flow run and flow keys; its task runs add task_run.id."""
    with deployment("nightly") as active:
        in_flow, in_task = flow_baggage()
    assert set(in_flow) == {
        _keys.DEPLOYMENT_ID,
        _keys.DEPLOYMENT_NAME,
        _keys.FLOW_RUN_ID,
        _keys.FLOW_RUN_NAME,
        _keys.FLOW_NAME,
    }
    assert in_flow[_keys.DEPLOYMENT_ID] == active.id
    assert in_flow[_keys.FLOW_NAME] == "flow_baggage"
    assert set(in_task) == set(in_flow) | {_keys.TASK_RUN_ID}


def test_entering_a_subflow_from_a_task_removes_task_run_id() -> None:
    """A subflow inside a task run has no task_run.id in its baggage."""
    seen = {}

    @flow
    def sub() -> None:
        seen["baggage"] = dict(baggage.get_all())

    @task
    def launcher() -> None:
        sub()

    @flow
    def top() -> None:
        launcher()

    top()
    assert _keys.TASK_RUN_ID not in seen["baggage"]
    assert _keys.FLOW_RUN_ID in seen["baggage"]


def test_baggage_is_restored_after_return_exception_and_retry() -> None:
    """After a run ends, by returning, raising or after retries, the caller's baggage is as it was."""

    @task(retries=1)
    def fails() -> None:
        raise OSError("boom")

    flow_baggage()
    assert baggage.get_all() == {}
    with pytest.raises(OSError, match="boom"):
        fails()
    assert baggage.get_all() == {}
    assert runtime.task_run.id is None and runtime.flow_run.id is None


def test_two_flows_back_to_back_do_not_share_ids() -> None:
    """Consecutive flow runs get different ids and none leaks into the code after them."""
    first, _ = flow_baggage()
    second, _ = flow_baggage()
    assert first[_keys.FLOW_RUN_ID] != second[_keys.FLOW_RUN_ID]
    assert runtime.flow_run.id is None


def test_flows_in_parallel_threads_each_see_only_their_own_ids() -> None:
    """Flows running at the same time in threads never see each other's run ids."""
    barrier = threading.Barrier(8)
    results: dict[int, tuple[object, object, object]] = {}

    @task
    def inner() -> object:
        barrier.wait(timeout=10)
        return runtime.flow_run.id

    @flow
    def parallel(n: int) -> None:
        results[n] = (runtime.flow_run.id, inner(), baggage.get_baggage(_keys.FLOW_RUN_ID))

    threads = [threading.Thread(target=parallel, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 8
    for own, from_task, from_baggage in results.values():
        assert own == from_task == from_baggage
    assert len({own for own, _, _ in results.values()}) == 8


def test_async_flows_gathered_concurrently_stay_isolated() -> None:
    """Concurrent async flow runs in one event loop keep their own ids across awaits."""

    @flow
    async def concurrent(n: int) -> tuple[object, object]:
        before = runtime.flow_run.id
        await asyncio.sleep(0.01 * (5 - n))
        return before, runtime.flow_run.id

    async def main() -> list[tuple[object, object]]:
        return list(await asyncio.gather(*(concurrent(n) for n in range(5))))

    pairs = asyncio.run(main())
    assert all(before == after for before, after in pairs)
    assert len({before for before, _ in pairs}) == 5
