"""Concurrent runs never see each other: every span, log line and accessor read carries its own run's ids.

Hypothesis draws the shape of the work (threads, flows, tasks called, submitted or mapped, subflows
nested in flows and in tasks, deployments on some threads and not others, async gathers). Every probe
is labelled; its label is recorded on its span as a parameter, so each read and each log line is
checked against the span of the run that made it.
"""

from __future__ import annotations

import ast
import asyncio
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import baggage, trace
from opentelemetry.context import get_current
from opentelemetry.sdk.trace import ReadableSpan
from structlog.testing import capture_logs

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime.context import FlowRunContext, TaskRunContext
from otel_runtime.logging import add_run_context
from otel_runtime.task_runners import ProcessPoolTaskRunner
from otel_runtime.testing import CapturedSpans, capture_spans

FORK_WITH_THREADS = "ignore:.*use of fork\\(\\) may lead to deadlocks:DeprecationWarning"
FAST = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

Reads = dict[str, Any]


def reads(label: str, kind: str) -> Reads:
    """What a run sees of itself through the accessors, and one structlog line saying so."""
    structlog.get_logger().info("probe", label=label, kind=kind)
    return {
        "label": label,
        "kind": kind,
        "thread": threading.get_ident(),
        "flow_run_id": runtime.flow_run.id,
        "flow_run_name": runtime.flow_run.name,
        "task_run_id": runtime.task_run.id,
        "task_run_name": runtime.task_run.name,
        "deployment_name": runtime.deployment.name,
        "trace_id": runtime.task_run.trace_id if kind == "task" else runtime.flow_run.trace_id,
    }


@dataclass(frozen=True)
class Plan:
    """One flow run: its tasks (how each is started) and its subflows (and whether inside a task)."""

    tasks: tuple[str, ...] = ()
    subflows: tuple[tuple[Plan, bool], ...] = field(default=())


@task
def probe(label: str) -> list[Reads]:
    return [reads(label, "task")]


@task
def probe_with_subflow(label: str, plan: Plan) -> list[Reads]:
    """A task that runs a subflow: the subflow is its own flow run, not this task run."""
    mine = reads(label, "task")
    return [mine, *planned(f"{label}/sub", plan), reads(label, "task")]


@flow
def planned(label: str, plan: Plan) -> list[Reads]:
    seen = [reads(label, "flow")]
    futures = []
    for index, how in enumerate(plan.tasks):
        child = f"{label}/t{index}"
        if how == "call":
            seen += probe(child)
        elif how == "submit":
            futures.append(probe.submit(child))
        else:
            futures += probe.map([f"{child}m0", f"{child}m1"])
    for index, (subplan, in_task) in enumerate(plan.subflows):
        child = f"{label}/s{index}"
        seen += probe_with_subflow(child, subplan) if in_task else planned(child, subplan)
    for future in futures:
        seen += future.result()
    seen.append(reads(label, "flow"))  # after its tasks and subflows: still its own context
    return seen


HOW = st.sampled_from(["call", "submit", "map"])
PLANS: st.SearchStrategy[Plan] = st.recursive(
    st.builds(Plan, tasks=st.lists(HOW, max_size=3).map(tuple)),
    lambda children: st.builds(
        Plan,
        tasks=st.lists(HOW, max_size=3).map(tuple),
        subflows=st.lists(st.tuples(children, st.booleans()), max_size=2).map(tuple),
    ),
    max_leaves=4,
)


def by_parameter(spans: CapturedSpans, prefix: str) -> dict[str, ReadableSpan]:
    """The spans that recorded a ``label`` parameter, by label (the attribute holds its repr)."""
    found: dict[str, ReadableSpan] = {}
    for span in spans.spans:
        label = (span.attributes or {}).get(f"{prefix}label")
        if isinstance(label, str):
            assert label not in found, f"two runs labelled {label}"
            found[label] = span
    return found


def hex_ids(span: ReadableSpan) -> tuple[str, str]:
    assert span.context is not None
    return trace.format_trace_id(span.context.trace_id), trace.format_span_id(span.context.span_id)


def check_isolation(
    seen: list[Reads], logs: list[dict[str, Any]], spans: CapturedSpans, deployments: dict[str, str | None]
) -> None:
    """Every read and log line matches the span of the run that made it, and nothing else."""
    flows = by_parameter(spans, _keys.FLOW_RUN_PARAMETER_PREFIX)
    tasks = by_parameter(spans, _keys.TASK_RUN_PARAMETER_PREFIX)
    flow_ids = [span.attributes[_keys.FLOW_RUN_ID] for span in flows.values() if span.attributes]
    task_ids = [span.attributes[_keys.TASK_RUN_ID] for span in tasks.values() if span.attributes]
    assert len(set(flow_ids)) == len(flow_ids) and len(set(task_ids)) == len(task_ids)

    def expected(label: str, kind: str) -> dict[str, Any]:
        own = flows[repr(label)] if kind == "flow" else tasks[repr(label)]
        attributes = own.attributes or {}
        if kind == "flow":
            flow_span = own
        else:
            flow_run_id = attributes[_keys.FLOW_RUN_ID]
            (flow_span,) = [
                span for span in flows.values() if (span.attributes or {})[_keys.FLOW_RUN_ID] == flow_run_id
            ]
            assert own.parent is not None and flow_span.context is not None
            assert own.parent.span_id == flow_span.context.span_id  # a task of that very flow run
        flow_attributes = flow_span.attributes or {}
        trace_id, span_id = hex_ids(own)
        assert trace_id == hex_ids(flow_span)[0]
        return {
            "flow_run_id": flow_attributes[_keys.FLOW_RUN_ID],
            "flow_run_name": flow_attributes[_keys.FLOW_RUN_NAME],
            "task_run_id": attributes.get(_keys.TASK_RUN_ID),
            "task_run_name": attributes.get(_keys.TASK_RUN_NAME),
            "deployment_name": deployments[label.split("/", 1)[0]],
            "trace_id": trace_id,
            "span_id": span_id,
        }

    for read in seen:
        want = expected(read["label"], read["kind"])
        got = {key: read[key] for key in want if key != "span_id"}
        assert got == {key: value for key, value in want.items() if key != "span_id"}, read["label"]
    assert len(logs) == len(seen)
    for line in logs:
        want = expected(line["label"], line["kind"])
        got = {key: line[key] for key in want}
        assert got == want, line["label"]

    # A subflow's span is the child of what called it, and records that flow run as its parent.
    for label, span in flows.items():
        text = ast.literal_eval(label)
        if "/" not in text:
            assert _keys.FLOW_RUN_PARENT_ID not in (span.attributes or {})
            continue
        parent_label = repr(text.rsplit("/", 1)[0])
        caller = flows.get(parent_label) or tasks[parent_label]
        assert span.parent is not None and caller.context is not None
        assert span.parent.span_id == caller.context.span_id
        enclosing = flows.get(parent_label) or flows[repr(text.rsplit("/", 2)[0])]
        parent_id = (enclosing.attributes or {})[_keys.FLOW_RUN_ID]
        assert (span.attributes or {})[_keys.FLOW_RUN_PARENT_ID] == parent_id


def run_in_threads(work: list[tuple[str, Plan, str | None]]) -> list[Reads]:
    """Run ``planned(label, plan)`` for each item on its own thread, all starting together."""
    barrier = threading.Barrier(len(work))
    results: dict[str, list[Reads]] = {}
    errors: list[BaseException] = []

    def one(label: str, plan: Plan, deployment_name: str | None) -> None:
        try:
            barrier.wait(timeout=10)
            if deployment_name is None:
                results[label] = planned(label, plan)
            else:
                with deployment(deployment_name):
                    results[label] = planned(label, plan)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=one, args=item) for item in work]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    if errors:
        raise errors[0]
    return [read for label, _, _ in work for read in results[label]]


def assert_outside_any_run() -> None:
    assert runtime.flow_run.id is None and runtime.task_run.id is None and runtime.deployment.name is None
    assert FlowRunContext.get() is None and TaskRunContext.get() is None
    assert dict(baggage.get_all(get_current())) == {}


@FAST
@given(
    work=st.lists(st.tuples(PLANS, st.sampled_from([None, "nightly", "hourly etl"])), min_size=2, max_size=5)
)
def test_flows_in_threads_with_tasks_and_subflows_each_see_only_their_own_run(
    work: list[tuple[Plan, str | None]],
) -> None:
    """Flows started together on several threads, some in a deployment, with called, submitted and
    mapped tasks and subflows nested in flows and tasks: every accessor read, structlog line (through
    add_run_context) and span carries the ids of its own run, its own flow run, its own trace and its
    thread's deployment; no two runs share an id; the threads are left outside any run."""
    labelled = [(f"f{index}", plan, name) for index, (plan, name) in enumerate(work)]
    with capture_spans() as spans, capture_logs(processors=[add_run_context]) as logs:
        seen = run_in_threads(labelled)
    check_isolation(seen, logs, spans, {label: name for label, _, name in labelled})
    assert_outside_any_run()


@task
async def async_probe(label: str) -> list[Reads]:
    await asyncio.sleep(0)
    first = reads(label, "task")
    await asyncio.sleep(0)
    return [first, reads(label, "task")]


@flow
async def async_planned(label: str, tasks: int, depth: int) -> list[Reads]:
    seen = [reads(label, "flow")]
    groups = await asyncio.gather(
        *(async_probe(f"{label}/t{index}") for index in range(tasks)),
        *([async_planned(f"{label}/s0", tasks, depth - 1)] if depth else []),
    )
    for group in groups:
        seen += group
    seen.append(reads(label, "flow"))
    return seen


@FAST
@given(
    shape=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), min_size=1, max_size=5),
    deployed=st.booleans(),
)
def test_async_flows_and_tasks_gathered_in_one_loop_each_see_only_their_own_run(
    shape: list[tuple[int, int]], deployed: bool
) -> None:
    """Async flows gathered on one event loop, each gathering async tasks and an async subflow, all
    interleaving at every await: each read and log line belongs to its own run."""

    async def main() -> list[Reads]:
        groups = await asyncio.gather(
            *(async_planned(f"a{index}", tasks, depth) for index, (tasks, depth) in enumerate(shape))
        )
        return [read for group in groups for read in group]

    with capture_spans() as spans, capture_logs(processors=[add_run_context]) as logs:
        if deployed:
            with deployment("async-deployment"):
                seen = asyncio.run(main())
        else:
            seen = asyncio.run(main())
    name = "async-deployment" if deployed else None
    check_isolation(seen, logs, spans, {f"a{index}": name for index in range(len(shape))})
    assert_outside_any_run()


# -- process pools: task runs in worker processes, started by fork and by spawn ---------------------------


@task
def remote_probe(label: str) -> Reads:
    """Runs in a worker process: what the task run sees there."""
    return {
        "label": label,
        "pid": os.getpid(),
        "flow_run_id": runtime.flow_run.id,
        "task_run_id": runtime.task_run.id,
        "deployment_name": runtime.deployment.name,
        "trace_id": runtime.task_run.trace_id,
    }


@pytest.fixture
def telemetry_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Worker processes configure() themselves from the environment: spans to this JSON-lines file."""
    path = tmp_path / "telemetry.jsonl"
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "file")
    monkeypatch.setenv("OTEL_LOGS_EXPORTER", "none")
    monkeypatch.setenv("OTEL_RUNTIME_TELEMETRY_FILE", str(path))
    return path


@pytest.mark.parametrize(
    "start_method",
    [pytest.param("fork", marks=pytest.mark.filterwarnings(FORK_WITH_THREADS)), "spawn"],
)
def test_process_pool_workers_export_spans_of_concurrent_flows_each_with_its_own_ids(
    start_method: str, telemetry_file: Path, spans: CapturedSpans
) -> None:
    """Two flows on two threads, each mapping tasks onto its own ProcessPoolTaskRunner (fork, then spawn):
    the worker processes export every task span to the telemetry file, each a child of its own flow span
    with its own flow run and deployment, and what each task run read in the worker matches its span."""

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2, mp_context=start_method))
    def fan_out(label: str) -> tuple[str | None, list[Reads]]:
        futures = remote_probe.map([f"{label}/t{index}" for index in range(3)])
        return runtime.flow_run.id, [future.result() for future in futures]

    outcomes: dict[str, tuple[str | None, list[Reads]]] = {}

    def run(label: str) -> None:
        with deployment(f"deployment-{label}"):
            outcomes[label] = fan_out(label)

    threads = [threading.Thread(target=run, args=(label,)) for label in ("p0", "p1")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert set(outcomes) == {"p0", "p1"}

    exported = {
        span["attributes"]["task_run.parameter.label"]: span
        for record in read_records(telemetry_file)
        for span in iter_spans(record)
    }
    assert len(exported) == 6
    flow_spans = {
        ast.literal_eval(str((s.attributes or {})["flow_run.parameter.label"])): s
        for s in spans.named("flow fan_out")
    }
    for label, (flow_run_id, seen) in outcomes.items():
        flow_span = flow_spans[label]
        trace_id, span_id = hex_ids(flow_span)
        assert flow_span.attributes is not None and flow_span.attributes[_keys.FLOW_RUN_ID] == flow_run_id
        for read in seen:
            span = exported[repr(read["label"])]
            assert read["pid"] != os.getpid()
            assert span["trace_id"] == read["trace_id"] == trace_id
            assert span["parent_span_id"] == span_id
            assert span["attributes"][_keys.TASK_RUN_ID] == read["task_run_id"]
            assert span["attributes"][_keys.FLOW_RUN_ID] == read["flow_run_id"] == flow_run_id
            deployment_name = span["attributes"][_keys.DEPLOYMENT_NAME]
            assert deployment_name == read["deployment_name"] == f"deployment-{label}"
