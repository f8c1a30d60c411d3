"""Your program comes first: telemetry trouble and odd settings never change what a flow returns.

- a span processor that raises when a span starts or ends (a real SDK ``TracerProvider`` with such a
  processor installed) leaves results and exceptions as the function gave them;
- invalid retry settings are refused when the function is decorated, with a ``ValueError`` naming the
  setting, instead of a ``ValueError`` replacing the function's own exception at its first failure;
- a task run that submits another task run after the flow started waiting for its task runs: the flow
  waits for that one too;
- a bad ``OTEL_RUNTIME__*`` override (set in a real child process's environment) never makes an accessor
  raise: one warning, and the real value.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from otel_runtime import flow, runtime, task
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.testing import CapturedSpans


class Raising(SpanProcessor):
    """A span processor that raises on span start, on span end, or both."""

    def __init__(self, *, on_start: bool = False, on_end: bool = False) -> None:
        self.raise_on_start = on_start
        self.raise_on_end = on_end

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        if self.raise_on_start:
            raise RuntimeError("a span processor broke on start")

    def on_end(self, span: ReadableSpan) -> None:
        if self.raise_on_end:
            raise RuntimeError("a span processor broke on end")


@task
def add(a: int, b: int) -> int:
    return a + b


@flow
def answer() -> int:
    return add(20, 1) * 2


@flow
def broken() -> None:
    add(1, 1)
    raise KeyError("the flow's own error")


@flow
async def answer_async() -> int:
    return add(20, 1) * 2


@pytest.mark.parametrize("where", ["start", "end", "both"])
def test_a_span_processor_that_raises_changes_no_result_and_no_exception(
    where: str, spans: CapturedSpans
) -> None:
    """With a processor raising in ``on_start``, ``on_end`` or both: a flow returns 42 (sync and async),
    a failing flow raises its own ``KeyError``, not the processor's ``RuntimeError``; the context is clean
    afterwards; with only ``on_end`` raising, the processors before it still got every span."""
    spans.provider.add_span_processor(Raising(on_start=where != "end", on_end=where != "start"))
    assert answer() == 42
    assert asyncio.run(answer_async()) == 42
    with pytest.raises(KeyError, match="the flow's own error"):
        broken()
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    assert runtime.flow_run.id is None
    if where == "end":
        names = sorted(span.name for span in spans.spans)
        assert names == [
            "flow answer",
            "flow answer_async",
            "flow broken",
            "task add",
            "task add",
            "task add",
        ]


INVALID_RETRY_SETTINGS: list[tuple[dict[str, Any], str]] = [
    ({"retries": 1, "retry_delay_seconds": -1}, "retry_delay_seconds"),
    ({"retries": 2, "retry_delay_seconds": [1, -0.5]}, "retry_delay_seconds"),
    ({"retries": 1, "retry_delay_seconds": math.nan}, "retry_delay_seconds"),
    ({"retries": 1, "retry_delay_seconds": math.inf}, "retry_delay_seconds"),
    ({"retries": -1}, "retries"),
    ({"retries": 1.5}, "retries"),
]


@pytest.mark.parametrize("decorator", [task, flow], ids=["task", "flow"])
@pytest.mark.parametrize(("settings", "named"), INVALID_RETRY_SETTINGS)
def test_invalid_retry_settings_are_refused_at_decoration(
    decorator: Any, settings: dict[str, Any], named: str
) -> None:
    """``retry_delay_seconds=-1`` (or a negative delay in a list, NaN, infinity), ``retries=-1`` or
    ``retries=1.5``: ``ValueError`` naming the setting when the function is decorated, before any run."""

    def function() -> None:
        raise ConnectionError("the function's own error")

    with pytest.raises(ValueError, match=named):
        decorator(**settings)(function)


def test_valid_retry_delays_still_retry_and_raise_the_functions_own_error() -> None:
    """``retry_delay_seconds=0`` and a list of delays are fine: the last attempt's own error comes out."""
    attempts = []

    @task(retries=2, retry_delay_seconds=[0, 0.0])
    def flaky() -> None:
        attempts.append(1)
        raise ConnectionError("the function's own error")

    with pytest.raises(ConnectionError, match="own error"):
        flaky()
    assert len(attempts) == 3


def test_a_task_submitted_by_a_task_run_after_the_flow_started_waiting_is_waited_for(
    spans: CapturedSpans,
) -> None:
    """A task run waits until its flow's body has returned (the flow is waiting for its task runs), then
    submits another task run: the flow returns only after that one finished, and its span ends inside
    the flow's span, under the task run that submitted it."""
    returned = threading.Event()
    finished: list[str] = []

    @task
    def late() -> None:
        time.sleep(0.3)
        finished.append("late")

    @task
    def early() -> None:
        assert returned.wait(10)
        time.sleep(0.2)  # the flow is in its wait for task runs by now
        late.submit()

    @flow
    def waits() -> int:
        early.submit()
        returned.set()
        return 42

    assert waits() == 42
    assert finished == ["late"]
    by_name = {span.name: span for span in spans.spans}
    flow_span, early_span, late_span = by_name["flow waits"], by_name["task early"], by_name["task late"]
    assert late_span.end_time is not None and flow_span.end_time is not None
    assert late_span.end_time <= flow_span.end_time
    assert late_span.parent is not None and early_span.context is not None
    assert late_span.parent.span_id == early_span.context.span_id


OVERRIDES = textwrap.dedent(
    """
    import json
    from otel_runtime import flow, runtime

    def read():
        return {
            "run_count": runtime.flow_run.run_count,
            "task_run_count": runtime.task_run.run_count,
            "scheduled": str(type(runtime.flow_run.scheduled_start_time).__name__),
            "name": runtime.flow_run.name,
        }

    @flow
    def inside():
        return read()

    print(json.dumps({"outside": read(), "again": read(), "inside": inside()}))
    """
)


def test_a_bad_override_is_dropped_with_one_warning_and_never_raises(tmp_path: Path) -> None:
    """``OTEL_RUNTIME__FLOW_RUN__RUN_COUNT=abc``, ``..._SCHEDULED_START_TIME=yesterday`` and
    ``PREFECT__RUNTIME__TASK_RUN__RUN_COUNT=1e999`` in a child process: every read, outside and inside a
    run, answers with the real value; one warning per attribute, however often it is read; a good
    override next to them still applies."""
    (tmp_path / "overrides.py").write_text(OVERRIDES)
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PREFECT_"))}
    env.update(
        {
            "OTEL_RUNTIME__FLOW_RUN__RUN_COUNT": "abc",
            "OTEL_RUNTIME__FLOW_RUN__SCHEDULED_START_TIME": "yesterday",
            "PREFECT__RUNTIME__TASK_RUN__RUN_COUNT": "1e999",
            "OTEL_RUNTIME__FLOW_RUN__NAME": "forced",
            "OTEL_TRACES_EXPORTER": "none",
            "OTEL_LOGS_EXPORTER": "none",
        }
    )
    result = subprocess.run(
        [sys.executable, "overrides.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (
        seen["outside"]
        == seen["again"]
        == {
            "run_count": 0,
            "task_run_count": 0,
            "scheduled": "datetime",
            "name": "forced",
        }
    )
    assert seen["inside"] == {"run_count": 1, "task_run_count": 0, "scheduled": "datetime", "name": "forced"}
    warnings = [line for line in result.stderr.splitlines() if "ignores the override" in line]
    assert len(warnings) == 3, result.stderr
    assert any("flow_run.run_count: 'abc' is not a int" in line for line in warnings)
