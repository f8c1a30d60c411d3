"""otel_runtime.testing: users capture the spans of their own runs."""

from __future__ import annotations

import doctest
import subprocess
import sys

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


def test_capture_spans_loads_no_grpc_or_protobuf() -> None:
    """Importing otel_runtime.testing and capturing a flow's spans loads neither gRPC nor protobuf."""
    code = (
        "import sys\n"
        "from otel_runtime import flow\n"
        "from otel_runtime.testing import capture_spans\n"
        "@flow\n"
        "def small() -> int:\n"
        "    return 1\n"
        "with capture_spans() as captured:\n"
        "    small()\n"
        "assert captured.find('flow small') is not None\n"
        "print(sorted(m for m in sys.modules if m.startswith(('grpc', 'google.protobuf'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_otlp_receiver_is_still_importable_from_testing() -> None:
    """``from otel_runtime.testing import OtlpReceiver`` loads the receiver on first use."""
    from otel_runtime.testing import OtlpReceiver

    assert OtlpReceiver.__name__ == "OtlpReceiver"
