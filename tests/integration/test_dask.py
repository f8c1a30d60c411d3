"""DaskTaskRunner on a real LocalCluster of worker processes: task runs there, in the flow's trace.

One cluster for the module (starting one takes a moment). Its workers inherit the
``OTEL_EXPORTER_OTLP_*`` variables set before it starts and export to a loopback ``OtlpReceiver``;
the flow span is captured in memory in this process.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._engine.task_runners import _LOCAL_CLUSTER_DEFAULTS as LOCAL_CLUSTER_DEFAULTS
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.task_runners import DaskTaskRunner
from otel_runtime.testing import CapturedSpans, OtlpReceiver

distributed = pytest.importorskip("distributed")


@task
def where(label: str) -> dict[str, Any]:
    """What a task run sees from the inside of a Dask worker."""
    return {
        "label": label,
        "pid": os.getpid(),
        "has_task_run_context": TaskRunContext.get() is not None,
        "has_flow_run_context": FlowRunContext.get() is not None,
        "flow_run_id": runtime.flow_run.id,
        "task_run_id": runtime.task_run.id,
        "task_name": runtime.task_run.task_name,
        "deployment_name": runtime.deployment.name,
    }


@task
def add(a: int, b: int) -> int:
    return a + b


@task
def fail(message: str) -> None:
    raise RuntimeError(message)


@pytest.fixture(scope="module")
def receiver(export_workers_to: Callable[..., None]) -> Iterator[OtlpReceiver]:
    """A loopback OTLP receiver, with the variables that make worker processes export to it."""
    with OtlpReceiver() as running, pytest.MonkeyPatch.context() as env:
        export_workers_to(env, running, "dask-worker")
        yield running


@pytest.fixture(scope="module")
def cluster(receiver: OtlpReceiver) -> Iterator[Any]:
    """Two single-threaded worker processes on 127.0.0.1, no dashboard, every port on loopback."""
    with distributed.LocalCluster(n_workers=2, **LOCAL_CLUSTER_DEFAULTS) as running:
        yield running


@pytest.fixture
def exported(receiver: OtlpReceiver) -> OtlpReceiver:
    """The receiver, emptied for this test."""
    receiver.clear()
    return receiver


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def test_dask_task_runs_are_task_runs_on_the_workers_and_children_of_the_flow_span(
    cluster: Any, exported: OtlpReceiver, spans: CapturedSpans
) -> None:
    """Each task run executes on a Dask worker process as a task run there (its own TaskRunContext and
    task_run.id, no flow run context object; flow run and deployment from baggage), and the span it
    exports is a child of the flow span in the same trace with the run and deployment attributes."""

    @flow(task_runner=DaskTaskRunner(cluster))
    def fan_out() -> tuple[str, list[str], list[dict[str, Any]]]:
        futures = where.map(["a", "b", "c", "d"])
        return runtime.flow_run.id, [f.task_run_id for f in futures], [f.result() for f in futures]

    with deployment("nightly etl"):
        flow_run_id, task_run_ids, seen = fan_out()

    flow_span = spans.find("flow fan_out")
    assert flow_span.context is not None
    for task_run_id, inside in zip(task_run_ids, seen, strict=True):
        assert inside["pid"] != os.getpid()
        assert inside["has_task_run_context"] and not inside["has_flow_run_context"]
        assert (inside["task_run_id"], inside["task_name"]) == (task_run_id, "where")
        assert (inside["flow_run_id"], inside["deployment_name"]) == (flow_run_id, "nightly etl")

    received = [s for s in exported.spans() if s["name"] == "task where"]
    assert {s["attributes"]["task_run.id"] for s in received} == set(task_run_ids)
    for span in received:
        assert span["trace_id"] == _hex(flow_span.context.trace_id, 32)
        assert span["parent_span_id"] == _hex(flow_span.context.span_id, 16)
        assert span["attributes"]["flow_run.id"] == flow_run_id
        assert span["attributes"]["deployment.name"] == "nightly etl"
        assert span["attributes"]["deployment.id"] == flow_span.attributes["deployment.id"]
        assert span["resource"]["service.name"] == "dask-worker"


def test_dask_runner_by_address_resolves_upstream_futures_and_reraises_errors(
    cluster: Any, exported: OtlpReceiver, spans: CapturedSpans
) -> None:
    """Connected by scheduler address, the runner resolves futures passed as arguments, and a task run
    that fails on a worker raises its exception here; every task span is a child of the flow span."""

    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def chained() -> tuple[int, BaseException | None]:
        total = add.submit(add.submit(1, 2), 10)
        return total.result(), fail.submit("worker says no").exception()

    total, error = chained()
    assert total == 13
    assert isinstance(error, RuntimeError) and str(error) == "worker says no"
    flow_span = spans.find("flow chained")
    assert flow_span.context is not None
    received = exported.spans()
    assert sorted(s["name"] for s in received) == ["task add", "task add", "task fail"]
    assert {s["parent_span_id"] for s in received} == {_hex(flow_span.context.span_id, 16)}


def test_dask_runner_without_a_cluster_starts_and_closes_its_own(
    receiver: OtlpReceiver, exported: OtlpReceiver
) -> None:
    """With neither cluster nor address, a flow run starts a LocalCluster of worker processes on
    127.0.0.1 for itself and closes it when it ends."""
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1})

    @flow(task_runner=runner)
    def own_cluster() -> tuple[int, str | None]:
        inside = where.submit("solo").result()
        return inside["pid"], inside["flow_run_id"]

    pid, flow_run_id = own_cluster()
    assert pid != os.getpid() and flow_run_id is not None
    assert [s["name"] for s in exported.spans()] == ["task where"]


def test_missing_dask_extra_fails_with_the_install_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without dask.distributed installed, DaskTaskRunner says which extra to install."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(ImportError, match=r"pip install 'otel-runtime\[dask\]'"):
        DaskTaskRunner()
