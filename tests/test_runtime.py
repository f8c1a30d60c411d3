"""runtime.deployment / runtime.flow_run / runtime.task_run: values in and out of runs, lazy modules,
environment overrides and baggage-only processes."""

from __future__ import annotations

import importlib
from datetime import datetime, timedelta, timezone

import pytest
from opentelemetry import context as otel_context
from opentelemetry import propagate

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._base.keys import (
    DEPLOYMENT_ID,
    DEPLOYMENT_NAME,
    FLOW_NAME,
    FLOW_RUN_ID,
    FLOW_RUN_NAME,
    TASK_RUN_ID,
)

EMPTY = {
    "deployment": {"id": None, "name": None, "version": None, "flow_run_id": None, "parameters": {}},
    "flow_run": {
        "id": None, "name": None, "flow_name": None, "flow_version": None, "parent_flow_run_id": None,
        "parent_deployment_id": None, "root_flow_run_id": None, "trace_id": None, "ui_url": None,
        "tags": [], "parameters": {}, "run_count": 0,
    },
    "task_run": {
        "id": None, "name": None, "task_name": None, "trace_id": None, "ui_url": None,
        "tags": [], "parameters": {}, "run_count": 0,
    },
}  # fmt: skip


def _module(name: str) -> object:
    return getattr(runtime, name)


@pytest.mark.parametrize("module_name", sorted(EMPTY))
def test_outside_a_run_every_attribute_is_its_empty_value(module_name: str) -> None:
    """Outside any run each accessor returns the empty value of the design table and never raises."""
    module = _module(module_name)
    for attribute, empty in EMPTY[module_name].items():
        assert getattr(module, attribute) == empty, attribute


def test_scheduled_start_time_outside_a_run_is_now_in_utc() -> None:
    """flow_run.scheduled_start_time outside a run is the current time, timezone-aware UTC."""
    value = runtime.flow_run.scheduled_start_time
    assert value.tzinfo is not None and value.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - value) < timedelta(seconds=5)


@pytest.mark.parametrize("module_name", sorted(EMPTY))
def test_dir_lists_exactly_the_attributes(module_name: str) -> None:
    """dir() of an accessor module lists its attributes and nothing else."""
    expected = set(EMPTY[module_name]) | ({"scheduled_start_time"} if module_name == "flow_run" else set())
    assert set(dir(_module(module_name))) == expected


def test_unknown_attribute_raises_attributeerror_and_from_import_raises_importerror() -> None:
    """An unknown accessor raises AttributeError; `from ... import nope` raises ImportError."""
    with pytest.raises(AttributeError, match="nope"):
        _ = runtime.flow_run.nope  # type: ignore[attr-defined]
    with pytest.raises(ImportError):
        exec("from otel_runtime.runtime.flow_run import nope", {})


def test_accessors_inside_flow_and_task_answer_for_their_run() -> None:
    """Inside a run, the accessors answer for that run (the Prefect example, ported)."""
    seen: dict[str, object] = {}

    @task(tags=["t"])
    def my_task(y: int) -> None:
        seen["task_name"] = runtime.task_run.task_name
        seen["task_run_name"] = runtime.task_run.name
        seen["task_parameters"] = runtime.task_run.parameters
        seen["task_trace"] = runtime.task_run.trace_id
        seen["flow_parameters"] = runtime.flow_run.parameters
        seen["task_tags"] = runtime.task_run.tags

    @flow(version="3")
    def my_flow(x: int) -> None:
        seen["flow_run_name"] = runtime.flow_run.name
        seen["flow_name"] = runtime.flow_run.flow_name
        seen["flow_version"] = runtime.flow_run.flow_version
        seen["deployment"] = runtime.deployment.name
        seen["flow_trace"] = runtime.flow_run.trace_id
        seen["run_count"] = runtime.flow_run.run_count
        my_task(2)

    my_flow(1)
    assert seen["flow_name"] == "my_flow" and seen["flow_version"] == "3"
    assert seen["deployment"] is None
    assert seen["flow_parameters"] == {"x": 1}
    assert seen["task_parameters"] == {"y": 2}
    assert seen["task_name"] == "my_task"
    assert str(seen["task_run_name"]).startswith("my_task-")
    assert seen["task_tags"] == ["t"]
    assert seen["run_count"] == 1
    assert isinstance(seen["flow_trace"], str) and len(seen["flow_trace"]) == 32
    assert seen["task_trace"] == seen["flow_trace"]


def test_inside_a_subflow_task_run_accessors_are_empty() -> None:
    """A subflow is not a task run: runtime.task_run.* is empty there even when a task called it."""
    seen = {}

    @flow
    def sub() -> None:
        seen["task_run_id"] = runtime.task_run.id
        seen["task_parameters"] = runtime.task_run.parameters

    @task
    def calls_sub() -> None:
        seen["outer_task"] = runtime.task_run.id
        sub()

    @flow
    def top() -> None:
        calls_sub()

    top()
    assert seen["outer_task"] is not None
    assert seen["task_run_id"] is None
    assert seen["task_parameters"] == {}


def test_ui_url_uses_the_template_with_the_trace_id(monkeypatch: pytest.MonkeyPatch) -> None:
    """With OTEL_RUNTIME_UI_URL set, ui_url links to the run's trace; without it, None."""
    monkeypatch.setenv("OTEL_RUNTIME_UI_URL", "http://localhost:16686/trace/{trace_id}")
    seen = {}

    @flow
    def linked() -> None:
        seen["url"] = runtime.flow_run.ui_url
        seen["trace"] = runtime.flow_run.trace_id

    linked()
    assert seen["url"] == f"http://localhost:16686/trace/{seen['trace']}"


def test_baggage_only_process_sees_the_baggage_borne_values() -> None:
    """With only a carrier attached (a remote worker), baggage-borne values answer; the rest is empty."""
    carrier = {
        "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        "baggage": ",".join(
            f"{key}={value}"
            for key, value in {
                DEPLOYMENT_ID: "dep-1", DEPLOYMENT_NAME: "nightly", FLOW_RUN_ID: "flow-1",
                FLOW_RUN_NAME: "brave-otter", FLOW_NAME: "etl", TASK_RUN_ID: "task-1",
            }.items()
        ),
    }  # fmt: skip
    token = otel_context.attach(propagate.extract(carrier))
    try:
        assert runtime.deployment.id == "dep-1"
        assert runtime.deployment.name == "nightly"
        assert runtime.deployment.flow_run_id == "flow-1"
        assert runtime.flow_run.id == "flow-1"
        assert runtime.flow_run.name == "brave-otter"
        assert runtime.flow_run.flow_name == "etl"
        assert runtime.flow_run.trace_id == "0af7651916cd43dd8448eb211c80319c"
        assert runtime.task_run.id == "task-1"
        assert runtime.task_run.name is None
        assert runtime.flow_run.parameters == {}
        assert runtime.deployment.parameters == {}
    finally:
        otel_context.detach(token)
    assert runtime.flow_run.id is None


def test_malformed_baggage_values_are_ignored() -> None:
    """A run id that does not look like an id, or a name with control characters, is not returned."""
    carrier = {"baggage": f"{FLOW_RUN_ID}=not%20an%20id,{DEPLOYMENT_NAME}=evil%0Aline"}
    token = otel_context.attach(propagate.extract(carrier))
    try:
        assert runtime.flow_run.id is None
        assert runtime.deployment.name is None
    finally:
        otel_context.detach(token)


class TestOverrides:
    """OTEL_RUNTIME__<MODULE>__<ATTR> overrides, cast to the real value's type."""

    def test_string_override_outside_a_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """An override of an empty value returns the raw string."""
        monkeypatch.setenv("OTEL_RUNTIME__DEPLOYMENT__NAME", "nightly")
        assert runtime.deployment.name == "nightly"

    def test_int_override_is_cast(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """run_count (an int) is overridden by an int."""
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__RUN_COUNT", "4")
        assert runtime.flow_run.run_count == 4

    def test_datetime_override_is_parsed_and_naive_means_utc(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """scheduled_start_time is parsed as ISO 8601; a naive value is taken as UTC."""
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__SCHEDULED_START_TIME", "2024-05-01T12:30:00")
        assert runtime.flow_run.scheduled_start_time == datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc)
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__SCHEDULED_START_TIME", "2024-05-01T12:30:00+02:00")
        assert runtime.flow_run.scheduled_start_time.utcoffset() == timedelta(hours=2)

    def test_list_and_dict_cannot_be_mocked(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Overriding a list or dict attribute raises ValueError."""
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__TAGS", "a,b")
        monkeypatch.setenv("OTEL_RUNTIME__TASK_RUN__PARAMETERS", "{}")
        with pytest.raises(ValueError, match="cannot be mocked"):
            _ = runtime.flow_run.tags
        with pytest.raises(ValueError, match="cannot be mocked"):
            _ = runtime.task_run.parameters

    def test_unknown_attribute_with_override_returns_the_raw_string(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An attribute we don't define answers with its override instead of AttributeError."""
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__OWNER", "data-team")
        assert runtime.flow_run.owner == "data-team"  # type: ignore[attr-defined]

    def test_override_wins_inside_a_run(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """Inside a run the override still wins over the real value."""
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__NAME", "forced")
        seen = {}

        @flow
        def overridden() -> None:
            seen["name"] = runtime.flow_run.name

        overridden()
        assert seen["name"] == "forced"

    def test_prefects_spelling_is_an_alias_cast_like_ours(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """PREFECT__RUNTIME__<MODULE>__<ATTR> (what ported test suites set) overrides like ours: cast to
        the real value's type, unknown attributes answer with the raw string, lists refuse."""
        monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__RUN_COUNT", "3")
        monkeypatch.setenv("PREFECT__RUNTIME__TASK_RUN__FAKE_KEY", "foo")
        monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__TAGS", "a,b")
        seen = {}

        @flow
        def mocked() -> None:
            seen["run_count"] = runtime.flow_run.run_count

        mocked()
        assert seen["run_count"] == 3
        assert runtime.task_run.fake_key == "foo"  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="cannot be mocked"):
            _ = runtime.flow_run.tags

    def test_our_spelling_wins_when_both_are_set(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """With OTEL_RUNTIME__... and PREFECT__RUNTIME__... both set, ours answers; unset, Prefect's does."""
        monkeypatch.setenv("PREFECT__RUNTIME__DEPLOYMENT__NAME", "from-prefect")
        monkeypatch.setenv("PREFECT__RUNTIME__FLOW_RUN__OWNER", "prefect-team")
        monkeypatch.setenv("OTEL_RUNTIME__DEPLOYMENT__NAME", "ours")
        monkeypatch.setenv("OTEL_RUNTIME__FLOW_RUN__OWNER", "our-team")
        assert runtime.deployment.name == "ours"
        assert runtime.flow_run.owner == "our-team"  # type: ignore[attr-defined]
        monkeypatch.delenv("OTEL_RUNTIME__DEPLOYMENT__NAME")
        monkeypatch.delenv("OTEL_RUNTIME__FLOW_RUN__OWNER")
        assert runtime.deployment.name == "from-prefect"
        assert runtime.flow_run.owner == "prefect-team"  # type: ignore[attr-defined]

    def test_bool_cast_is_true_only_for_true(self) -> None:
        """The bool rule: 'true' in any case is True, everything else False."""
        lazy = importlib.import_module("otel_runtime.runtime._lazy")
        assert lazy.cast_override("x.y", "TRUE", False) is True
        assert lazy.cast_override("x.y", "yes", True) is False


def test_deployment_accessors_inside_a_deployment() -> None:
    """Inside `with deployment(...)`, flow and task see the deployment's id, name, version, parameters."""
    seen: dict[str, object] = {}

    @task
    def inner() -> None:
        seen["task_deployment"] = runtime.deployment.name

    @flow
    def etl() -> None:
        seen["id"] = runtime.deployment.id
        seen["version"] = runtime.deployment.version
        seen["parameters"] = runtime.deployment.parameters
        seen["flow_run_id"] = runtime.deployment.flow_run_id
        seen["run"] = runtime.flow_run.id
        inner()

    with deployment("nightly-etl", version="2", parameters={"day": "mon"}) as active:
        etl()
    assert seen["id"] == active.id
    assert seen["version"] == "2"
    assert seen["parameters"] == {"day": "mon"}
    assert seen["flow_run_id"] == seen["run"]
    assert seen["task_deployment"] == "nightly-etl"
