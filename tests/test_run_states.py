"""Run states on the spans: the final state attributes, span status, links to upstreams, hook events."""

from __future__ import annotations

import pytest
from opentelemetry.trace import StatusCode

from otel_runtime import flow, task
from otel_runtime._base import keys as _keys
from otel_runtime.futures import wait
from otel_runtime.states import Completed, Failed
from otel_runtime.testing import CapturedSpans


def state_of(span: object, run: str = "task_run") -> tuple[object, object]:
    attributes = span.attributes  # type: ignore[attr-defined]
    return attributes[f"{run}.state.type"], attributes[f"{run}.state.name"]


@task
def double(x: int) -> int:
    return 2 * x


@task
def boom() -> None:
    raise ValueError("boom")


def test_a_plain_run_span_says_completed_with_status_unset(spans: CapturedSpans) -> None:
    """A task and a flow that return a value end COMPLETED / Completed; status UNSET."""

    @flow
    def plain() -> int:
        return double(2)

    assert plain() == 4
    assert state_of(spans.find("task double")) == ("COMPLETED", "Completed")
    assert state_of(spans.find("flow plain"), "flow_run") == ("COMPLETED", "Completed")
    assert spans.find("task double").status.status_code is StatusCode.UNSET


def test_a_raising_run_is_failed_with_status_error(spans: CapturedSpans) -> None:
    """A run that raises ends FAILED / Failed with status ERROR."""
    with pytest.raises(ValueError, match="boom"):
        boom()
    span = spans.find("task boom")
    assert state_of(span) == ("FAILED", "Failed")
    assert span.status.status_code is StatusCode.ERROR


def test_a_returned_state_sets_the_span_state_and_status(spans: CapturedSpans) -> None:
    """``Completed(name="Skipped")`` shows as COMPLETED / Skipped (UNSET); a returned ``Failed`` as
    FAILED / Failed with status ERROR and its message, though nothing raised."""

    @task
    def skip() -> object:
        return Completed(name="Skipped")

    @task
    def refuse() -> object:
        return Failed(message="no thanks")

    assert skip().name == "Skipped"
    assert refuse().is_failed()
    skipped, refused = spans.find("task skip"), spans.find("task refuse")
    assert state_of(skipped) == ("COMPLETED", "Skipped")
    assert skipped.status.status_code is StatusCode.UNSET
    assert state_of(refused) == ("FAILED", "Failed")
    assert refused.status.status_code is StatusCode.ERROR
    assert "no thanks" in (refused.status.description or "")


def test_a_not_ready_run_has_a_span_linked_to_the_upstream_that_blocked_it(spans: CapturedSpans) -> None:
    """The downstream of a failed upstream never runs, yet has a span, PENDING / NotReady, status
    UNSET, with a link to the upstream's span that says why."""
    ran = []

    @task
    def downstream(value: object) -> None:
        ran.append(value)

    @flow
    def blocked() -> str:
        upstream = boom.submit()
        later = downstream.submit(upstream)
        wait([upstream, later])
        return later.state.name

    assert blocked() == "NotReady"
    assert ran == []
    span, upstream = spans.find("task downstream"), spans.find("task boom")
    assert state_of(span) == ("PENDING", "NotReady")
    assert span.status.status_code is StatusCode.UNSET
    (link,) = span.links
    assert link.context.span_id == upstream.context.span_id
    assert link.attributes[_keys.LINK_KIND] == _keys.LINK_KIND_UPSTREAM
    assert link.attributes[_keys.LINK_STATE_TYPE] == "FAILED"
    assert link.attributes[_keys.LINK_TASK_RUN_ID] == upstream.attributes[_keys.TASK_RUN_ID]


def test_wait_for_dependencies_are_span_links(spans: CapturedSpans) -> None:
    """A run given ``wait_for=[a, b]`` links to both runs' spans, kind ``wait_for``."""

    @flow
    def ordered() -> int:
        first, second = double.submit(1), double.submit(2)
        return double(3, wait_for=[first, second])

    assert ordered() == 6
    (last,) = [span for span in spans.named("task double") if span.links]
    linked = {link.context.span_id for link in last.links}
    others = {span.context.span_id for span in spans.named("task double") if span is not last}
    assert len(others) == 2
    assert linked == others
    assert {link.attributes[_keys.LINK_KIND] for link in last.links} == {_keys.LINK_KIND_WAIT_FOR}


def test_hooks_are_span_events_and_a_raising_hook_changes_nothing(spans: CapturedSpans) -> None:
    """Each hook call adds an ``otel_runtime.hook`` event (name, kind, state, outcome); a hook that
    raises is recorded as failed with its exception type and the run still completes."""

    def fine(tsk: object, run: object, state: object) -> None:
        return None

    def broken(tsk: object, run: object, state: object) -> None:
        raise RuntimeError("hook bug")

    @task(on_completion=[fine, broken])
    def hooked() -> int:
        return 1

    assert hooked() == 1
    span = spans.find("task hooked")
    assert state_of(span) == ("COMPLETED", "Completed")
    events = [event for event in span.events if event.name == _keys.HOOK_EVENT]
    assert [event.attributes[_keys.HOOK_NAME] for event in events] == ["fine", "broken"]
    assert [event.attributes[_keys.HOOK_OUTCOME] for event in events] == [
        _keys.HOOK_OUTCOME_SUCCEEDED,
        _keys.HOOK_OUTCOME_FAILED,
    ]
    assert events[1].attributes[_keys.HOOK_EXCEPTION_TYPE] == "RuntimeError"
    assert {event.attributes[_keys.HOOK_TYPE] for event in events} == {"on_completion"}
    assert {event.attributes[_keys.HOOK_STATE_NAME] for event in events} == {"Completed"}


def test_a_flow_returning_a_failed_future_is_failed_and_raises(spans: CapturedSpans) -> None:
    """A flow that returns a future of a failed run ends FAILED ("1/1 states failed.") and raises the
    run's exception; one that leaves a failed submit unobserved completes."""

    @flow
    def returns_it() -> object:
        return boom.submit()

    @flow
    def ignores_it() -> str:
        boom.submit()
        return "fine"

    with pytest.raises(ValueError, match="boom"):
        returns_it()
    state = returns_it(return_state=True)
    assert (state.type.value, state.message) == ("FAILED", "1/1 states failed.")
    assert ignores_it() == "fine"
    assert {state_of(span, "flow_run") for span in spans.named("flow returns_it")} == {("FAILED", "Failed")}
    assert state_of(spans.find("flow ignores_it"), "flow_run") == ("COMPLETED", "Completed")


def test_a_cancelled_run_is_cancelled_on_its_span(spans: CapturedSpans) -> None:
    """A run ended by ``KeyboardInterrupt`` shows CANCELLED / Cancelled (the project's rule)."""

    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert state_of(spans.find("task interrupted")) == ("CANCELLED", "Cancelled")
