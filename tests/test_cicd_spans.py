"""OTEL_RUNTIME_SEMCONV=cicd: flow runs carry the CI/CD pipeline-run conventions and task runs the
pipeline-task-run ones, with each run's result from its final state; off, no cicd.* attribute at all."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.semconv._incubating.attributes import cicd_attributes as cicd

from otel_runtime import configure, flow, task
from otel_runtime._base.settings import settings
from otel_runtime.states import Completed
from otel_runtime.testing import CapturedSpans, use_logger_provider


@task
def ok() -> int:
    return 1


@task
def skipped():
    return Completed(name="Skipped")


@task
def broken() -> int:
    raise ValueError("no")


@flow
def pipeline() -> int:
    skipped()
    with contextlib.suppress(ValueError):
        broken()
    return ok()


@flow
def failing() -> None:
    broken()


@pytest.fixture(autouse=True)
def configured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("OTEL_") and name not in ("OTEL_RUNTIME_RUN_EVENTS", "OTEL_METRICS_EXPORTER"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    with use_logger_provider(None):
        yield
    settings.semconv_cicd = False


def set_up(monkeypatch: pytest.MonkeyPatch, value: str | None) -> None:
    if value is not None:
        monkeypatch.setenv("OTEL_RUNTIME_SEMCONV", value)
    monkeypatch.setenv("OTEL_RUNTIME_UI_URL", "http://127.0.0.1:16686/trace/{trace_id}")
    configure(traces_exporter="none", logs_exporter="none").shutdown(timeout_millis=500)


def test_flow_and_task_runs_carry_the_cicd_conventions(
    spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flow is a pipeline run (name, run id, URL, state ``executing``, result ``success``); each task a
    pipeline task run whose result follows its state: success, skip, failure."""
    set_up(monkeypatch, "cicd")
    pipeline()
    run = spans.find("flow pipeline")
    attributes = dict(run.attributes or {})
    trace_id = format(run.context.trace_id, "032x") if run.context else ""
    assert {key: value for key, value in attributes.items() if key.startswith("cicd.")} == {
        cicd.CICD_PIPELINE_NAME: "pipeline",
        cicd.CICD_PIPELINE_RUN_ID: attributes["flow_run.id"],
        cicd.CICD_PIPELINE_RUN_URL_FULL: f"http://127.0.0.1:16686/trace/{trace_id}",
        cicd.CICD_PIPELINE_RUN_STATE: "executing",
        cicd.CICD_PIPELINE_RESULT: "success",
    }
    results = {}
    for name in ("task ok", "task skipped", "task broken"):
        task_attributes = spans.find(name).attributes or {}
        assert task_attributes[cicd.CICD_PIPELINE_TASK_NAME] == name.removeprefix("task ")
        assert task_attributes[cicd.CICD_PIPELINE_TASK_RUN_ID] == task_attributes["task_run.id"]
        results[name] = task_attributes[cicd.CICD_PIPELINE_TASK_RUN_RESULT]
    assert results == {"task ok": "success", "task skipped": "skip", "task broken": "failure"}


def test_a_failed_flow_run_has_result_failure(spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pipeline result follows the flow run's final state."""
    set_up(monkeypatch, "http, cicd")
    with pytest.raises(ValueError, match="no"):
        failing()
    assert (spans.find("flow failing").attributes or {})[cicd.CICD_PIPELINE_RESULT] == "failure"


@pytest.mark.parametrize("value", [None, "", "http"])
def test_without_the_opt_in_no_cicd_attribute_is_added(
    value: str | None, spans: CapturedSpans, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unset or without ``cicd``: run spans have no cicd.* attribute, failed or not."""
    set_up(monkeypatch, value)
    with pytest.raises(ValueError, match="no"):
        failing()
    pipeline()
    assert not [key for span in spans.spans for key in span.attributes or {} if key.startswith("cicd.")]
