"""Task runners that leave the process: task runs in worker processes, exported there, in the flow's trace.

The workers export their spans over OTLP/HTTP to a loopback ``OtlpReceiver`` (they inherit the
``OTEL_EXPORTER_OTLP_*`` variables set here); the flow span is captured in memory in this process.
"""

from __future__ import annotations

import asyncio
import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from otel_runtime import deployment, flow, runtime, tags, task
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from otel_runtime.testing import CapturedSpans, OtlpReceiver

FORK_WITH_THREADS = "ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"


@task
def where(label: str) -> dict[str, Any]:
    """What a task run sees from the inside, wherever it runs."""
    return {
        "label": label,
        "pid": os.getpid(),
        "has_task_run_context": TaskRunContext.get() is not None,
        "has_flow_run_context": FlowRunContext.get() is not None,
        "flow_run_id": runtime.flow_run.id,
        "flow_run_name": runtime.flow_run.name,
        "task_run_id": runtime.task_run.id,
        "task_run_name": runtime.task_run.name,
        "task_run_tags": runtime.task_run.tags,
        "deployment_name": runtime.deployment.name,
        "deployment_id": runtime.deployment.id,
        "trace_id": runtime.task_run.trace_id,
    }


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
async def slow_double(x: int) -> int:
    await asyncio.sleep(0.01)
    return 2 * x


@pytest.fixture(scope="module")
def receiver() -> Iterator[OtlpReceiver]:
    """One loopback OTLP receiver for the module's worker processes."""
    with OtlpReceiver() as running:
        yield running


@pytest.fixture
def exported(
    receiver: OtlpReceiver, monkeypatch: pytest.MonkeyPatch, export_workers_to: Callable[..., None]
) -> OtlpReceiver:
    """Worker processes started in the test configure() themselves to export to ``receiver``."""
    receiver.clear()
    export_workers_to(monkeypatch, receiver, "otel-runtime-worker")
    return receiver


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


@pytest.mark.parametrize(
    "start_method",
    [pytest.param("fork", marks=pytest.mark.filterwarnings(FORK_WITH_THREADS)), "spawn"],
)
def test_process_pool_task_runs_are_task_runs_in_workers_and_children_of_the_flow_span(
    start_method: str, exported: OtlpReceiver, spans: CapturedSpans
) -> None:
    """With fork and spawn alike, each task run executes in a worker process as a real task run there
    (its own TaskRunContext and task_run.*; flow run, deployment and tags from the carrier, no run
    context object shipped), and its exported span is a child of the flow span in the same trace with
    the flow run and deployment attributes, flushed before the result came back."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2, mp_context=start_method))
    def fan_out() -> tuple[str, list[str], list[dict[str, Any]]]:
        with tags("etl"):
            futures = where.map(["a", "b", "c"])
        return runtime.flow_run.id, [f.task_run_id for f in futures], [f.result() for f in futures]

    with deployment("nightly etl", version="7"):
        flow_run_id, task_run_ids, seen = fan_out()
    received = exported.spans()  # no waiting: workers flush before they return a result

    flow_span = spans.find("flow fan_out")
    assert flow_span.context is not None
    for task_run_id, inside in zip(task_run_ids, seen, strict=True):
        assert inside["pid"] != os.getpid()
        assert inside["has_task_run_context"] and not inside["has_flow_run_context"]
        assert inside["task_run_id"] == task_run_id
        assert inside["task_run_name"].startswith("where-")
        assert inside["task_run_tags"] == ["etl"]
        assert inside["flow_run_id"] == flow_run_id
        assert inside["flow_run_name"] == flow_span.attributes["flow_run.name"]
        assert inside["deployment_name"] == "nightly etl"
        assert inside["deployment_id"] == flow_span.attributes["deployment.id"]
        assert inside["trace_id"] == _hex(flow_span.context.trace_id, 32)

    task_spans = sorted((s for s in received if s["name"] == "task where"), key=lambda s: s["start_ns"])
    assert len(task_spans) == 3
    assert {s["attributes"]["task_run.id"] for s in task_spans} == set(task_run_ids)
    for span in task_spans:
        assert span["trace_id"] == _hex(flow_span.context.trace_id, 32)
        assert span["parent_span_id"] == _hex(flow_span.context.span_id, 16)
        assert span["attributes"]["flow_run.id"] == flow_run_id
        assert span["attributes"]["deployment.name"] == "nightly etl"
        assert span["attributes"]["deployment.id"] == flow_span.attributes["deployment.id"]
        assert span["attributes"]["task_run.tags"] == ["etl"]
        assert span["resource"]["service.name"] == "otel-runtime-worker"
    assert not spans.named("task where"), "the task runs ran here instead of in the workers"


@pytest.mark.filterwarnings(FORK_WITH_THREADS)
def test_process_pool_workers_append_to_the_default_telemetry_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spans: CapturedSpans
) -> None:
    """Without an OTLP endpoint, workers configure() the embedded default: their spans are appended as
    OTLP/JSON lines to the telemetry file, children of the flow span."""
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    telemetry_file = tmp_path / "telemetry.jsonl"
    monkeypatch.setenv("OTEL_RUNTIME_TELEMETRY_FILE", str(telemetry_file))

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2, mp_context="fork"))
    def to_file() -> list[int]:
        return [future.result() for future in add.map([1, 2, 3], 1)]

    assert to_file() == [2, 3, 4]
    flow_span = spans.find("flow to_file")
    assert flow_span.context is not None
    written = [span for record in read_records(telemetry_file) for span in iter_spans(record)]
    assert [span["name"] for span in written] == ["task add"] * 3
    assert {span["parent_span_id"] for span in written} == {_hex(flow_span.context.span_id, 16)}


@pytest.mark.filterwarnings(FORK_WITH_THREADS)
def test_process_pool_resolves_upstream_futures_and_reraises_task_errors(
    exported: OtlpReceiver, spans: CapturedSpans
) -> None:
    """A future passed to a submitted task is resolved first and its value shipped; a task that fails
    in a worker raises its exception from .result() here, and its exported span has status ERROR."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2, mp_context="fork"))
    def chained() -> tuple[int, BaseException | None]:
        total = add.submit(add.submit(1, 2), add.submit(3, 4))
        failure = fail.submit("boom")
        return total.result(), failure.exception()

    total, error = chained()
    assert total == 10
    assert isinstance(error, ValueError) and str(error) == "boom"
    received = exported.spans()
    flow_span = spans.find("flow chained")
    assert flow_span.context is not None
    assert sorted(s["name"] for s in received) == ["task add", "task add", "task add", "task fail"]
    assert {s["parent_span_id"] for s in received} == {_hex(flow_span.context.span_id, 16)}
    (failed,) = (s for s in received if s["name"] == "task fail")
    assert failed["status_code"] == 2 and failed["status_message"] == "boom"


@pytest.mark.filterwarnings(FORK_WITH_THREADS)
def test_process_pool_runs_async_tasks_in_an_event_loop_of_the_worker(exported: OtlpReceiver) -> None:
    """An async task submitted to the process pool runs to completion in the worker."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1, mp_context="fork"))
    def doubled() -> list[int]:
        return [future.result() for future in slow_double.map([1, 2, 3])]

    assert doubled() == [2, 4, 6]
    assert [s["name"] for s in exported.spans()] == ["task slow_double"] * 3


def test_task_pickles_by_reference_to_its_module_level_name() -> None:
    """A module-level task pickles as a reference and unpickles to the very same Task object."""
    assert pickle.loads(pickle.dumps(where)) is where


def test_task_that_no_worker_could_import_fails_at_submit_in_the_caller() -> None:
    """A task defined inside a function cannot reach a worker: submit raises PicklingError saying why."""

    @task
    def local() -> int:
        return 1

    with pytest.raises(pickle.PicklingError, match="define it with @task at module level"):
        pickle.dumps(local)

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def submits_local() -> None:
        local.submit()

    with pytest.raises(pickle.PicklingError, match="local"):
        submits_local()


def test_runners_duplicate_with_the_same_settings() -> None:
    """Each flow run gets a fresh runner with its flow's settings."""
    runner = ProcessPoolTaskRunner(max_workers=3, mp_context="spawn", configure_worker=None)
    copy = runner.duplicate()
    assert copy is not runner
    assert (copy.max_workers, copy.mp_context, copy.configure_worker) == (3, "spawn", None)
    assert repr(copy) == "ProcessPoolTaskRunner(max_workers=3, mp_context='spawn')"
    assert ThreadPoolTaskRunner(4).duplicate().max_workers == 4
