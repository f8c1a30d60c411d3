"""The CI/CD semantic conventions for runs (opt-in): a flow run is a pipeline run, a task run a task run.

Names come from ``opentelemetry.semconv._incubating.attributes.cicd_attributes`` (release candidate).
A run's Prefect state maps to ``cicd.pipeline.result`` / ``cicd.pipeline.task.run.result``:
``COMPLETED`` is ``success`` (``Skipped`` is ``skip``), ``FAILED`` is ``failure`` (``TimedOut`` is
``timeout``), ``CRASHED`` is ``error``, ``CANCELLED`` is ``cancellation``, ``PENDING`` (``NotReady``:
an upstream failed, so the run never started) is ``skip``.
"""

from __future__ import annotations

from typing import Final

from opentelemetry.semconv._incubating.attributes.cicd_attributes import (
    CICD_PIPELINE_NAME,
    CICD_PIPELINE_RESULT,
    CICD_PIPELINE_RUN_ID,
    CICD_PIPELINE_RUN_STATE,
    CICD_PIPELINE_RUN_URL_FULL,
    CICD_PIPELINE_TASK_NAME,
    CICD_PIPELINE_TASK_RUN_ID,
    CICD_PIPELINE_TASK_RUN_RESULT,
    CICD_PIPELINE_TASK_RUN_URL_FULL,
    CicdPipelineResultValues,
    CicdPipelineRunStateValues,
)

__all__ = [
    "CICD_PIPELINE_NAME",
    "CICD_PIPELINE_RESULT",
    "CICD_PIPELINE_RUN_ID",
    "CICD_PIPELINE_RUN_STATE",
    "CICD_PIPELINE_RUN_URL_FULL",
    "CICD_PIPELINE_TASK_NAME",
    "CICD_PIPELINE_TASK_RUN_ID",
    "CICD_PIPELINE_TASK_RUN_RESULT",
    "CICD_PIPELINE_TASK_RUN_URL_FULL",
    "EXECUTING",
    "SUCCESS",
    "cicd_result",
]

SUCCESS: Final = CicdPipelineResultValues.SUCCESS.value
EXECUTING: Final = CicdPipelineRunStateValues.EXECUTING.value
_BY_NAME: Final = {
    "Skipped": CicdPipelineResultValues.SKIP.value,
    "TimedOut": CicdPipelineResultValues.TIMEOUT.value,
}
_BY_TYPE: Final = {
    "COMPLETED": SUCCESS,
    "FAILED": CicdPipelineResultValues.FAILURE.value,
    "CRASHED": CicdPipelineResultValues.ERROR.value,
    "CANCELLED": CicdPipelineResultValues.CANCELLATION.value,
    "PENDING": CicdPipelineResultValues.SKIP.value,
}


def cicd_result(state_type: str, state_name: str) -> str | None:
    """The CI/CD result of a run's final state; ``None`` for a state the conventions have no word for."""
    return _BY_NAME.get(state_name) or _BY_TYPE.get(state_type)
