"""Shared fixtures: every test gets a fresh SDK tracer provider that records spans in memory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_runtime.testing import CapturedSpans, capture_spans


@pytest.fixture(autouse=True)
def spans() -> Iterator[CapturedSpans]:
    """A real SDK tracer provider, global for the test, with an in-memory exporter; reset afterwards."""
    with capture_spans() as captured:
        yield captured
