"""The ``OTEL_RUNTIME_*`` environment variables, each a named constant with its default and an example.

The standard ``OTEL_*`` variables (``OTEL_SERVICE_NAME``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ...) keep
their OpenTelemetry meaning; these are ours.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS",
    "OTEL_RUNTIME_CACHE_DIR",
    "OTEL_RUNTIME_DEPLOYMENT_ID",
    "OTEL_RUNTIME_DEPLOYMENT_NAME",
    "OTEL_RUNTIME_DEPLOYMENT_VERSION",
    "OTEL_RUNTIME_OVERRIDE_PREFIX",
    "OTEL_RUNTIME_PROMETHEUS_ADDRESS",
    "OTEL_RUNTIME_RECORD_PARAMETERS",
    "OTEL_RUNTIME_RUN_EVENTS",
    "OTEL_RUNTIME_RUN_METRICS",
    "OTEL_RUNTIME_SEMCONV",
    "OTEL_RUNTIME_TELEMETRY_FILE",
    "OTEL_RUNTIME_UI_URL",
    "PREFECT_RUNTIME_OVERRIDE_PREFIX",
]

OTEL_RUNTIME_DEPLOYMENT_NAME: Final = "OTEL_RUNTIME_DEPLOYMENT_NAME"
"""Deployment of every flow run this process starts, unless ``with deployment(...)`` says otherwise.

Default: unset (no deployment). Example: ``OTEL_RUNTIME_DEPLOYMENT_NAME=nightly-etl``.
Read once, when the first flow run of the process starts.
"""

OTEL_RUNTIME_DEPLOYMENT_ID: Final = "OTEL_RUNTIME_DEPLOYMENT_ID"
"""Id of the environment's deployment. Default: a UUID5 derived from the deployment name.

Example: ``OTEL_RUNTIME_DEPLOYMENT_ID=0b6e4f9a-6d7e-4c59-9d59-1b2f3c4d5e6f``.
"""

OTEL_RUNTIME_DEPLOYMENT_VERSION: Final = "OTEL_RUNTIME_DEPLOYMENT_VERSION"
"""Version of the environment's deployment. Default: unset.

Example: ``OTEL_RUNTIME_DEPLOYMENT_VERSION=2.1.0``.
"""

OTEL_RUNTIME_UI_URL: Final = "OTEL_RUNTIME_UI_URL"
"""Template for ``runtime.flow_run.ui_url`` / ``runtime.task_run.ui_url``; ``{trace_id}`` is replaced.

Default: unset (``ui_url`` is ``None``).
Example: ``OTEL_RUNTIME_UI_URL=http://localhost:16686/trace/{trace_id}``.
"""

OTEL_RUNTIME_TELEMETRY_FILE: Final = "OTEL_RUNTIME_TELEMETRY_FILE"
"""Where the embedded default writes OTLP/JSON lines when no OTLP endpoint is configured.

Default: ``.otel_runtime/telemetry.jsonl`` in the working directory. Example:
``OTEL_RUNTIME_TELEMETRY_FILE=/var/log/etl/telemetry.jsonl``.
"""

OTEL_RUNTIME_RECORD_PARAMETERS: Final = "OTEL_RUNTIME_RECORD_PARAMETERS"
"""``false`` stops recording run parameters as span attributes in every flow and task.

Default: ``true``. Read by ``configure()``. Example: ``OTEL_RUNTIME_RECORD_PARAMETERS=false``.
"""

OTEL_RUNTIME_OVERRIDE_PREFIX: Final = "OTEL_RUNTIME__"
"""Prefix of the accessor overrides ``OTEL_RUNTIME__<MODULE>__<ATTR>``, for tests and debugging.

Example: ``OTEL_RUNTIME__DEPLOYMENT__NAME=nightly`` makes ``runtime.deployment.name`` return ``"nightly"``.
Read on every access, so a test may set it at any time.
"""

PREFECT_RUNTIME_OVERRIDE_PREFIX: Final = "PREFECT__RUNTIME__"
"""Prefect's spelling of the accessor overrides, ``PREFECT__RUNTIME__<MODULE>__<ATTR>``, accepted as an alias.

Ported test suites set these. When both spellings are set for one attribute,
``OTEL_RUNTIME__<MODULE>__<ATTR>`` wins. Example: ``PREFECT__RUNTIME__FLOW_RUN__NAME=nightly-run``.
"""

OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS: Final = "OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS"
"""Comma list of the baggage keys, besides otel_runtime's own run keys, that may leave the process.

Applies to the ``otel_runtime_baggage`` propagator. A key ending in ``*`` allows a prefix; ``none``
sends only the run keys. Default: unset (every key is sent). Read once, at the first inject, unless
``propagation.configure_baggage(...)`` decides first. Example:
``OTEL_RUNTIME_BAGGAGE_ALLOWED_KEYS=tenant.id,region,feature.*``.
"""

OTEL_RUNTIME_RUN_EVENTS: Final = "OTEL_RUNTIME_RUN_EVENTS"
"""``false`` stops the run events: the log record at the start and at the end of every run.

Default: ``true`` (they go wherever the logs go; with logs off there are none). Read by ``configure()``.
Example: ``OTEL_RUNTIME_RUN_EVENTS=false``.
"""

OTEL_RUNTIME_RUN_METRICS: Final = "OTEL_RUNTIME_RUN_METRICS"
"""``false`` stops the run metrics (active runs, run duration, runs by final state).

Default: ``true`` (they go wherever the metrics go; with metrics off there are none). Read by
``configure()``. Example: ``OTEL_RUNTIME_RUN_METRICS=false``.
"""

OTEL_RUNTIME_PROMETHEUS_ADDRESS: Final = "OTEL_RUNTIME_PROMETHEUS_ADDRESS"
"""``host:port`` where ``configure()`` serves the metrics for Prometheus to scrape (``/metrics``).

Setting it turns the endpoint on, whatever ``OTEL_METRICS_EXPORTER`` says; needs the ``prometheus``
extra (``pip install 'otel-runtime[prometheus]'``). ``OTEL_METRICS_EXPORTER=prometheus`` without it
serves on ``OTEL_EXPORTER_PROMETHEUS_HOST``:``OTEL_EXPORTER_PROMETHEUS_PORT`` (default
``localhost:9464``). Default: unset. Example: ``OTEL_RUNTIME_PROMETHEUS_ADDRESS=127.0.0.1:9464``.
"""

OTEL_RUNTIME_CACHE_DIR: Final = "OTEL_RUNTIME_CACHE_DIR"
"""Directory of the file store of task caching (``cache_policy=``, ``cache_key_fn=``), shared by every
process that uses it, as Prefect's local result storage is. A policy's ``configure(key_storage=...)``
wins for its tasks.

Default: ``.otel_runtime/cache`` in the working directory. Read once, at the first cached task run.
Example: ``OTEL_RUNTIME_CACHE_DIR=/var/cache/etl``.
"""

OTEL_RUNTIME_SEMCONV: Final = "OTEL_RUNTIME_SEMCONV"
"""Extra semantic conventions on run spans, a comma list read by ``configure()``: ``cicd`` adds the
CI/CD ones (a flow run is a ``cicd.pipeline`` run, a task run a ``cicd.pipeline.task`` run).

Default: unset (none). Example: ``OTEL_RUNTIME_SEMCONV=cicd``.
"""
