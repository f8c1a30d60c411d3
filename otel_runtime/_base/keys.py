"""Every name otel_runtime puts on the wire: baggage keys, span names and attributes, log fields.

This is the one module that spells them (DESIGN section 3). Everything else imports from here,
including the tests that check ``collector-config/`` and ``grafana/`` against what we emit.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "BAGGAGE_KEYS",
    "CACHE_EXPIRES",
    "CACHE_KEY",
    "CACHE_OUTCOME",
    "CACHE_OUTCOME_HIT",
    "CACHE_OUTCOME_MISS",
    "CACHE_OUTCOME_NOT_STORED",
    "CACHE_OUTCOME_NO_KEY",
    "CACHE_OUTCOME_STORED",
    "CACHE_REFRESH",
    "CACHE_STATE_NAME",
    "DEPLOYMENT_ID",
    "DEPLOYMENT_NAME",
    "DEPLOYMENT_VERSION",
    "EXCEPTION_EVENT",
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
    "HOST_NAME",
    "LINK_KIND",
    "LINK_KIND_CACHE",
    "LINK_KIND_UPSTREAM",
    "LINK_KIND_WAIT_FOR",
    "LINK_STATE_NAME",
    "LINK_STATE_TYPE",
    "LINK_TASK_RUN_ID",
    "LOG_DEPLOYMENT_NAME",
    "LOG_FIELDS",
    "LOG_FLOW_NAME",
    "LOG_FLOW_RUN_ID",
    "LOG_FLOW_RUN_NAME",
    "LOG_SPAN_ID",
    "LOG_TASK_NAME",
    "LOG_TASK_RUN_ID",
    "LOG_TASK_RUN_NAME",
    "LOG_TRACE_ID",
    "METRIC_ATTRIBUTES",
    "METRIC_NAMES",
    "METRIC_RUNS_ACTIVE",
    "METRIC_RUNS_FINISHED",
    "METRIC_RUN_DURATION",
    "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN",
    "PARAMETERS_ERRORS",
    "PARAMETERS_INVALID_EVENT",
    "PROCESS_PID",
    "PROMETHEUS_METRICS",
    "PROMETHEUS_RUNS_ACTIVE",
    "PROMETHEUS_RUNS_FINISHED",
    "PROMETHEUS_RUN_DURATION",
    "RETRY_BASE_DELAY_SECONDS",
    "RETRY_CONDITION",
    "RETRY_DECLINED_BY_CONDITION",
    "RETRY_DECLINED_CONDITION_RAISED",
    "RETRY_DECLINED_EVENT",
    "RETRY_DECLINED_REASON",
    "RETRY_DELAY_SECONDS",
    "RETRY_EVENT",
    "RETRY_FAILED_ATTEMPT",
    "RUN_DURATION_S",
    "RUN_END_EVENT",
    "RUN_EVENTS",
    "RUN_EVENT_ATTRIBUTES",
    "RUN_LOGGER_NAME",
    "RUN_PARENT_SPAN_ID",
    "RUN_START_EVENT",
    "RUN_STATE_NAME",
    "RUN_STATE_TYPE",
    "RUN_TYPE",
    "RUN_TYPE_FLOW",
    "RUN_TYPE_TASK",
    "SPAN_ATTRIBUTES",
    "TASK_NAME",
    "TASK_RUN_ATTEMPTS",
    "TASK_RUN_ID",
    "TASK_RUN_NAME",
    "TASK_RUN_PARAMETER_PREFIX",
    "TASK_RUN_RUN_COUNT",
    "TASK_RUN_STATE_NAME",
    "TASK_RUN_STATE_TYPE",
    "TASK_RUN_TAGS",
    "TASK_SPAN_PREFIX",
    "TIMED_OUT_STATE_NAME",
    "TIMEOUT_ATTEMPT",
    "TIMEOUT_EVENT",
    "TIMEOUT_SECONDS",
    "WORKER_ADDRESS",
    "WORKER_DIED_EVENT",
    "WORKER_DIED_SPAN",
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
# Run states (Prefect's model) on the run span: every run span carries its final state.
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
RETRY_DECLINED_EVENT: Final = "retry.declined"
"""Span event added after a failed attempt with retries left that ``retry_condition_fn`` did not retry."""
TIMEOUT_EVENT: Final = "timeout"
"""Span event added when an attempt exceeds the run's ``timeout_seconds``."""
PARAMETERS_INVALID_EVENT: Final = "parameters.invalid"
"""Span event of a flow run whose parameters failed validation against its type hints (it did not run)."""
PARAMETERS_ERRORS: Final = "otel_runtime.parameters.errors"
"""Attribute of the ``parameters.invalid`` event: ``"<parameter>: <problem>"`` per error (no values)."""
TIMED_OUT_STATE_NAME: Final = "TimedOut"
"""The state name (type ``FAILED``) of a run that a ``TimeoutError`` ended, as Prefect names it."""

# Worker deaths (Dask): a task run Dask ran again because the worker of an earlier attempt died.
WORKER_DIED_EVENT: Final = "worker.died"
"""Span event on a task run's span, one per worker that died while the run was sent to it (running or
waiting there), before the run's span was exported."""
WORKER_DIED_SPAN: Final = "worker.died"
"""Span recording a death after the run's span was exported (its result lost), under the flow span."""
WORKER_ADDRESS: Final = "worker.address"
"""Attribute of ``worker.died``: the dead worker's address (``tcp://host:port``)."""
TASK_RUN_ATTEMPTS: Final = "task_run.attempts"
"""How many workers a task run was sent to (deaths + 1); only on a run whose worker died."""

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
LINK_KIND_CACHE: Final = "cache"
"""The linked run produced the cached value this run returned (a cache hit, state ``Cached``)."""
LINK_TASK_RUN_ID: Final = "otel_runtime.link.task_run_id"
LINK_STATE_TYPE: Final = "otel_runtime.link.state.type"
LINK_STATE_NAME: Final = "otel_runtime.link.state.name"

# Task caching: on the span of every task run that has a cache policy.
CACHE_KEY: Final = "otel_runtime.cache.key"
"""32 hex digits of the SHA-256 of the run's cache key (never the key itself, nor the inputs)."""
CACHE_OUTCOME: Final = "otel_runtime.cache.outcome"
"""What the cache did for the run: one of the ``CACHE_OUTCOME_*`` values."""
CACHE_OUTCOME_HIT: Final = "hit"
"""The value came from the cache; the function did not run (state ``Cached``, a ``cache`` link)."""
CACHE_OUTCOME_STORED: Final = "stored"
"""A miss (or a refresh): the function ran and its value was stored under the key."""
CACHE_OUTCOME_NOT_STORED: Final = "not_stored"
"""A miss: the function ran, but its value could not be stored (it cannot be pickled)."""
CACHE_OUTCOME_MISS: Final = "miss"
"""A miss: the function ran and did not complete, so nothing was stored."""
CACHE_OUTCOME_NO_KEY: Final = "no_key"
"""No key could be computed (unhashable inputs, a failing ``cache_key_fn``): no caching for the run."""
CACHE_EXPIRES: Final = "otel_runtime.cache.expires"
"""When the stored or hit value expires (ISO 8601, UTC); absent when it never does."""
CACHE_REFRESH: Final = "otel_runtime.cache.refresh"
"""``True`` on a run of a task with ``refresh_cache=True``: it ran whatever the cache held."""
CACHE_STATE_NAME: Final = "Cached"
"""The state name of a cache hit (type ``COMPLETED``), as Prefect names it."""

# Log fields: structlog event-dict keys and OTLP log record attributes. They mirror the span attributes
# in shape (flow_run.id / flow_run_id): two spellings on purpose, each the convention of its signal.
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

LOG_FLOW_NAME: Final = "flow_name"
LOG_TASK_NAME: Final = "task_name"
"""Prefect's record attributes, which the run logger's lines carry besides ``LOG_FIELDS`` (or ``None``)."""

RETRY_DELAY_SECONDS: Final = "otel_runtime.retry.delay_seconds"
"""Attribute of the ``retry`` event: seconds until the next attempt starts."""
RETRY_FAILED_ATTEMPT: Final = "otel_runtime.retry.failed_attempt"
"""Attribute of the ``retry`` and ``retry.declined`` events: the run count of the attempt that failed."""
RETRY_BASE_DELAY_SECONDS: Final = "otel_runtime.retry.base_delay_seconds"
"""Attribute of the ``retry`` event of a task with ``retry_jitter_factor``: the delay before jitter."""
RETRY_CONDITION: Final = "otel_runtime.retry.condition"
"""Attribute of the ``retry`` and ``retry.declined`` events: the ``retry_condition_fn`` that decided."""
RETRY_DECLINED_REASON: Final = "otel_runtime.retry.declined_reason"
"""Attribute of the ``retry.declined`` event: one of the ``RETRY_DECLINED_*`` values."""
RETRY_DECLINED_BY_CONDITION: Final = "condition_false"
"""``retry_condition_fn`` returned a false value."""
RETRY_DECLINED_CONDITION_RAISED: Final = "condition_raised"
"""``retry_condition_fn`` raised (logged; the run is not retried, as in Prefect)."""
TIMEOUT_SECONDS: Final = "otel_runtime.timeout.seconds"
"""Attribute of the ``timeout`` event: the run's ``timeout_seconds``."""
TIMEOUT_ATTEMPT: Final = "otel_runtime.timeout.attempt"
"""Attribute of the ``timeout`` event: the run count of the attempt that timed out."""

RUN_LOGGER_NAME: Final = "otel_runtime.run"
"""The logger name of ``get_run_logger()`` and of captured prints (the ``logger`` of their lines)."""

# -- Run states, run events and run metrics (watching runs while they run) ---------------------------

# Run events: one OpenTelemetry event (a log record with this ``event_name``) at the start and at the
# end of every flow run and task run. Their attributes: the log fields (``LOG_FIELDS``, trace and span
# id of the run's span included), ``RUN_TYPE``, ``FLOW_NAME`` / ``TASK_NAME`` and those below.
RUN_START_EVENT: Final = "otel_runtime.run.start"
RUN_END_EVENT: Final = "otel_runtime.run.end"
RUN_EVENTS: Final = (RUN_START_EVENT, RUN_END_EVENT)
RUN_STATE_TYPE: Final = "otel_runtime.run.state.type"
"""The run's state type (``RUNNING`` at the start; ``COMPLETED``, ``FAILED``, ... at the end); also a
metric attribute."""
RUN_STATE_NAME: Final = "otel_runtime.run.state.name"
"""The run's state name (``Running``, ``Completed``, ``Cached``, ...); also a metric attribute."""
RUN_DURATION_S: Final = "otel_runtime.run.duration_s"
"""End event: seconds from the start of the run's span to its end."""
RUN_PARENT_SPAN_ID: Final = "otel_runtime.run.parent_span_id"
"""Start event: the span id (16 hex) of the run span's parent, so a live tree can place the run."""
PROCESS_PID: Final = "process.pid"  # OpenTelemetry semantic conventions: the process that runs it
HOST_NAME: Final = "host.name"  # OpenTelemetry semantic conventions: the host it runs on

RUN_EVENT_ATTRIBUTES: Final = (
    *LOG_FIELDS,
    RUN_TYPE,
    FLOW_NAME,
    TASK_NAME,
    RUN_STATE_TYPE,
    RUN_STATE_NAME,
    RUN_DURATION_S,
    RUN_PARENT_SPAN_ID,
    PROCESS_PID,
    HOST_NAME,
)
"""Every attribute key a run event can carry."""

# Run metrics, through the OpenTelemetry metrics API.
METRIC_RUNS_ACTIVE: Final = "otel_runtime.run.active"
"""Up-down counter: runs started and not yet ended (unit ``{run}``)."""
METRIC_RUN_DURATION: Final = "otel_runtime.run.duration"
"""Histogram: seconds from a run's start to its end (unit ``s``)."""
METRIC_RUNS_FINISHED: Final = "otel_runtime.run.finished"
"""Counter: runs ended, by final state (unit ``{run}``)."""
METRIC_NAMES: Final = (METRIC_RUNS_ACTIVE, METRIC_RUN_DURATION, METRIC_RUNS_FINISHED)
METRIC_ATTRIBUTES: Final = (RUN_TYPE, FLOW_NAME, TASK_NAME, DEPLOYMENT_NAME, RUN_STATE_TYPE, RUN_STATE_NAME)
"""The attributes of run metrics (the state ones only on duration and finished). Never a run id."""

# The same metrics as Prometheus names them (dots to underscores, the unit and ``_total`` suffixes),
# whether scraped from the library's endpoint or from the Collector's prometheus exporter.
PROMETHEUS_RUNS_ACTIVE: Final = "otel_runtime_run_active"
PROMETHEUS_RUN_DURATION: Final = "otel_runtime_run_duration_seconds"
PROMETHEUS_RUNS_FINISHED: Final = "otel_runtime_run_finished_total"
PROMETHEUS_METRICS: Final = (PROMETHEUS_RUNS_ACTIVE, PROMETHEUS_RUN_DURATION, PROMETHEUS_RUNS_FINISHED)

# Semantic conventions: exceptions as log records (the conventions are moving them off span events).
OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN: Final = "OTEL_SEMCONV_EXCEPTION_SIGNAL_OPT_IN"
"""The standard opt-in: ``logs`` records a run's exceptions as log records instead of span events,
``logs/dup`` as both; unset (or anything else), as span events only."""
EXCEPTION_EVENT: Final = "exception"
"""The event name of an exception log record, as of the span event the conventions name."""
