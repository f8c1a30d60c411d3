"""Flow runs and task runs as spans: names, attributes, nesting, results, failures and retries."""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid

import pytest
from opentelemetry import baggage, trace
from opentelemetry.semconv.attributes.code_attributes import CODE_FUNCTION_NAME, CODE_LINE_NUMBER
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.trace import SpanKind, StatusCode

from otel_runtime import deployment, flow, runtime, tags, task
from otel_runtime._base import keys as _keys
from otel_runtime.testing import CapturedSpans


@task
def double(x: int) -> int:
    return 2 * x


@flow
def pipeline(x: int) -> int:
    return double(x) + double(x + 1)


def test_bare_decorators_run_the_function_and_return_its_result() -> None:
    """Calling a decorated flow runs it, with its tasks, and returns what the function returns."""
    assert pipeline(3) == 14


def test_decorators_keep_the_function_metadata() -> None:
    """functools.wraps metadata survives decoration: name, docstring, module, __wrapped__."""

    @flow(name="renamed")
    def documented(a: int) -> int:
        """Docstring of the flow."""
        return a

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Docstring of the flow."
    assert documented.__wrapped__.__name__ == "documented"  # type: ignore[attr-defined]
    assert documented.name == "renamed"


def test_one_span_per_run_named_by_flow_and_task_with_task_spans_children_of_the_flow(
    spans: CapturedSpans,
) -> None:
    """A flow run is the span 'flow <name>', each task run a child span 'task <name>', kind INTERNAL."""
    pipeline(1)
    flow_span = spans.find("flow pipeline")
    task_spans = spans.named("task double")
    assert len(task_spans) == 2
    assert all(span.kind is SpanKind.INTERNAL for span in (flow_span, *task_spans))
    assert spans.children(flow_span) == task_spans
    assert flow_span.parent is None


def test_flow_span_attributes_follow_the_design(spans: CapturedSpans) -> None:
    """The flow span carries run type, flow name and version, run id/name, run count, root id, params."""

    @flow(version="1.2", flow_run_name="run-{x}")
    def versioned(x: int, y: str = "b") -> None:
        pass

    versioned(7)
    attributes = spans.find("flow versioned").attributes
    assert attributes is not None
    assert attributes[_keys.RUN_TYPE] == _keys.RUN_TYPE_FLOW
    assert attributes[_keys.FLOW_NAME] == "versioned"
    assert attributes[_keys.FLOW_VERSION] == "1.2"
    assert attributes[_keys.FLOW_RUN_NAME] == "run-7"
    assert attributes[_keys.FLOW_RUN_ROOT_ID] == attributes[_keys.FLOW_RUN_ID]
    assert attributes[_keys.FLOW_RUN_RUN_COUNT] == 1
    assert attributes[_keys.FLOW_RUN_PARAMETER_PREFIX + "x"] == "7"
    assert attributes[_keys.FLOW_RUN_PARAMETER_PREFIX + "y"] == "'b'"
    assert attributes[CODE_FUNCTION_NAME].endswith("versioned")
    assert isinstance(attributes[CODE_LINE_NUMBER], int)
    assert _keys.FLOW_RUN_PARENT_ID not in attributes


def test_task_span_attributes_follow_the_design(spans: CapturedSpans) -> None:
    """The task span carries run type, task name, run id/name, run count and its flow run's id."""
    pipeline(1)
    flow_attributes = spans.find("flow pipeline").attributes
    attributes = spans.named("task double")[0].attributes
    assert attributes is not None and flow_attributes is not None
    assert attributes[_keys.RUN_TYPE] == _keys.RUN_TYPE_TASK
    assert attributes[_keys.TASK_NAME] == "double"
    assert attributes[_keys.TASK_RUN_NAME] == f"double-{str(attributes[_keys.TASK_RUN_ID])[:3]}"
    assert attributes[_keys.TASK_RUN_RUN_COUNT] == 1
    assert attributes[_keys.FLOW_RUN_ID] == flow_attributes[_keys.FLOW_RUN_ID]
    assert attributes[_keys.TASK_RUN_PARAMETER_PREFIX + "x"] == "1"


def test_span_names_never_contain_run_ids_or_names(spans: CapturedSpans) -> None:
    """Span names are 'flow <name>' / 'task <name>' only, so they stay low-cardinality metric labels."""
    pipeline(1)
    for span in spans.spans:
        assert span.attributes is not None
        run_values = {
            span.attributes.get(key)
            for key in (_keys.FLOW_RUN_ID, _keys.TASK_RUN_ID, _keys.FLOW_RUN_NAME, _keys.TASK_RUN_NAME)
        }
        assert not any(str(value) in span.name for value in run_values if value)


def test_flow_with_no_ambient_span_is_a_trace_root_and_inside_a_user_span_is_its_child(
    spans: CapturedSpans,
) -> None:
    """A top-level flow starts a trace; one started inside the user's own span joins it as a child."""
    pipeline(1)
    assert spans.find("flow pipeline").parent is None
    spans.clear()
    with trace.get_tracer("user").start_as_current_span("request") as outer:
        pipeline(1)
    flow_span = spans.find("flow pipeline")
    assert flow_span.parent is not None
    assert flow_span.parent.span_id == outer.get_span_context().span_id
    assert flow_span.context is not None
    assert flow_span.context.trace_id == outer.get_span_context().trace_id


def test_subflow_is_its_own_flow_run_and_a_child_span_of_the_caller(spans: CapturedSpans) -> None:
    """A flow called inside a flow is a subflow: its own run id, parent_id set, span child of the caller."""
    seen: dict[str, object] = {}

    @flow
    def child() -> None:
        seen["child"] = runtime.flow_run.id
        seen["parent"] = runtime.flow_run.parent_flow_run_id
        seen["root"] = runtime.flow_run.root_flow_run_id

    @flow
    def parent() -> None:
        seen["outer"] = runtime.flow_run.id
        child()

    parent()
    assert seen["child"] != seen["outer"]
    assert seen["parent"] == seen["outer"] == seen["root"]
    parent_span, child_span = spans.find("flow parent"), spans.find("flow child")
    assert child_span.parent is not None and parent_span.context is not None
    assert child_span.parent.span_id == parent_span.context.span_id
    assert child_span.attributes is not None
    assert child_span.attributes[_keys.FLOW_RUN_PARENT_ID] == seen["outer"]


def test_subflow_called_from_a_task_is_a_child_of_the_task_span(spans: CapturedSpans) -> None:
    """A subflow started inside a task run hangs under that task's span."""

    @flow
    def inner() -> None:
        pass

    @task
    def launcher() -> None:
        inner()

    @flow
    def outer() -> None:
        launcher()

    outer()
    launcher_span, inner_span = spans.find("task launcher"), spans.find("flow inner")
    assert inner_span.parent is not None and launcher_span.context is not None
    assert inner_span.parent.span_id == launcher_span.context.span_id


def test_task_called_outside_any_flow_is_a_task_run_with_no_flow_run(spans: CapturedSpans) -> None:
    """A task called on its own is still a task run: a root span, a run id, no flow_run.id."""
    seen = {}

    @task
    def alone() -> int:
        seen["task"] = runtime.task_run.id
        seen["flow"] = runtime.flow_run.id
        return 5

    assert alone() == 5
    attributes = spans.find("task alone").attributes
    assert attributes is not None
    assert seen["task"] == attributes[_keys.TASK_RUN_ID]
    assert seen["flow"] is None
    assert _keys.FLOW_RUN_ID not in attributes


def test_parameters_with_defaults_and_keyword_only_are_bound_by_name() -> None:
    """runtime.flow_run.parameters holds every parameter by name, defaults and keyword-only included."""
    seen = {}

    @flow
    def signature_rich(a: int, b: int = 2, *, c: str = "z") -> None:
        seen.update(runtime.flow_run.parameters)

    signature_rich(1, c="y")
    assert seen == {"a": 1, "b": 2, "c": "y"}


def test_calling_with_wrong_arguments_raises_typeerror_before_any_run(spans: CapturedSpans) -> None:
    """Arguments that don't fit the signature raise TypeError, as a plain call would, and record no run."""
    with pytest.raises(TypeError):
        pipeline(1, 2)  # type: ignore[call-arg]
    assert spans.spans == ()


def test_failure_propagates_unchanged_and_marks_the_span_error(spans: CapturedSpans) -> None:
    """The exception reaches the caller as it was raised; the span has status ERROR, the exception
    event and error.type."""
    error = ValueError("bad input")

    @flow
    def failing() -> None:
        raise error

    with pytest.raises(ValueError, match="bad input") as raised:
        failing()
    assert raised.value is error
    span = spans.find("flow failing")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == "bad input"
    assert span.attributes is not None and span.attributes[ERROR_TYPE] == "ValueError"
    assert [event.name for event in span.events] == ["exception"]


def test_retries_make_one_span_with_an_exception_and_retry_event_per_failed_attempt(
    spans: CapturedSpans,
) -> None:
    """A task retried twice has one span, run_count 1, 2, 3 per attempt, and the final status wins."""
    counts: list[int] = []

    @task(retries=2, retry_delay_seconds=0)
    def flaky() -> str:
        counts.append(runtime.task_run.run_count)
        if len(counts) < 3:
            raise ConnectionError("try again")
        return "ok"

    assert flaky() == "ok"
    span = spans.find("task flaky")
    assert counts == [1, 2, 3]
    assert [event.name for event in span.events] == ["exception", "retry", "exception", "retry"]
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes is not None and span.attributes[_keys.TASK_RUN_RUN_COUNT] == 3


def test_retries_exhausted_fail_the_run_with_every_attempt_recorded(spans: CapturedSpans) -> None:
    """When every attempt fails, the last exception propagates and the span has one exception per try."""

    @flow(retries=1, retry_delay_seconds=[0])
    def always_fails() -> None:
        raise RuntimeError(f"attempt {runtime.flow_run.run_count}")

    with pytest.raises(RuntimeError, match="attempt 2"):
        always_fails()
    span = spans.find("flow always_fails")
    assert [event.name for event in span.events] == ["exception", "retry", "exception"]
    assert span.status.description == "attempt 2"


def test_keyboard_interrupt_ends_the_span_as_cancelled_and_is_reraised(spans: CapturedSpans) -> None:
    """KeyboardInterrupt is not swallowed; the span still ends, with an ERROR status saying cancelled."""

    @flow
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    span = spans.find("flow interrupted")
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description is not None and "Cancelled" in span.status.description
    assert baggage.get_all() == {}


def test_async_flow_and_tasks_under_gather_each_see_their_own_task_run(spans: CapturedSpans) -> None:
    """Async tasks awaited with asyncio.gather are separate task runs, each seeing its own id."""

    @task
    async def which(n: int) -> tuple[int, str | None]:
        await asyncio.sleep(0.01 * (3 - n))
        return n, runtime.task_run.id

    @flow
    async def fan_out() -> list[tuple[int, str | None]]:
        return list(await asyncio.gather(*(which(n) for n in range(3))))

    results = asyncio.run(fan_out())
    task_spans = spans.named("task which")
    ids_by_parameter = {
        span.attributes[_keys.TASK_RUN_PARAMETER_PREFIX + "n"]: span.attributes[_keys.TASK_RUN_ID]
        for span in task_spans
        if span.attributes is not None
    }
    assert {str(n): run_id for n, run_id in results} == ids_by_parameter
    flow_span = spans.find("flow fan_out")
    assert sorted(spans.children(flow_span), key=id) == sorted(task_spans, key=id)


def test_async_cancellation_ends_the_span_and_reraises(spans: CapturedSpans) -> None:
    """A cancelled async flow ends its span as cancelled and CancelledError reaches the awaiter."""

    @flow
    async def slow() -> None:
        await asyncio.sleep(10)

    async def main() -> None:
        running = asyncio.ensure_future(slow())
        await asyncio.sleep(0.01)
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(main())
    span = spans.find("flow slow")
    assert span.status.status_code is StatusCode.ERROR
    assert span.end_time is not None


def test_same_task_called_1000_times_gives_1000_distinct_runs(spans: CapturedSpans) -> None:
    """A flow that calls one task 1,000 times records 1,000 task spans with distinct UUID4 run ids."""

    @flow
    def many() -> int:
        return sum(double(i) for i in range(1000))

    assert many() == 2 * sum(range(1000))
    task_spans = spans.named("task double")
    assert len(task_spans) == 1000
    run_ids = {str(span.attributes[_keys.TASK_RUN_ID]) for span in task_spans if span.attributes}
    assert len(run_ids) == 1000
    assert {uuid.UUID(run_id).version for run_id in run_ids} == {4}


def test_task_tags_merge_with_tags_context(spans: CapturedSpans) -> None:
    """@task(tags=...) and `with tags(...)` merge into the run's tags, both on the span and at runtime."""
    seen = {}

    @task(tags=["etl"])
    def tagged() -> None:
        seen["tags"] = runtime.task_run.tags

    with tags("nightly", "etl"):
        tagged()
    assert seen["tags"] == ["etl", "nightly"]
    attributes = spans.find("task tagged").attributes
    assert attributes is not None and list(attributes[_keys.TASK_RUN_TAGS]) == ["etl", "nightly"]  # type: ignore[arg-type]


def test_tags_blocks_inside_one_flow_run_tag_each_task_run_as_it_starts(spans: CapturedSpans) -> None:
    """The runs of one task in one flow run share their span attributes, but a ``with tags(...)``
    block entered or left between them changes the next run's tags; so does a flow's deployment
    between its runs."""

    @task(tags=["own"])
    def step() -> list[str]:
        return list(runtime.task_run.tags)

    @flow
    def steps() -> list[list[str]]:
        seen = [step()]
        with tags("inner"):
            seen.append(step())
            with tags("deeper"):
                seen.append(step())
        seen.append(step())
        return seen

    assert steps() == [["own"], ["own", "inner"], ["own", "inner", "deeper"], ["own"]]
    on_spans = [list(span.attributes.get(_keys.TASK_RUN_TAGS, ())) for span in spans.named("task step")]  # type: ignore[union-attr, arg-type]
    assert on_spans == [["own"], ["own", "inner"], ["own", "inner", "deeper"], ["own"]]

    @flow
    def where() -> str | None:
        return runtime.deployment.name

    with deployment("first"):
        assert where() == "first"
    with deployment("second"):
        assert where() == "second"
    assert where() is None
    names = [span.attributes.get(_keys.DEPLOYMENT_NAME) for span in spans.named("flow where")]  # type: ignore[union-attr]
    assert names == ["first", "second", None]


def test_flow_run_name_from_a_callable_and_generated_names_otherwise() -> None:
    """flow_run_name may be a callable; without one, names are generated 'adjective-animal'."""
    seen = []

    @flow(flow_run_name=lambda: "custom-name")
    def named() -> None:
        seen.append(runtime.flow_run.name)

    @flow
    def unnamed() -> None:
        seen.append(runtime.flow_run.name)

    named()
    unnamed()
    assert seen[0] == "custom-name"
    adjective, _, animal = str(seen[1]).partition("-")
    assert adjective.isalpha() and animal.isalpha()


def test_a_name_function_reads_the_parameters_of_the_run_it_names(spans: CapturedSpans) -> None:
    """A callable flow_run_name / task_run_name sees the run it names through ``runtime`` (its
    parameters, not an empty dict); the name is on the span and in the flow run's baggage."""
    seen: dict[str, object] = {}

    def task_name() -> str:
        return f"load-{runtime.task_run.parameters['table']}"

    @task(task_run_name=task_name)
    def load(table: str) -> None:
        seen["task"] = runtime.task_run.name

    def flow_name() -> str:
        return f"{runtime.flow_run.flow_name}-{runtime.flow_run.parameters['day']}"

    @flow(flow_run_name=flow_name)
    def nightly(day: str) -> None:
        seen["flow"] = runtime.flow_run.name
        seen["baggage"] = baggage.get_baggage(_keys.FLOW_RUN_NAME)
        load("users")

    nightly("monday")
    assert seen == {"flow": "nightly-monday", "baggage": "nightly-monday", "task": "load-users"}
    assert dict(spans.find("flow nightly").attributes or {})[_keys.FLOW_RUN_NAME] == "nightly-monday"
    assert dict(spans.find("task load").attributes or {})[_keys.TASK_RUN_NAME] == "load-users"


def test_a_failing_run_name_template_warns_once_for_flows_and_tasks_alike(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A flow_run_name or task_run_name template that fails (a missing key) gives the run a generated
    name and one warning per flow or task naming the option, however many runs."""

    @task(task_run_name="load-{missing}")
    def badly_named_task() -> str | None:
        return runtime.task_run.name

    @flow(flow_run_name="nightly-{missing}")
    def badly_named_flow() -> tuple[str | None, str | None]:
        return runtime.flow_run.name, badly_named_task()

    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        flow_name, task_name = badly_named_flow()
        badly_named_flow()
    adjective, _, animal = str(flow_name).partition("-")
    assert adjective.isalpha() and animal.isalpha()
    assert str(task_name).startswith("badly_named_task-")
    warnings = [record.getMessage() for record in caplog.records if record.name == "otel_runtime"]
    assert warnings == [
        "flow_run_name of flow 'badly_named_flow' failed; using a generated name",
        "task_run_name of task 'badly_named_task' failed; using a generated name",
    ]


def test_generator_task_restores_context_between_items_and_ends_its_span(spans: CapturedSpans) -> None:
    """A generator task sees its run while producing items; the consumer between items does not."""
    inside: list[str | None] = []

    @task
    def produce(n: int):  # type: ignore[no-untyped-def]
        for i in range(n):
            inside.append(runtime.task_run.id)
            yield i

    outside = [runtime.task_run.id for _ in produce(3)]
    assert len(set(inside)) == 1 and inside[0] is not None
    assert outside == [None, None, None]
    assert spans.find("task produce").end_time is not None


def test_generator_closed_early_ends_its_span_and_restores_context(spans: CapturedSpans) -> None:
    """Breaking out of a generator task closes it: its span ends and no baggage is left behind."""

    @task
    def endless():  # type: ignore[no-untyped-def]
        while True:
            yield runtime.task_run.id

    generator = endless()
    assert next(generator) is not None
    generator.close()
    assert spans.find("task endless").end_time is not None
    assert baggage.get_all() == {}
    assert runtime.task_run.id is None


def test_async_generator_task_runs_with_its_context(spans: CapturedSpans) -> None:
    """An async generator task sees its own run while it produces items, and ends its span."""

    @task
    async def stream(n: int):  # type: ignore[no-untyped-def]
        for _ in range(n):
            yield runtime.task_run.id

    async def consume() -> list[str | None]:
        return [item async for item in stream(2)]

    items = asyncio.run(consume())
    attributes = spans.find("task stream").attributes
    assert attributes is not None and items == [attributes[_keys.TASK_RUN_ID]] * 2


def test_decorating_a_non_callable_is_a_clear_error() -> None:
    """@flow on something that is not a function raises TypeError at decoration time."""
    with pytest.raises(TypeError, match="expected a function"):
        flow(42)  # type: ignore[call-overload]


def test_functools_partial_is_accepted() -> None:
    """A functools.partial can be made a task (it has no __name__ of its own, so give it one)."""
    partial_task = task(name="add_one")(functools.partial(lambda a, b: a + b, 1))
    assert partial_task(2) == 3


def test_invalid_parameters_fail_the_flow_run_span_before_its_function_runs(spans: CapturedSpans) -> None:
    """A flow run whose parameters do not fit its type hints has a span: FAILED, error.type
    ParameterTypeError, a ``parameters.invalid`` event listing each problem (never the value); the
    function never runs."""
    from otel_runtime.exceptions import ParameterTypeError

    ran: list[int] = []

    @flow
    def typed(count: int, label: str = "x") -> None:
        ran.append(count)

    with pytest.raises(ParameterTypeError, match="count: Input should be a valid integer"):
        typed("many", label="secret-value")
    assert ran == []
    span = spans.find("flow typed")
    attributes = dict(span.attributes or {})
    assert attributes[_keys.FLOW_RUN_STATE_TYPE] == "FAILED"
    assert attributes[ERROR_TYPE] == "otel_runtime.exceptions.ParameterTypeError"
    events = [
        dict(event.attributes or {}) for event in span.events if event.name == _keys.PARAMETERS_INVALID_EVENT
    ]
    assert len(events) == 1
    problems = list(events[0][_keys.PARAMETERS_ERRORS])  # type: ignore[arg-type]
    assert problems == ["count: Input should be a valid integer, unable to parse string as an integer"]
    typed("7")
    assert ran == [7]
