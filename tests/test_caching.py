"""Task caching on runs and spans: hits return the stored value without running, as state ``Cached``
with a hashed key and a link to the run that stored it; misses say they stored; bad keys and values
never break the run; concurrent runs of one key all get whole values."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime._engine.cache_keys import cache_key_digest
from otel_runtime._engine.result_store import result_store
from otel_runtime.cache_policies import INPUTS, TASK_SOURCE
from otel_runtime.task_runners import ProcessPoolTaskRunner
from otel_runtime.tasks import task_input_hash
from otel_runtime.testing import CapturedSpans

calls: list[Any] = []


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test caches in its own working directory, with no record in memory and no call counted."""
    monkeypatch.chdir(tmp_path)
    result_store.memory.clear()
    calls.clear()
    yield tmp_path / ".otel_runtime" / "cache"
    result_store.memory.clear()


def task_spans(spans: CapturedSpans, name: str) -> list[ReadableSpan]:
    return sorted(spans.named(f"task {name}"), key=lambda span: span.start_time or 0)


@task(cache_policy=INPUTS)
def square(x: int) -> int:
    calls.append(x)
    return x * x


def test_a_hit_returns_the_stored_value_without_running_as_state_cached(spans: CapturedSpans) -> None:
    """The second call with the same input does not run the body; its span is ``COMPLETED`` /
    ``Cached`` with the key's digest and outcome ``hit``; the first says ``stored``."""
    assert square(3) == 9
    assert square(3) == 9
    assert square(4) == 16
    assert calls == [3, 4]
    first, second, other = task_spans(spans, "square")
    assert first.attributes[_keys.CACHE_OUTCOME] == _keys.CACHE_OUTCOME_STORED
    assert first.attributes[_keys.TASK_RUN_STATE_NAME] == "Completed"
    assert second.attributes[_keys.CACHE_OUTCOME] == _keys.CACHE_OUTCOME_HIT
    assert (second.attributes[_keys.TASK_RUN_STATE_TYPE], second.attributes[_keys.TASK_RUN_STATE_NAME]) == (
        "COMPLETED",
        "Cached",
    )
    assert first.attributes[_keys.CACHE_KEY] == second.attributes[_keys.CACHE_KEY]
    assert other.attributes[_keys.CACHE_KEY] != first.attributes[_keys.CACHE_KEY]
    assert len(str(first.attributes[_keys.CACHE_KEY])) == 32


def test_a_hit_links_to_the_span_of_the_run_that_stored_the_value(spans: CapturedSpans) -> None:
    """The ``Cached`` run's span has a ``cache`` link to the storing run's span and task run id."""
    square(5)
    square(5)
    origin, hit = task_spans(spans, "square")
    assert [link.context.span_id for link in hit.links] == [origin.context.span_id]
    link = hit.links[0]
    assert link.context.trace_id == origin.context.trace_id
    assert link.attributes is not None
    assert link.attributes[_keys.LINK_KIND] == _keys.LINK_KIND_CACHE
    assert link.attributes[_keys.LINK_TASK_RUN_ID] == origin.attributes[_keys.TASK_RUN_ID]
    assert origin.links == ()


def test_the_span_shows_a_digest_of_the_key_never_the_key_or_inputs(spans: CapturedSpans) -> None:
    """A ``cache_key_fn`` that spells an input in its key: the span has only the key's digest."""

    @task(cache_key_fn=lambda context, parameters: f"card-{parameters['card']}", record_parameters=False)
    def charge(card: str) -> str:
        return "ok"

    charge("4111111111111111")
    charge("4111111111111111")
    for span in task_spans(spans, "charge"):
        values = [str(value) for value in (span.attributes or {}).values()]
        assert not any("4111111111111111" in value for value in values)
        assert span.attributes[_keys.CACHE_KEY] == cache_key_digest("card-4111111111111111")


def test_return_state_and_futures_see_the_cached_state() -> None:
    """``return_state=True`` and ``future.state`` give ``Cached`` (type ``COMPLETED``) with the value,
    printed as Prefect prints it."""

    @flow
    def both() -> tuple[Any, Any]:
        square(6)
        future = square.submit(6)
        future.wait()
        return square(6, return_state=True), future.state

    direct, submitted = both()
    for state in (direct, submitted):
        assert (state.type.value, state.name, state.result()) == ("COMPLETED", "Cached", 36)
    assert str(direct) == "Cached(type=COMPLETED)"
    assert calls == [6]


def test_completion_hooks_run_for_a_cached_run() -> None:
    """An ``on_completion`` hook sees the ``Cached`` state of a hit."""
    seen: list[str] = []

    @task(cache_policy=INPUTS, on_completion=[lambda task, run, state: seen.append(state.name)])
    def hooked(x: int) -> int:
        return x

    hooked(1)
    hooked(1)
    assert seen == ["Completed", "Cached"]


def test_async_tasks_are_cached_too(spans: CapturedSpans) -> None:
    """An async task with a policy is answered from the cache on its second await."""

    @task(cache_policy=INPUTS)
    async def fetch(x: int) -> int:
        calls.append(("fetch", x))
        await asyncio.sleep(0)
        return x + 1

    async def main() -> list[int]:
        return [await fetch(1), await fetch(1)]

    assert asyncio.run(main()) == [2, 2]
    assert calls == [("fetch", 1)]
    assert task_spans(spans, "fetch")[1].attributes[_keys.TASK_RUN_STATE_NAME] == "Cached"


def test_a_failed_run_stores_nothing_and_its_retry_can(spans: CapturedSpans) -> None:
    """A run that fails is not cached (outcome ``miss``); a later run that completes is."""
    attempts: list[int] = []

    @task(cache_policy=INPUTS)
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) == 1:
            raise ValueError("first time")
        return x

    with pytest.raises(ValueError, match="first time"):
        flaky(1)
    assert flaky(1) == 1
    assert flaky(1) == 1
    assert attempts == [1, 1]
    outcomes = [span.attributes[_keys.CACHE_OUTCOME] for span in task_spans(spans, "flaky")]
    assert outcomes == ["miss", "stored", "hit"]


def test_expired_values_and_refresh_cache_run_again(spans: CapturedSpans) -> None:
    """``cache_expiration`` in the past never hits; ``refresh_cache=True`` runs and stores anew, and
    the next plain task with that key hits the refreshed value."""

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=-1))
    def stale(x: int) -> int:
        calls.append("stale")
        return x

    @task(cache_key_fn=lambda context, parameters: "shared", refresh_cache=True)
    def refresher(x: int) -> int:
        calls.append("refresher")
        return x

    @task(cache_key_fn=lambda context, parameters: "shared")
    def reader(x: int) -> int:
        calls.append("reader")
        return -1

    stale(1), stale(1)
    refresher(1), refresher(2)
    assert reader(0) == 2  # the refreshed value
    assert calls == ["stale", "stale", "refresher", "refresher"]
    assert task_spans(spans, "refresher")[1].attributes[_keys.CACHE_REFRESH] is True
    assert _keys.CACHE_EXPIRES in task_spans(spans, "stale")[0].attributes


def test_unhashable_inputs_mean_no_caching_with_one_warning(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    """A lock among the inputs: the task runs every time, outcome ``no_key``, one warning naming it."""

    @task(cache_policy=INPUTS)
    def locked(x: int, lock: Any) -> int:
        calls.append(x)
        return x

    lock = threading.Lock()
    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        assert [locked(1, lock), locked(1, lock)] == [1, 1]
    assert calls == [1, 1]
    warnings = [record.getMessage() for record in caplog.records if "locked" in record.getMessage()]
    assert len(warnings) == 1 and "could not compute a cache key" in warnings[0]
    assert [span.attributes[_keys.CACHE_OUTCOME] for span in task_spans(spans, "locked")] == ["no_key"] * 2


def test_a_raising_cache_key_fn_means_no_caching_not_an_error() -> None:
    """The task still runs and returns when its ``cache_key_fn`` raises."""

    def broken(context: Any, parameters: dict[str, Any]) -> str:
        raise RuntimeError("no key today")

    @task(cache_key_fn=broken)
    def fine() -> str:
        calls.append("fine")
        return "ok"

    assert [fine(), fine()] == ["ok", "ok"]
    assert calls == ["fine", "fine"]


def test_values_that_cannot_be_pickled_are_returned_but_not_cached(
    spans: CapturedSpans, caplog: pytest.LogCaptureFixture
) -> None:
    """A task returning a lock returns it each time and runs each time; outcome ``not_stored``."""

    @task(cache_policy=INPUTS)
    def make_lock(x: int) -> Any:
        calls.append(x)
        return threading.Lock()

    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        locks = [make_lock(1), make_lock(1)]
    assert all(hasattr(lock, "acquire") for lock in locks) and calls == [1, 1]
    assert sum("cannot be pickled" in record.getMessage() for record in caplog.records) == 1
    assert {span.attributes[_keys.CACHE_OUTCOME] for span in task_spans(spans, "make_lock")} == {"not_stored"}


def test_cache_result_in_memory_false_reads_the_file_each_time(own_cache: Path) -> None:
    """Without the memory layer a hit still returns the value (a fresh copy, read from the file)."""

    @task(cache_policy=INPUTS, cache_result_in_memory=False)
    def listing(x: int) -> list[int]:
        calls.append(x)
        return [x]

    first, second = listing(1), listing(1)
    assert first == second == [1] and first is not second
    assert calls == [1]
    assert len(list(own_cache.iterdir())) == 1


def test_a_task_without_a_policy_leaves_no_trace_of_caching(spans: CapturedSpans, own_cache: Path) -> None:
    """No policy, ``NO_CACHE`` or ``persist_result=False``: every call runs, no cache attribute, no file."""
    from otel_runtime.cache_policies import NO_CACHE

    @task
    def plain(x: int) -> int:
        calls.append(x)
        return x

    @task(cache_policy=NO_CACHE)
    def off(x: int) -> int:
        calls.append(x)
        return x

    plain(1), plain(1), off(2), off(2)
    assert calls == [1, 1, 2, 2]
    for span in task_spans(spans, "plain") + task_spans(spans, "off"):
        assert not any(key.startswith("otel_runtime.cache.") for key in span.attributes or {})
    assert not own_cache.exists()


def test_a_key_storage_directory_holds_the_records(tmp_path: Path) -> None:
    """``policy.configure(key_storage=...)`` files the records in that directory."""
    where = tmp_path / "elsewhere"

    @task(cache_policy=(TASK_SOURCE + INPUTS).configure(key_storage=where))
    def stored_there(x: int) -> int:
        return x

    stored_there(1)
    assert len(list(where.iterdir())) == 1


def test_threads_running_one_key_all_get_the_value(spans: CapturedSpans) -> None:
    """Twenty mapped runs of one input on the thread pool: all return the value; every run either
    stored it or hit it; the file holds it whole for the next process."""

    @task(cache_policy=INPUTS)
    def heavy(x: int) -> bytes:
        return bytes([x]) * 1_000_000

    @flow
    def fan() -> list[bytes]:
        return [future.result() for future in heavy.map([7] * 20)]

    assert fan() == [bytes([7]) * 1_000_000] * 20
    outcomes = {span.attributes[_keys.CACHE_OUTCOME] for span in task_spans(spans, "heavy")}
    assert outcomes <= {"stored", "hit"} and "stored" in outcomes
    result_store.memory.clear()
    assert heavy(7) == bytes([7]) * 1_000_000
    assert task_spans(spans, "heavy")[-1].attributes[_keys.CACHE_OUTCOME] == "hit"


@task(cache_policy=INPUTS)
def in_worker(x: int) -> int:
    return os.getpid()


def test_process_pool_workers_share_the_file_store() -> None:
    """Runs in process-pool workers store and hit the same files: one key, one pid returned by all
    runs after the first stored, and the parent process hits it too."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def in_processes() -> list[int]:
        first = in_worker.submit(1).result()
        return [first, *(future.result() for future in in_worker.map([1] * 6))]

    pids = in_processes()
    assert set(pids) == {pids[0]} and pids[0] != os.getpid()
    assert in_worker(1) == pids[0]


SCRIPT = """
from opentelemetry import trace
from otel_runtime import configure, task
from otel_runtime.cache_policies import INPUTS

configure()  # the embedded default: spans to .otel_runtime/telemetry.jsonl

@task(cache_policy=INPUTS)
def made_elsewhere(x: int) -> str:
    context = trace.get_current_span().get_span_context()
    return f"{context.trace_id:032x} {context.span_id:016x}"

print(made_elsewhere(1))
"""


def test_another_process_hits_the_value_and_links_to_the_span_that_made_it(
    spans: CapturedSpans, tmp_path: Path
) -> None:
    """A value stored by another process (a script run earlier) is a hit in the next process and here,
    linked to the span of the run in the first process; ``OTEL_RUNTIME_CACHE_DIR`` chooses the
    shared directory."""
    shared = tmp_path / "shared-cache"
    script = tmp_path / "made.py"
    script.write_text(SCRIPT, encoding="utf-8")
    env = {**os.environ, "OTEL_SDK_DISABLED": "false", "OTEL_RUNTIME_CACHE_DIR": str(shared)}

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, str(script)], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
        )
        return done.stdout.split()

    trace_hex, span_hex = run()
    assert int(span_hex, 16) != 0
    assert run() == [trace_hex, span_hex]  # the second process got the stored value

    @task(cache_policy=INPUTS.configure(key_storage=shared))
    def made_elsewhere(x: int) -> str:
        return "not run: the value comes from the cache"

    assert made_elsewhere(1).split() == [trace_hex, span_hex]
    (span,) = task_spans(spans, "made_elsewhere")
    assert span.attributes[_keys.TASK_RUN_STATE_NAME] == "Cached"
    assert [(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links] == [
        (trace_hex, span_hex)
    ]


def test_task_input_hash_caches_on_all_inputs() -> None:
    """Prefect's ``cache_key_fn=task_input_hash``: equal arguments hit, others run."""

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
    def hello(name: str) -> str:
        calls.append(name)
        return "hello " + name

    assert [hello("Marvin"), hello("Marvin"), hello("Ford")] == ["hello Marvin"] * 2 + ["hello Ford"]
    assert calls == ["Marvin", "Ford"]


def test_the_trace_tree_shows_a_hit_as_cached(spans: CapturedSpans) -> None:
    """``otel-runtime traces`` draws a cache hit as ``COMPLETED (Cached)``."""
    from otel_runtime._tools.tree import RunInfo, Style

    square(8)
    square(8)
    stored, hit = task_spans(spans, "square")
    style = Style(color=False, unicode=True)
    assert "COMPLETED (Cached) in " in RunInfo.from_span(hit).line(style, show_id=False)
    assert "· COMPLETED in " in RunInfo.from_span(stored).line(style, show_id=False)


def test_with_options_changes_the_cache_options() -> None:
    """``with_options(cache_policy=NO_CACHE)`` makes a copy that always runs; the original still caches."""
    from otel_runtime.cache_policies import NO_CACHE

    uncached = square.with_options(cache_policy=NO_CACHE)
    square(9), square(9), uncached(9), uncached(9)
    assert calls == [9, 9, 9]
    assert square.cache_policy is INPUTS and uncached.cache_policy is NO_CACHE


RACE = """
import os, sys
from otel_runtime import task
from otel_runtime.cache_policies import INPUTS

@task(cache_policy=INPUTS)
def big(x: int) -> bytes:
    return bytes([int(sys.argv[1])]) * 3_000_000

for _ in range(5):
    value = big(1)
    assert len(value) == 3_000_000 and value.count(value[:1]) == len(value), "a torn value"
print(value[0])
"""


def test_processes_racing_on_one_key_each_get_a_whole_value(tmp_path: Path) -> None:
    """Four scripts started together cache one key in one directory: each returns a whole value (its
    own or one another stored), none fails, and the file left is whole."""
    script = tmp_path / "race.py"
    script.write_text(RACE, encoding="utf-8")
    env = {**os.environ, "OTEL_SDK_DISABLED": "true", "OTEL_RUNTIME_CACHE_DIR": str(tmp_path / "c")}
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(n)], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
        )
        for n in range(1, 5)
    ]
    outputs = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0, 0, 0, 0]
    assert set(outputs) <= {"1", "2", "3", "4"}
    (stored,) = list((tmp_path / "c").iterdir())
    result_store.memory.clear()

    @task(cache_policy=INPUTS.configure(key_storage=tmp_path / "c"))
    def big(x: int) -> bytes:
        raise AssertionError("not run: the value is cached")

    value = big(1)
    assert len(value) == 3_000_000 and value.count(value[:1]) == len(value)
    assert stored.name.endswith(".pkl")


def test_a_timed_out_run_is_not_cached_and_the_next_completed_one_is(spans: CapturedSpans) -> None:
    """``timeout_seconds`` applies to a caching task's attempts: a ``TimedOut`` run stores nothing."""
    import time

    @task(cache_policy=INPUTS, timeout_seconds=0.2)
    def slow(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            time.sleep(2)
        return x

    assert slow(1, return_state=True).name == "TimedOut"
    assert slow(1) == 1
    assert slow(1, return_state=True).name == "Cached"
    assert calls == [1, 1]
    outcomes = [span.attributes[_keys.CACHE_OUTCOME] for span in task_spans(spans, "slow")]
    assert outcomes == ["miss", "stored", "hit"]


SERIAL = """
import sys, time
from pathlib import Path
from otel_runtime import task
from otel_runtime.cache_policies import INPUTS

@task(cache_policy=INPUTS.configure(key_storage=sys.argv[1], isolation_level="SERIALIZABLE"))
def once(x: int) -> str:
    with open(Path(sys.argv[1]).parent / "ran.log", "a") as log:
        log.write(sys.argv[2] + "\\n")
    time.sleep(0.3)
    return sys.argv[2]

print(once(1))
"""


def test_serializable_runs_a_key_once_across_processes(tmp_path: Path) -> None:
    """Four processes start one ``SERIALIZABLE`` key together: the body runs once, the other three
    wait for it and return its value."""
    script = tmp_path / "serial.py"
    script.write_text(SERIAL, encoding="utf-8")
    env = {**os.environ, "OTEL_SDK_DISABLED": "true"}
    racers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path / "c"), f"p{n}"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(4)
    ]
    outputs = [racer.communicate(timeout=120)[0].strip() for racer in racers]
    assert [racer.returncode for racer in racers] == [0] * 4
    ran = (tmp_path / "ran.log").read_text().split()
    assert len(ran) == 1 and set(outputs) == set(ran)


def test_serializable_runs_a_key_once_across_threads(spans: CapturedSpans, tmp_path: Path) -> None:
    """Eight threads call one ``SERIALIZABLE`` key: one run stores, seven wait and hit."""
    import time

    @task(cache_policy=INPUTS.configure(key_storage=tmp_path / "s", isolation_level="SERIALIZABLE"))
    def serial(x: int) -> int:
        calls.append(x)
        time.sleep(0.2)
        return x

    threads = [threading.Thread(target=serial, args=(1,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [1]
    outcomes = sorted(str(span.attributes[_keys.CACHE_OUTCOME]) for span in task_spans(spans, "serial"))
    assert outcomes == ["hit"] * 7 + ["stored"]


def test_serializable_async_runs_wait_without_blocking_the_loop(tmp_path: Path) -> None:
    """Async ``SERIALIZABLE`` runs of one key under ``gather``: one runs, the others hit."""

    @task(cache_policy=INPUTS.configure(key_storage=tmp_path / "a", isolation_level="SERIALIZABLE"))
    async def serial_async(x: int) -> int:
        calls.append(x)
        await asyncio.sleep(0.1)
        return x

    async def main() -> list[int]:
        return list(await asyncio.gather(*(serial_async(2) for _ in range(4))))

    assert asyncio.run(main()) == [2] * 4
    assert calls == [2]
