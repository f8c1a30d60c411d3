"""submit(), map(), futures and the default thread-pool task runner."""

from __future__ import annotations

import threading
import time

import pytest

from otel_runtime import flow, runtime, tags, task, unmapped
from otel_runtime._base import keys as _keys
from otel_runtime.task_runners import ThreadPoolTaskRunner
from otel_runtime.testing import CapturedSpans


@task
def add(a: int, b: int = 0) -> int:
    return a + b


def test_submit_returns_a_future_whose_result_is_the_task_result(spans: CapturedSpans) -> None:
    """task.submit(...) returns a future; .result() gives the value, the span is a child of the flow."""

    @flow
    def submitting() -> int:
        future = add.submit(1, 2)
        future.wait()
        return future.result()

    assert submitting() == 3
    flow_span = spans.find("flow submitting")
    assert spans.children(flow_span) == spans.named("task add")


def test_submitted_run_captures_context_at_submit_time() -> None:
    """A submitted task run sees the flow run, tags and deployment that were active when submitted."""
    seen = {}

    @task
    def look() -> None:
        seen["flow"] = runtime.flow_run.id
        seen["tags"] = runtime.task_run.tags
        seen["thread"] = threading.current_thread().name

    @flow
    def parent() -> None:
        seen["parent"] = runtime.flow_run.id
        with tags("captured"):
            future = look.submit()
        future.result()

    parent()
    assert seen["flow"] == seen["parent"]
    assert seen["tags"] == ["captured"]
    assert seen["thread"].startswith("otel_runtime-task")


def test_map_submits_one_run_per_element_and_passes_unmapped_whole(spans: CapturedSpans) -> None:
    """task.map zips iterable arguments; unmapped(...) and plain values go to every run."""

    @flow
    def mapping() -> list[int]:
        return [future.result() for future in add.map([1, 2, 3], b=unmapped(10))]

    assert mapping() == [11, 12, 13]
    assert len(spans.named("task add")) == 3


def test_map_with_iterables_of_different_lengths_is_a_valueerror() -> None:
    """map refuses iterables of different lengths with a clear error."""
    with pytest.raises(ValueError, match="different lengths"):
        add.map([1, 2], [1])


def test_futures_passed_to_tasks_are_resolved_to_their_results() -> None:
    """A future given as an argument to another task is replaced by its result before the run starts."""

    @flow
    def chained() -> int:
        first = add.submit(1, 1)
        return add.submit(first, b=3).result()

    assert chained() == 5


def test_flow_waits_for_unfinished_futures_before_it_ends(spans: CapturedSpans) -> None:
    """Task runs submitted and never awaited still finish before the flow run (and its span) ends."""
    finished = []

    @task
    def slow() -> None:
        time.sleep(0.2)
        finished.append(True)

    @flow
    def fire_and_forget() -> None:
        slow.submit()

    fire_and_forget()
    assert finished == [True]
    flow_span, task_span = spans.find("flow fire_and_forget"), spans.find("task slow")
    assert flow_span.end_time is not None and task_span.end_time is not None
    assert task_span.end_time <= flow_span.end_time


def test_failed_submitted_run_raises_from_result_or_returns_the_exception() -> None:
    """future.result() raises the task's exception; with raise_on_failure=False it returns it."""

    @task
    def broken() -> None:
        raise KeyError("missing")

    @flow
    def collect() -> tuple[BaseException | None, object]:
        future = broken.submit()
        with pytest.raises(KeyError):
            future.result()
        return future.exception(), future.result(raise_on_failure=False)

    exception, returned = collect()
    assert isinstance(exception, KeyError) and returned is exception


def test_submit_outside_a_flow_runs_the_task_on_a_shared_pool(spans: CapturedSpans) -> None:
    """Outside a flow, submit still runs a task run (with no flow run) and returns its future."""
    assert add.submit(2, 2).result() == 4
    attributes = spans.find("task add").attributes
    assert attributes is not None and _keys.FLOW_RUN_ID not in attributes


def test_flow_uses_its_own_task_runner_settings() -> None:
    """@flow(task_runner=ThreadPoolTaskRunner(max_workers=1)) runs submitted task runs one at a time."""
    active = []
    peak = []
    lock = threading.Lock()

    @task
    def tracked() -> None:
        with lock:
            active.append(1)
            peak.append(len(active))
        time.sleep(0.02)
        with lock:
            active.pop()

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def serial() -> None:
        for future in [tracked.submit() for _ in range(4)]:
            future.result()

    serial()
    assert max(peak) == 1


def test_wait_returns_done_and_not_done_sets_and_never_raises_on_timeout() -> None:
    """``wait(futures, timeout)`` returns the finished and unfinished futures as two sets."""
    from otel_runtime.futures import wait

    release = threading.Event()

    @task
    def held() -> None:
        release.wait(10)

    @flow
    def waiting() -> tuple[int, int, int, int]:
        quick, slow = add.submit(1), held.submit()
        quick.wait()
        done, not_done = wait([quick, slow], timeout=0.05)
        release.set()
        all_done, none = wait([quick, slow])
        return len(done), len(not_done), len(all_done), len(none)

    assert waiting() == (1, 1, 2, 0)


def test_as_completed_yields_each_future_once_and_times_out_with_the_count() -> None:
    """``as_completed`` yields every future as it finishes; past its timeout, ``TimeoutError`` says
    how many are unfinished."""
    from otel_runtime.futures import as_completed

    release = threading.Event()

    @task
    def held() -> None:
        release.wait(10)

    @flow
    def completing() -> str:
        futures = add.map([1, 2, 3])
        assert sorted(future.result() for future in as_completed(futures)) == [1, 2, 3]
        slow = held.submit()
        try:
            list(as_completed([slow], timeout=0.05))
        except TimeoutError as error:
            message = str(error)
        release.set()
        return message

    assert completing() == "1 (of 1) futures unfinished"


def test_future_state_and_result_as_prefect_names_them() -> None:
    """``future.state`` is ``Completed`` with the result, or ``Failed`` with Prefect's message;
    ``result(raise_on_failure=False)`` returns the exception; ``map`` returns a ``PrefectFutureList``."""
    from otel_runtime.futures import PrefectFuture, PrefectFutureList

    @task
    def broken() -> None:
        raise KeyError("k")

    @flow
    def inspecting() -> list[object]:
        good, bad = add.submit(1, 1), broken.submit()
        mapped = add.map([1, 2])
        bad.wait()
        return [
            isinstance(good, PrefectFuture),
            (good.state.name, good.state.result()),
            (bad.state.type.value, bad.state.message),
            type(bad.result(raise_on_failure=False)).__name__,
            isinstance(mapped, PrefectFutureList),
            mapped.result(),
        ]

    assert inspecting() == [
        True,
        ("Completed", 2),
        ("FAILED", "Task run encountered an exception KeyError: 'k'"),
        "KeyError",
        True,
        [1, 2],
    ]
