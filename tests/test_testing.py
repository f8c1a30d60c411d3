"""otel_runtime.testing: users capture the spans of their own runs."""

from __future__ import annotations

import doctest

from opentelemetry import trace

import otel_runtime.testing
from otel_runtime import flow
from otel_runtime.testing import capture_spans


def test_module_example_runs() -> None:
    """The example in the testing module's docstring runs and passes."""
    assert doctest.testmod(otel_runtime.testing).failed == 0


def test_capture_spans_restores_the_previous_global_provider() -> None:
    """Inside the block spans are captured; afterwards the previous global provider is back."""
    before = trace.get_tracer_provider()

    @flow
    def captured_flow() -> None:
        pass

    with capture_spans() as captured:
        captured_flow()
        assert trace.get_tracer_provider() is captured.provider
    assert [span.name for span in captured.spans] == ["flow captured_flow"]
    assert trace.get_tracer_provider() is before
