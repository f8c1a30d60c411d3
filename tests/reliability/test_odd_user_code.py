"""User code that does odd things: every run still ends its span, and the context is restored after it.

Generators and async generators as tasks (drained, abandoned, closed early, failing), a task that
catches ``BaseException``, a flow that calls ``sys.exit``, an exception whose ``__str__`` is broken,
parameters that cannot be represented, recursion through subflows 50 deep, and a deployment in the
environment that could never travel in baggage.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage
from opentelemetry.context import get_current
from opentelemetry.trace import StatusCode

from otel_runtime import flow, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.testing import CapturedSpans


def assert_restored() -> None:
    """Outside any run: no run context, no baggage, empty accessors."""
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    assert dict(baggage.get_all(get_current())) == {}
    assert runtime.flow_run.id is None and runtime.task_run.id is None and runtime.deployment.id is None


def assert_all_ended(spans: CapturedSpans, count: int) -> None:
    assert len(spans.spans) == count, [span.name for span in spans.spans]
    assert all(span.end_time is not None for span in spans.spans)


# -- generators ----------------------------------------------------------------------------------------


@task
def numbers(n: int) -> Iterator[int]:
    for index in range(n):
        assert runtime.task_run.id is not None  # the task run is active while the body runs
        yield index


@task
def failing_numbers() -> Iterator[int]:
    yield 1
    raise ValueError("generator broke")


@flow
def uses_generators() -> dict[str, Any]:
    seen: dict[str, Any] = {"drained": list(numbers(3))}
    early = numbers(10)
    seen["first"] = next(early)
    seen["between"] = (runtime.flow_run.id is not None, runtime.task_run.id)  # not the generator's
    early.close()
    abandoned = numbers(10)
    next(abandoned)
    del abandoned
    gc.collect()
    try:
        list(failing_numbers())
    except ValueError as error:
        seen["error"] = str(error)
    seen["after"] = runtime.task_run.id
    return seen


def test_generator_tasks_drained_closed_abandoned_or_failing_end_their_spans(spans: CapturedSpans) -> None:
    """A generator task's run is active only while its body runs: between items the flow sees no task
    run. Drained, closed early, abandoned (collected) or failing, each ends its span: OK for the first
    three, ERROR with the exception for the last; afterwards the context is as before."""
    seen = uses_generators()
    assert seen == {
        "drained": [0, 1, 2],
        "first": 0,
        "between": (True, None),
        "error": "generator broke",
        "after": None,
    }
    assert_all_ended(spans, 5)
    failed = spans.find("task failing_numbers")
    assert failed.status.status_code is StatusCode.ERROR
    assert failed.status.description == "generator broke"
    assert [span.status.status_code for span in spans.named("task numbers")] == [StatusCode.UNSET] * 3
    assert_restored()


@task
async def async_numbers(n: int) -> AsyncIterator[int]:
    for index in range(n):
        await asyncio.sleep(0)
        assert runtime.task_run.id is not None
        yield index


@task
async def failing_async_numbers() -> AsyncIterator[int]:
    yield 1
    raise ValueError("async generator broke")


@flow
async def uses_async_generators() -> dict[str, Any]:
    seen: dict[str, Any] = {"drained": [item async for item in async_numbers(3)]}
    early = async_numbers(10)
    seen["first"] = await early.__anext__()
    seen["between"] = runtime.task_run.id
    await early.aclose()
    try:
        async for _ in failing_async_numbers():
            pass
    except ValueError as error:
        seen["error"] = str(error)
    seen["after"] = runtime.task_run.id
    return seen


def test_async_generator_tasks_drained_closed_or_failing_end_their_spans(spans: CapturedSpans) -> None:
    """The same for async generator tasks in an async flow: drained, closed early with ``aclose()`` or
    failing, each ends its span and leaves the flow's context as it was."""
    seen = asyncio.run(uses_async_generators())
    assert seen == {
        "drained": [0, 1, 2],
        "first": 0,
        "between": None,
        "error": "async generator broke",
        "after": None,
    }
    assert_all_ended(spans, 4)
    assert spans.find("task failing_async_numbers").status.status_code is StatusCode.ERROR
    assert_restored()


# -- BaseException, sys.exit, broken exceptions ----------------------------------------------------------


@flow
def exits(code: int) -> None:
    sys.exit(code)


@task
def catches_everything() -> dict[str, Any]:
    try:
        exits(3)
    except BaseException as caught:  # the odd user code under test
        return {
            "caught": repr(caught),
            "task_run_id": runtime.task_run.id,
            "task_context": TaskRunContext.get() is not None,
            "flow_run_id": runtime.flow_run.id,
        }
    return {}


@flow
def outer() -> tuple[str | None, dict[str, Any]]:
    return runtime.flow_run.id, catches_everything()


def test_a_task_that_catches_base_exception_from_a_subflow_gets_its_own_context_back(
    spans: CapturedSpans,
) -> None:
    """A subflow that calls ``sys.exit`` inside a task that catches ``BaseException``: the subflow span
    ends with status ERROR ("Cancelled: 3"), and the task, after catching, is back in its own
    task run and its flow run; its span and the flow's end normally."""
    flow_run_id, seen = outer()
    assert seen["caught"] == "SystemExit(3)"
    assert seen["task_context"] and seen["task_run_id"] is not None
    assert seen["flow_run_id"] == flow_run_id
    assert_all_ended(spans, 3)
    subflow = spans.find("flow exits")
    assert subflow.status.status_code is StatusCode.ERROR
    assert subflow.status.description == "Cancelled: 3"
    assert spans.find("task catches_everything").status.status_code is StatusCode.UNSET
    assert spans.find("flow outer").status.status_code is StatusCode.UNSET
    assert_restored()


def test_a_flow_that_calls_sys_exit_raises_system_exit_unchanged_and_ends_its_span(
    spans: CapturedSpans,
) -> None:
    """``sys.exit(4)`` in a flow: the very same ``SystemExit(4)`` reaches the caller, the span ends as
    cancelled, and the context is restored."""
    with pytest.raises(SystemExit) as raised:
        exits(4)
    assert raised.value.code == 4
    assert_all_ended(spans, 1)
    assert spans.find("flow exits").status.description == "Cancelled: 4"
    assert_restored()


EXIT_SCRIPT = textwrap.dedent(
    """
    import sys
    from otel_runtime import configure, flow, task

    @task
    def step() -> int:
        return 1

    @flow
    def job() -> None:
        step()
        sys.exit(3)

    configure(traces_exporter="file", logs_exporter="none", telemetry_file=sys.argv[1])
    job()
    """
)


def test_a_program_whose_flow_calls_sys_exit_exits_with_its_code_and_its_spans_are_written(
    tmp_path: Path,
) -> None:
    """A real program: its flow calls ``sys.exit(3)``. The process exits with code 3, and both spans (the
    flow's, as cancelled) are in the telemetry file: exiting does not lose them."""
    script, telemetry = tmp_path / "exits.py", tmp_path / "telemetry.jsonl"
    script.write_text(EXIT_SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    result = subprocess.run(
        [sys.executable, str(script), str(telemetry)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    written = {span["name"]: span for record in read_records(telemetry) for span in iter_spans(record)}
    assert set(written) == {"flow job", "task step"}
    assert written["flow job"]["status_code"] == 2
    assert written["flow job"]["status_message"] == "Cancelled: 3"


class BrokenMessageError(Exception):
    def __str__(self) -> str:
        raise RuntimeError("__str__ is broken too")


@task
def raises_broken() -> None:
    raise BrokenMessageError


@flow
def calls_broken() -> None:
    raises_broken()


def test_an_exception_with_a_broken_str_propagates_unchanged_and_ends_both_spans(
    spans: CapturedSpans,
) -> None:
    """A task raises an exception whose ``__str__`` raises: the caller gets that very exception, both
    spans end with status ERROR and a description that says the message could not be read."""
    with pytest.raises(BrokenMessageError):
        calls_broken()
    assert_all_ended(spans, 2)
    for span in spans.spans:
        assert span.status.status_code is StatusCode.ERROR
        assert span.status.description == "<exception str() failed>"
        assert (span.attributes or {})["error.type"].endswith("BrokenMessageError")  # type: ignore[union-attr]
    assert_restored()


class NoRepr:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


@task
def takes_odd(value: Any, *rest: Any, **extra: Any) -> int:
    return 1 + len(rest) + len(extra)


@flow
def passes_odd(value: Any) -> int:
    return takes_odd(value, NoRepr(), key=NoRepr())


def test_parameters_that_cannot_be_represented_do_not_break_the_run(spans: CapturedSpans) -> None:
    """Parameters whose ``__repr__`` raises, passed positionally, in ``*args`` and ``**kwargs``: the runs
    complete, their spans say which type could not be represented."""
    assert passes_odd(NoRepr()) == 3
    assert_all_ended(spans, 2)
    attributes = spans.find("task takes_odd").attributes or {}
    assert attributes[f"{_keys.TASK_RUN_PARAMETER_PREFIX}value"] == "<unrepresentable NoRepr>"
    assert attributes[f"{_keys.TASK_RUN_PARAMETER_PREFIX}rest"] == "(<unrepresentable NoRepr>,)"
    assert attributes[f"{_keys.TASK_RUN_PARAMETER_PREFIX}extra"] == "{'key': <unrepresentable NoRepr>}"
    assert_restored()


# -- deep recursion ---------------------------------------------------------------------------------------

DEPTH = 50


@flow
def recurse(depth: int) -> list[str | None]:
    below = recurse(depth - 1) if depth else []
    return [runtime.flow_run.id, *below]


@flow
async def recurse_async(depth: int) -> list[str | None]:
    below = await recurse_async(depth - 1) if depth else []
    return [runtime.flow_run.id, *below]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_subflows_fifty_deep_each_end_and_chain_to_their_parent(kind: str, spans: CapturedSpans) -> None:
    """A flow that calls itself as a subflow 50 times (sync, and async): 51 distinct flow runs, each span
    ended and the child of the one above, each naming its parent run and the one root; context restored."""
    ids = recurse(DEPTH) if kind == "sync" else asyncio.run(recurse_async(DEPTH))
    assert len(set(ids)) == DEPTH + 1
    assert_all_ended(spans, DEPTH + 1)
    by_id = {(span.attributes or {})[_keys.FLOW_RUN_ID]: span for span in spans.spans}
    for parent_id, child_id in itertools.pairwise(ids):
        child, parent = by_id[child_id], by_id[parent_id]
        assert child.parent is not None and parent.context is not None
        assert child.parent.span_id == parent.context.span_id
        assert (child.attributes or {})[_keys.FLOW_RUN_PARENT_ID] == parent_id
        assert (child.attributes or {})[_keys.FLOW_RUN_ROOT_ID] == ids[0]
    assert_restored()


# -- a deployment in the environment that could not travel ------------------------------------------------

DEPLOYMENT_SCRIPT = textwrap.dedent(
    """
    import json, logging
    logging.basicConfig(level=logging.WARNING, format="%(name)s %(levelname)s %(message)r")
    from otel_runtime import flow, runtime
    from otel_runtime.testing import capture_spans

    @flow
    def job(n: int) -> dict:
        return {"flow_run_id": runtime.flow_run.id, "deployment": runtime.deployment.name}

    with capture_spans() as captured:
        seen = [job(1), job(2)]
    print(json.dumps({"seen": seen, "spans": [dict(s.attributes) for s in captured.spans]}))
    """
)


@pytest.mark.parametrize(
    ("name", "deployment_id"),
    [("nightly\nINFO forged line", ""), ("x" * 300, ""), ("nightly", "not an id!")],
    ids=["newline-in-name", "name-too-long", "bad-id"],
)
def test_an_invalid_deployment_in_the_environment_is_ignored_with_one_warning(
    name: str, deployment_id: str, tmp_path: Path
) -> None:
    """``OTEL_RUNTIME_DEPLOYMENT_NAME`` with a newline (or too long, or a bad ``..._ID``) does not turn
    off tracing: every flow run is still traced, without a deployment, and one warning (the bad value
    escaped, not forging a line) says the environment's deployment is ignored."""
    script = tmp_path / "deployed.py"
    script.write_text(DEPLOYMENT_SCRIPT)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment["OTEL_RUNTIME_DEPLOYMENT_NAME"] = name
    if deployment_id:
        environment["OTEL_RUNTIME_DEPLOYMENT_ID"] = deployment_id
    result = subprocess.run(
        [sys.executable, str(script)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert [seen["deployment"] for seen in output["seen"]] == [None, None]
    assert all(seen["flow_run_id"] for seen in output["seen"])
    assert len(output["spans"]) == 2
    assert all(_keys.DEPLOYMENT_NAME not in attributes for attributes in output["spans"])
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1, result.stderr
    assert warnings[0].startswith("otel_runtime WARNING") and "ignores the deployment" in warnings[0]
