"""Deployments: the context manager, the environment, inheritance by tasks and nested flows."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid

import pytest

from otel_runtime import deployment, flow, runtime, task
from otel_runtime._base import keys as _keys
from otel_runtime.testing import CapturedSpans


@task
def report_deployment() -> tuple[str | None, str | None]:
    return runtime.deployment.name, runtime.deployment.id


def test_without_an_explicit_id_the_id_is_a_stable_uuid5_of_the_name() -> None:
    """Two deployments of the same name get the same UUID5 id; another name gets another id."""
    with deployment("nightly") as first, deployment("nightly") as second, deployment("hourly") as other:
        pass
    assert first.id == second.id != other.id
    assert uuid.UUID(first.id).version == 5


def test_explicit_id_is_kept_and_bad_names_or_ids_are_refused() -> None:
    """An explicit id is used as given; a name or id that could not travel in baggage is a ValueError."""
    with deployment("nightly", id="dep-42") as active:
        assert active.id == "dep-42"
    with pytest.raises(ValueError, match="deployment name"), deployment("bad\nname"):
        pass
    with pytest.raises(ValueError, match="deployment id"), deployment("ok", id="has space"):
        pass


def test_tasks_called_and_submitted_and_nested_flows_inherit_the_deployment(spans: CapturedSpans) -> None:
    """Called tasks, submitted tasks and subflows all answer with the flow run's deployment."""
    seen: dict[str, object] = {}

    @flow
    def child() -> None:
        seen["child"] = runtime.deployment.name
        seen["parent_deployment_id"] = runtime.flow_run.parent_deployment_id

    @flow
    def parent() -> None:
        seen["called"] = report_deployment()
        seen["submitted"] = report_deployment.submit().result()
        child()

    with deployment("nightly-etl") as active:
        parent()
    assert seen["called"] == seen["submitted"] == ("nightly-etl", active.id)
    assert seen["child"] == "nightly-etl"
    assert seen["parent_deployment_id"] == active.id
    for span in spans.spans:
        assert span.attributes is not None
        assert span.attributes[_keys.DEPLOYMENT_NAME] == "nightly-etl"
        assert span.attributes[_keys.DEPLOYMENT_ID] == active.id


def test_deployment_version_is_a_span_attribute(spans: CapturedSpans) -> None:
    """deployment.version is recorded on the flow span when the deployment has one."""

    @flow
    def versioned() -> None:
        pass

    with deployment("nightly", version="7"):
        versioned()
    attributes = spans.find("flow versioned").attributes
    assert attributes is not None and attributes[_keys.DEPLOYMENT_VERSION] == "7"


def test_run_without_a_deployment_has_empty_deployment_values(spans: CapturedSpans) -> None:
    """Without a deployment: name and id None, parameters {} (in the run too), no deployment attributes."""
    seen = {}

    @flow
    def plain() -> None:
        seen["name"] = runtime.deployment.name
        seen["parameters"] = runtime.deployment.parameters

    plain()
    assert seen == {"name": None, "parameters": {}}
    attributes = spans.find("flow plain").attributes
    assert attributes is not None and _keys.DEPLOYMENT_ID not in attributes


def test_innermost_deployment_context_wins() -> None:
    """A deployment block inside another applies to the flows started in it."""

    @flow
    def which() -> str | None:
        return runtime.deployment.name

    with deployment("outer"):
        with deployment("inner"):
            assert which() == "inner"
        assert which() == "outer"


def test_environment_variables_name_the_deployment_of_a_process(tmp_path: pytest.TempPathFactory) -> None:
    """OTEL_RUNTIME_DEPLOYMENT_* make every flow run of the process (and its tasks) a deployment run."""
    script = textwrap.dedent(
        """
        from otel_runtime import deployment, flow, runtime, task

        @task
        def inner():
            return runtime.deployment.name

        @flow
        def etl():
            return runtime.deployment.name, runtime.deployment.id, runtime.deployment.version, inner()

        print(*etl(), sep="|")
        with deployment("explicit"):
            print(etl()[0])
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={
            "OTEL_RUNTIME_DEPLOYMENT_NAME": "from-env",
            "OTEL_RUNTIME_DEPLOYMENT_ID": "env-id",
            "OTEL_RUNTIME_DEPLOYMENT_VERSION": "9",
            "OTEL_TRACES_EXPORTER": "none",
            "PATH": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.splitlines() == ["from-env|env-id|9|from-env", "explicit"]
