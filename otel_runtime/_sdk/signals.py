"""The two signals the SDK wiring exports, and the export results the generic pieces return for each."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Generic, Literal, TypeVar

from opentelemetry.sdk._logs import ReadableLogRecord
from opentelemetry.sdk._logs.export import LogRecordExportResult
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult

__all__ = ["LOGS", "NOUNS", "SPANS", "ItemT", "ResultT", "Signal", "SignalResults"]

Signal = Literal["traces", "logs"]
"""A signal as OpenTelemetry names it (``OTEL_TRACES_EXPORTER``, ``/v1/traces``)."""

NOUNS: Final[dict[Signal, str]] = {"traces": "spans", "logs": "log records"}
"""What one item of a signal is called in a message to the user."""

ItemT = TypeVar("ItemT")
ResultT = TypeVar("ResultT")


@dataclass(frozen=True, slots=True)
class SignalResults(Generic[ItemT, ResultT]):
    """The span or log side of an exporter: the signal, and the SDK's result enum for an export."""

    signal: Signal
    success: ResultT
    failure: ResultT

    def of(self, ok: bool) -> ResultT:
        """``success`` if ``ok``, else ``failure``."""
        return self.success if ok else self.failure


SPANS: Final[SignalResults[ReadableSpan, SpanExportResult]] = SignalResults(
    "traces", SpanExportResult.SUCCESS, SpanExportResult.FAILURE
)
LOGS: Final[SignalResults[ReadableLogRecord, LogRecordExportResult]] = SignalResults(
    "logs", LogRecordExportResult.SUCCESS, LogRecordExportResult.FAILURE
)
