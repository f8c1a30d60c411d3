"""Every name otel_runtime puts on the wire: baggage keys, span names and attributes, log fields.

This is the one module that spells them (DESIGN section 3). Everything else imports from here,
including the tests that check ``collector-config/`` and ``grafana/`` against what we emit.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAGGAGE_KEYS",
    "DEPLOYMENT_ID",
    "DEPLOYMENT_NAME",
    "DEPLOYMENT_VERSION",
    "FLOW_NAME",
    "FLOW_RUN_ID",
    "FLOW_RUN_NAME",
    "FLOW_RUN_PARAMETER_PREFIX",
    "FLOW_RUN_PARENT_ID",
    "FLOW_RUN_ROOT_ID",
    "FLOW_RUN_RUN_COUNT",
    "FLOW_RUN_STATE_NAME",
    "FLOW_RUN_STATE_TYPE",
    "FLOW_RUN_TAGS",
    "FLOW_SPAN_PREFIX",
    "FLOW_VERSION",
    "HOOK_EVENT",
    "HOOK_EXCEPTION_TYPE",
    "HOOK_NAME",
    "HOOK_OUTCOME",
    "HOOK_OUTCOME_FAILED",
    "HOOK_OUTCOME_SUCCEEDED",
    "HOOK_STATE_NAME",
    "HOOK_TYPE",
    "LINK_KIND",
    "LINK_KIND_UPSTREAM",
    "LINK_KIND_WAIT_FOR",
    "LINK_STATE_NAME",
    "LINK_STATE_TYPE",
    "LINK_TASK_RUN_ID",
    "LOG_DEPLOYMENT_NAME",
    "LOG_FIELDS",
    "LOG_FLOW_RUN_ID",
    "LOG_FLOW_RUN_NAME",
    "LOG_SPAN_ID",
    "LOG_TASK_RUN_ID",
    "LOG_TASK_RUN_NAME",
    "LOG_TRACE_ID",
    "RETRY_DELAY_SECONDS",
    "RETRY_EVENT",
    "RETRY_FAILED_ATTEMPT",
    "RUN_TYPE",
    "RUN_TYPE_FLOW",
    "RUN_TYPE_TASK",
    "SPAN_ATTRIBUTES",
    "TASK_NAME",
    "TASK_RUN_ID",
    "TASK_RUN_NAME",
    "TASK_RUN_PARAMETER_PREFIX",
    "TASK_RUN_RUN_COUNT",
    "TASK_RUN_STATE_NAME",
    "TASK_RUN_STATE_TYPE",
    "TASK_RUN_TAGS",
    "TASK_SPAN_PREFIX",
]

# Baggage: the identity that travels with the work. Also span attributes of the same name.
DEPLOYMENT_ID: Final = "deployment.id"
DEPLOYMENT_NAME: Final = "deployment.name"
FLOW_RUN_ID: Final = "flow_run.id"
FLOW_RUN_NAME: Final = "flow_run.name"
FLOW_NAME: Final = "flow.name"
TASK_RUN_ID: Final = "task_run.id"

BAGGAGE_KEYS: Final = (DEPLOYMENT_ID, DEPLOYMENT_NAME, FLOW_RUN_ID, FLOW_RUN_NAME, FLOW_NAME, TASK_RUN_ID)
"""The keys otel_runtime sets in W3C baggage; nothing else of ours leaves the process in baggage."""

# Span names: ``flow <flow name>`` / ``task <task name>``; never a run id or run name.
FLOW_SPAN_PREFIX: Final = "flow "
TASK_SPAN_PREFIX: Final = "task "

# Span attributes beyond the baggage keys.
DEPLOYMENT_VERSION: Final = "deployment.version"
RUN_TYPE: Final = "otel_runtime.run.type"
RUN_TYPE_FLOW: Final = "flow"
RUN_TYPE_TASK: Final = "task"
FLOW_VERSION: Final = "flow.version"
FLOW_RUN_TAGS: Final = "flow_run.tags"
FLOW_RUN_RUN_COUNT: Final = "flow_run.run_count"
FLOW_RUN_PARENT_ID: Final = "flow_run.parent_id"
FLOW_RUN_ROOT_ID: Final = "flow_run.root_id"
TASK_NAME: Final = "task.name"
TASK_RUN_NAME: Final = "task_run.name"
TASK_RUN_TAGS: Final = "task_run.tags"
TASK_RUN_RUN_COUNT: Final = "task_run.run_count"
FLOW_RUN_STATE_TYPE: Final = "flow_run.state.type"
FLOW_RUN_STATE_NAME: Final = "flow_run.state.name"
TASK_RUN_STATE_TYPE: Final = "task_run.state.type"
TASK_RUN_STATE_NAME: Final = "task_run.state.name"
FLOW_RUN_PARAMETER_PREFIX: Final = "flow_run.parameter."
TASK_RUN_PARAMETER_PREFIX: Final = "task_run.parameter."

SPAN_ATTRIBUTES: Final = (
    DEPLOYMENT_ID,
    DEPLOYMENT_NAME,
    DEPLOYMENT_VERSION,
    RUN_TYPE,
    FLOW_NAME,
    FLOW_VERSION,
    FLOW_RUN_ID,
    FLOW_RUN_NAME,
    FLOW_RUN_TAGS,
    FLOW_RUN_RUN_COUNT,
    FLOW_RUN_PARENT_ID,
    FLOW_RUN_ROOT_ID,
    TASK_NAME,
    TASK_RUN_ID,
    TASK_RUN_NAME,
    TASK_RUN_TAGS,
    TASK_RUN_RUN_COUNT,
    FLOW_RUN_STATE_TYPE,
    FLOW_RUN_STATE_NAME,
    TASK_RUN_STATE_TYPE,
    TASK_RUN_STATE_NAME,
)
"""Our own span attribute keys (parameters add ``*_PARAMETER_PREFIX + name``; code.* and error.type
come from the OpenTelemetry semantic conventions)."""

RETRY_EVENT: Final = "retry"
"""Span event added after a failed attempt that will be retried."""

# State hooks: one span event per hook run, on the span of the run whose state it answered.
HOOK_EVENT: Final = "otel_runtime.hook"
HOOK_NAME: Final = "otel_runtime.hook.name"
"""The hook function's name (``functools.partial`` unwrapped)."""
HOOK_TYPE: Final = "otel_runtime.hook.type"
"""Which hook list it came from: ``on_completion``, ``on_failure``, ``on_crashed``, ..."""
HOOK_STATE_NAME: Final = "otel_runtime.hook.state_name"
"""The name of the state the hook answered (``Completed``, ``Failed``, ``Running``, ...)."""
HOOK_OUTCOME: Final = "otel_runtime.hook.outcome"
HOOK_OUTCOME_SUCCEEDED: Final = "succeeded"
HOOK_OUTCOME_FAILED: Final = "failed"
HOOK_EXCEPTION_TYPE: Final = "exception.type"
"""On a hook that raised: the exception's qualified class name (semantic-conventions name)."""

# Span links from a run to the runs it depended on.
LINK_KIND: Final = "otel_runtime.link.kind"
LINK_KIND_WAIT_FOR: Final = "wait_for"
"""The run waited for the linked run (``wait_for=[...]``) before it started."""
LINK_KIND_UPSTREAM: Final = "upstream"
"""The linked run is an upstream whose failure kept this run from starting (state ``NotReady``)."""
LINK_TASK_RUN_ID: Final = "otel_runtime.link.task_run_id"
LINK_STATE_TYPE: Final = "otel_runtime.link.state.type"
LINK_STATE_NAME: Final = "otel_runtime.link.state.name"

# Log fields: structlog event-dict keys and OTLP log record attributes.
LOG_DEPLOYMENT_NAME: Final = "deployment_name"
LOG_FLOW_RUN_ID: Final = "flow_run_id"
LOG_FLOW_RUN_NAME: Final = "flow_run_name"
LOG_TASK_RUN_ID: Final = "task_run_id"
LOG_TASK_RUN_NAME: Final = "task_run_name"
LOG_TRACE_ID: Final = "trace_id"
LOG_SPAN_ID: Final = "span_id"

LOG_FIELDS: Final = (
    LOG_DEPLOYMENT_NAME,
    LOG_FLOW_RUN_ID,
    LOG_FLOW_RUN_NAME,
    LOG_TASK_RUN_ID,
    LOG_TASK_RUN_NAME,
    LOG_TRACE_ID,
    LOG_SPAN_ID,
)
"""The fields the structlog processor stamps on every log line, in this order."""

RETRY_DELAY_SECONDS: Final = "otel_runtime.retry.delay_seconds"
"""Attribute of the ``retry`` event: seconds until the next attempt starts."""
RETRY_FAILED_ATTEMPT: Final = "otel_runtime.retry.failed_attempt"
"""Attribute of the ``retry`` event: the run count of the attempt that failed."""
