"""What tells a flow run from a task run where the engine treats both alike: the keys its span uses."""

from __future__ import annotations

from typing import Final, NamedTuple

from otel_runtime._base import keys as _keys

__all__ = ["FLOW", "TASK", "RunKind"]


class RunKind(NamedTuple):
    """The span keys and names of one kind of run (the keys themselves live in ``_base.keys``)."""

    label: str
    """``"Flow"`` or ``"Task"``, as Prefect's state messages say it."""
    name_option: str
    """The decorator option that names a run (``flow_run_name``), also the warning topic when it fails."""
    span_prefix: str
    run_type: str
    name_key: str
    run_id_key: str
    run_name_key: str
    run_count_key: str
    tags_key: str
    parameter_prefix: str
    state_type_key: str
    state_name_key: str


# Two rows of one table, written out by field name so each key reads against its kind.
FLOW: Final = RunKind(
    label="Flow",
    name_option="flow_run_name",
    span_prefix=_keys.FLOW_SPAN_PREFIX,
    run_type=_keys.RUN_TYPE_FLOW,
    name_key=_keys.FLOW_NAME,
    run_id_key=_keys.FLOW_RUN_ID,
    run_name_key=_keys.FLOW_RUN_NAME,
    run_count_key=_keys.FLOW_RUN_RUN_COUNT,
    tags_key=_keys.FLOW_RUN_TAGS,
    parameter_prefix=_keys.FLOW_RUN_PARAMETER_PREFIX,
    state_type_key=_keys.FLOW_RUN_STATE_TYPE,
    state_name_key=_keys.FLOW_RUN_STATE_NAME,
)

TASK: Final = RunKind(
    label="Task",
    name_option="task_run_name",
    span_prefix=_keys.TASK_SPAN_PREFIX,
    run_type=_keys.RUN_TYPE_TASK,
    name_key=_keys.TASK_NAME,
    run_id_key=_keys.TASK_RUN_ID,
    run_name_key=_keys.TASK_RUN_NAME,
    run_count_key=_keys.TASK_RUN_RUN_COUNT,
    tags_key=_keys.TASK_RUN_TAGS,
    parameter_prefix=_keys.TASK_RUN_PARAMETER_PREFIX,
    state_type_key=_keys.TASK_RUN_STATE_TYPE,
    state_name_key=_keys.TASK_RUN_STATE_NAME,
)
