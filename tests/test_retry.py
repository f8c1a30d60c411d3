"""Retry options on the span: ``retry_condition_fn`` decisions, jitter, delays from a callable."""

from __future__ import annotations

from typing import Any

import pytest

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime.states import State
from otel_runtime.tasks import exponential_backoff
from otel_runtime.testing import CapturedSpans


def _events(span: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(event.name, dict(event.attributes or {})) for event in span.events]


def test_a_declining_condition_ends_the_run_with_a_retry_declined_event(spans: CapturedSpans) -> None:
    """The condition sees (task, task run, a Failed state holding the exception); when it says no, the
    span has a ``retry.declined`` event naming it, and no ``retry`` event."""
    seen: list[tuple[str, int, str, str]] = []

    def only_on_value_error(tsk: Any, task_run: Any, state: State[Any]) -> bool:
        seen.append(
            (
                tsk.name,
                task_run.run_count,
                state.type.value,
                type(state.result(raise_on_failure=False)).__name__,
            )
        )
        return isinstance(state.result(raise_on_failure=False), ValueError)

    @task(retries=3, retry_condition_fn=only_on_value_error)
    def flaky() -> None:
        raise KeyError("no such row")

    with pytest.raises(KeyError):
        flaky()
    assert seen == [("flaky", 1, "FAILED", "KeyError")]
    span = spans.find("task flaky")
    assert [name for name, _ in _events(span)] == ["retry.declined", "exception"]
    declined = _events(span)[0][1]
    assert declined == {
        _keys.RETRY_FAILED_ATTEMPT: 1,
        _keys.RETRY_CONDITION: "only_on_value_error",
        _keys.RETRY_DECLINED_REASON: _keys.RETRY_DECLINED_BY_CONDITION,
    }
    assert dict(span.attributes or {}).get(_keys.TASK_RUN_RUN_COUNT, 1) == 1


def test_an_allowing_condition_is_named_on_each_retry_event(spans: CapturedSpans) -> None:
    """Each retry the condition allowed names it on the ``retry`` event."""
    calls: list[int] = []

    @task(retries=2, retry_condition_fn=lambda tsk, run, state: True)
    def twice() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("again")
        return "third time"

    assert twice() == "third time"
    retries = [attrs for name, attrs in _events(spans.find("task twice")) if name == _keys.RETRY_EVENT]
    assert [attrs[_keys.RETRY_CONDITION] for attrs in retries] == ["<lambda>", "<lambda>"]


def test_a_raising_condition_is_a_no_with_its_reason_on_the_span(spans: CapturedSpans) -> None:
    """A condition that raises stops the retries (logged, as Prefect does) and the span says why."""

    def broken(tsk: Any, run: Any, state: Any) -> bool:
        raise RuntimeError("bug in the condition")

    @task(retries=2, retry_condition_fn=broken)
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    declined = [
        attrs for name, attrs in _events(spans.find("task fails")) if name == _keys.RETRY_DECLINED_EVENT
    ]
    assert declined[0][_keys.RETRY_DECLINED_REASON] == _keys.RETRY_DECLINED_CONDITION_RAISED


def test_an_async_condition_is_awaited(spans: CapturedSpans) -> None:
    """A coroutine function as ``retry_condition_fn`` is awaited (here from a sync task run)."""

    async def never(tsk: Any, run: Any, state: Any) -> bool:
        return False

    @task(retries=2, retry_condition_fn=never)
    def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        fails()
    assert [name for name, _ in _events(spans.find("task fails"))] == ["retry.declined", "exception"]


def test_jitter_keeps_each_delay_within_its_bounds_and_records_the_base(spans: CapturedSpans) -> None:
    """With ``retry_jitter_factor=f`` each delay lies in [d(1-f), d(1+f)]; the event keeps d."""
    calls: list[int] = []

    @task(retries=3, retry_delay_seconds=[0.01, 0.02, 0.04], retry_jitter_factor=0.5)
    def jittered() -> None:
        calls.append(1)
        raise RuntimeError("x")

    with pytest.raises(RuntimeError):
        jittered()
    retries = [attrs for name, attrs in _events(spans.find("task jittered")) if name == _keys.RETRY_EVENT]
    assert [attrs[_keys.RETRY_BASE_DELAY_SECONDS] for attrs in retries] == [0.01, 0.02, 0.04]
    for attrs in retries:
        base = attrs[_keys.RETRY_BASE_DELAY_SECONDS]
        assert base * 0.5 <= attrs[_keys.RETRY_DELAY_SECONDS] <= base * 1.5


def test_delays_from_exponential_backoff_are_kept_as_a_list() -> None:
    """A callable ``retry_delay_seconds`` is called with the retry count once, at decoration."""

    @task(retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=2))
    def backing_off() -> None: ...

    assert backing_off.retry_delay_seconds == [2, 4, 8, 16]
    assert backing_off.with_options(retries=1).retry_delay_seconds == [2, 4, 8, 16]


def test_retry_options_are_checked_at_decoration() -> None:
    """Prefect's checks: a negative jitter factor and more than 50 delays are refused."""
    with pytest.raises(ValueError, match="retry_jitter_factor"):
        task(retries=1, retry_jitter_factor=-1)(lambda: None)
    with pytest.raises(ValueError, match="50 retry delays"):
        task(retries=1, retry_delay_seconds=[1] * 51)(lambda: None)
    with pytest.raises(TypeError, match="retry_condition_fn"):
        task(retries=1, retry_condition_fn="yes")(lambda: None)  # type: ignore[arg-type]


def test_flows_take_a_timeout_but_keep_prefect_s_retry_keywords() -> None:
    """Flows take ``timeout_seconds``; ``retry_condition_fn`` and jitter are task options, as in Prefect."""
    with pytest.raises(TypeError):
        flow(retry_condition_fn=lambda *a: True)  # type: ignore[call-overload]
