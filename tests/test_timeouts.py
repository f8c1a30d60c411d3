"""``timeout_seconds``: a run whose attempt exceeds its limit ends ``TimedOut`` on its span, with
``error.type``, a ``timeout`` event and a ``TimeoutError`` in the caller."""

from __future__ import annotations

import asyncio
import signal
import time
from typing import Any

import pytest
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import StatusCode

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime.exceptions import FlowRunTimeoutError, TaskRunTimeoutError
from otel_runtime.testing import CapturedSpans


def _events(span: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


# pytest-timeout's default method holds SIGALRM during a test, which (as any program's alarm) sends our
# limits to the thread mechanism; tests of the main-thread alarm run with its thread method instead.
MAIN_THREAD_ALARM = pytest.mark.timeout(120, method="thread")


@MAIN_THREAD_ALARM
def test_a_timed_out_task_span_says_timed_out_with_error_type_and_a_timeout_event(
    spans: CapturedSpans,
) -> None:
    """The span ends FAILED / TimedOut, status ERROR, error.type the timeout class, one ``timeout``
    event naming the limit and the attempt; the caller gets ``TaskRunTimeoutError``."""

    @task(timeout_seconds=0.2)
    def stuck() -> None:
        time.sleep(3)

    started = time.monotonic()
    with pytest.raises(TaskRunTimeoutError, match=r"Scope timed out after 0\.2 second\(s\)\."):
        stuck()
    assert time.monotonic() - started < 2.5  # the sleep was cut short (main thread)
    span = spans.find("task stuck")
    attributes = dict(span.attributes or {})
    assert attributes[_keys.TASK_RUN_STATE_TYPE] == "FAILED"
    assert attributes[_keys.TASK_RUN_STATE_NAME] == "TimedOut"
    assert attributes[ERROR_TYPE] == "otel_runtime.exceptions.TaskRunTimeoutError"
    assert span.status.status_code is StatusCode.ERROR
    timeouts = [attrs for name, attrs in _events(span) if name == _keys.TIMEOUT_EVENT]
    assert timeouts == [{_keys.TIMEOUT_SECONDS: 0.2, _keys.TIMEOUT_ATTEMPT: 1}]


def test_an_async_flow_times_out_at_its_next_await(spans: CapturedSpans) -> None:
    """An async flow over its limit is cancelled at an await and raises ``FlowRunTimeoutError``."""

    @flow(timeout_seconds=0.2)
    async def waits() -> None:
        await asyncio.sleep(3)

    with pytest.raises(FlowRunTimeoutError):
        asyncio.run(waits())
    attributes = dict(spans.find("flow waits").attributes or {})
    assert attributes[_keys.FLOW_RUN_STATE_NAME] == "TimedOut"
    assert attributes[ERROR_TYPE] == "otel_runtime.exceptions.FlowRunTimeoutError"


@MAIN_THREAD_ALARM
def test_each_attempt_has_its_own_limit_and_a_timed_out_attempt_is_retried(spans: CapturedSpans) -> None:
    """With retries, a timed-out attempt is followed by a ``retry`` event; the next attempt succeeds."""
    calls: list[int] = []

    @task(timeout_seconds=0.2, retries=1)
    def first_attempt_hangs() -> str:
        calls.append(1)
        if len(calls) == 1:
            time.sleep(3)
        return "ok"

    assert first_attempt_hangs() == "ok"
    span = spans.find("task first_attempt_hangs")
    assert [name for name, _ in _events(span)] == ["timeout", "exception", "retry"]
    assert dict(span.attributes or {})[_keys.TASK_RUN_STATE_NAME] == "Completed"


def test_a_task_in_a_worker_thread_times_out_after_its_blocking_call(spans: CapturedSpans) -> None:
    """Off the main thread the limit takes effect at the run's next Python instruction (Prefect's
    documented behaviour for ThreadPoolTaskRunner workers): the run ends TimedOut, not Completed."""
    after_sleep: list[bool] = []

    @task(timeout_seconds=0.1)
    def busy() -> str:
        time.sleep(0.4)
        after_sleep.append(True)  # the limit has passed: this line does not run to its end
        return "late"

    @flow
    def submits() -> str:
        future = busy.submit()
        future.wait()
        return future.state.name

    assert submits() == "TimedOut"
    assert dict(spans.find("task busy").attributes or {})[_keys.TASK_RUN_STATE_NAME] == "TimedOut"
    assert after_sleep == []


@MAIN_THREAD_ALARM
def test_a_flow_limit_cuts_the_task_running_in_it(spans: CapturedSpans) -> None:
    """The flow's limit passes while a task without one of its own runs: the task is cut off
    (Cancelled) and the flow ends TimedOut, raising ``FlowRunTimeoutError``."""

    @task
    def long_step() -> None:
        time.sleep(3)

    @flow(timeout_seconds=0.2)
    def bounded() -> None:
        long_step()

    with pytest.raises(FlowRunTimeoutError):
        bounded()
    assert dict(spans.find("flow bounded").attributes or {})[_keys.FLOW_RUN_STATE_NAME] == "TimedOut"
    assert dict(spans.find("task long_step").attributes or {})[_keys.TASK_RUN_STATE_TYPE] == "CANCELLED"


def test_a_program_s_own_sigalrm_handler_is_left_alone(spans: CapturedSpans) -> None:
    """A program that handles SIGALRM keeps its handler: the limit uses the thread mechanism instead,
    and the program's handler is never called by it."""
    called: list[int] = []

    def program_handler(signum: int, frame: Any) -> None:
        called.append(signum)

    previous = signal.signal(signal.SIGALRM, program_handler)
    try:

        @task(timeout_seconds=0.1)
        def spins() -> None:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # Python instructions: the thread mechanism can stop it
                pass

        with pytest.raises(TaskRunTimeoutError):
            spins()
        assert signal.getsignal(signal.SIGALRM) is program_handler
        assert called == []
    finally:
        signal.signal(signal.SIGALRM, previous)


@MAIN_THREAD_ALARM
def test_our_alarm_handler_is_removed_after_the_run(spans: CapturedSpans) -> None:
    """After a timed run on the main thread, SIGALRM's handler and timer are as they were."""
    before = signal.getsignal(signal.SIGALRM)

    @task(timeout_seconds=5)
    def quick() -> int:
        return 1

    assert quick() == 1
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_user_timeout_error_also_ends_the_run_timed_out(spans: CapturedSpans) -> None:
    """As in Prefect, any ``TimeoutError`` ending a run names its state TimedOut ("failed due to
    timeout"), with or without ``timeout_seconds``."""

    @task
    def raises_timeout() -> None:
        raise TimeoutError("socket read")

    state = raises_timeout(return_state=True)
    assert (state.type.value, state.name) == ("FAILED", "TimedOut")
    assert state.message == "Task run failed due to timeout: TimeoutError('socket read')"
    assert dict(spans.find("task raises_timeout").attributes or {})[_keys.TASK_RUN_STATE_NAME] == "TimedOut"


def test_timeout_seconds_is_validated_and_zero_means_none() -> None:
    """A negative limit is refused at decoration; 0 (or None) means no limit, as in Prefect."""
    with pytest.raises(ValueError, match="timeout_seconds"):

        @task(timeout_seconds=-1)
        def never() -> None: ...

    @task(timeout_seconds=0)
    def unlimited() -> int:
        return 2

    assert unlimited.timeout_seconds is None
    assert unlimited() == 2
