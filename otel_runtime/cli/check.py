"""``otel-runtime check``: does the configured OTLP endpoint accept a test span?"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time
from collections.abc import Iterator
from typing import Final

from opentelemetry.sdk.environment_variables import (
    OTEL_EXPORTER_OTLP_ENDPOINT,
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT,
)
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags

from otel_runtime._sdk.exporters import otlp_span_exporter
from otel_runtime._sdk.options import check_endpoint, make_resource, resolve_protocol
from otel_runtime.cli.errors import CliError

__all__ = ["check_command"]

_CHECK_SPAN_NAME: Final = "otel-runtime check"


class _Collect(logging.Handler):
    """Keeps the exporters' own complaints, for the one-line reason of a failed check."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def reason(self) -> str:
        """The exporter's last word, or its first when the last only says it gave up retrying."""
        if not self.records:
            return "no reason given"
        final = max(self.records, key=lambda record: record.levelno).getMessage()
        if "max retries" in final:  # the HTTP exporter's give-up line names no cause; its first warning does
            final = self.records[0].getMessage()
        text = " ".join(final.split())
        return text if len(text) <= 300 else text[:299] + "…"


@contextlib.contextmanager
def _collect_exporter_logs() -> Iterator[_Collect]:
    logger = logging.getLogger("opentelemetry.exporter")
    handler = _Collect()
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False  # told once, in our words, instead of the exporter's stack of warnings
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def _test_span() -> ReadableSpan:
    ids = RandomIdGenerator()
    context = SpanContext(
        trace_id=ids.generate_trace_id(),
        span_id=ids.generate_span_id(),
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    now = time.time_ns()
    return ReadableSpan(
        name=_CHECK_SPAN_NAME,
        context=context,
        resource=make_resource(None, None),
        kind=SpanKind.INTERNAL,
        instrumentation_scope=InstrumentationScope("otel_runtime.cli"),
        start_time=now,
        end_time=now,
    )


def check_command(arguments: argparse.Namespace) -> int:
    """Send one span to the OTLP endpoint and say whether it was accepted, and how fast."""
    try:
        protocol = resolve_protocol("traces", arguments.protocol)
        endpoint = arguments.endpoint
        if endpoint is not None:
            endpoint = check_endpoint(endpoint)
    except ValueError as error:
        raise CliError(str(error)) from None
    if endpoint is not None:
        shown = f"{endpoint.rstrip('/')}/v1/traces" if protocol == "http/protobuf" else endpoint
    else:
        per_signal = os.environ.get(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, "").strip()
        generic = os.environ.get(OTEL_EXPORTER_OTLP_ENDPOINT, "").strip()
        if not per_signal and not generic:
            raise CliError(
                "no OTLP endpoint to check: pass --endpoint URL or set OTEL_EXPORTER_OTLP_ENDPOINT "
                "(without one, telemetry goes to the local file)"
            )
        shown = per_signal or (f"{generic.rstrip('/')}/v1/traces" if protocol == "http/protobuf" else generic)
    span = _test_span()
    with _collect_exporter_logs() as complaints:
        try:
            exporter = otlp_span_exporter(endpoint=endpoint, protocol=protocol, timeout=arguments.timeout)
        except Exception as error:  # credentials or certificate files the exporter could not load
            raise CliError(f"cannot set up the OTLP exporter: {error}", 1) from None
        started = time.perf_counter()
        try:
            outcome = exporter.export([span])
        finally:
            elapsed = time.perf_counter() - started
            exporter.shutdown()
    took = f"{elapsed * 1000:.0f} ms" if elapsed < 1 else f"{elapsed:.2f} s"
    if outcome is not SpanExportResult.SUCCESS:
        raise CliError(
            f"{shown} ({protocol}) did not accept the test span, after {took}: {complaints.reason()}", 1
        )
    trace_id = span.context.trace_id if span.context is not None else 0
    print(f"OK: {shown} ({protocol}) accepted a test span in {took} (trace id {trace_id:032x})")
    return 0


# -- the parser ------------------------------------------------------------------------------------
