"""``otel-runtime demo``: the example flow as a run of the deployment ``demo``."""

from __future__ import annotations

import argparse

from otel_runtime._core.deployments import deployment
from otel_runtime.cli.progress import start_progress
from otel_runtime.cli.telemetry import configure_telemetry, flush_telemetry, telemetry_destination
from otel_runtime.cli.terminal import terminal_style

__all__ = ["demo_command"]


def demo_command(_: argparse.Namespace) -> int:
    """Run the demo flow as a run of the deployment ``demo``, and say where its telemetry went."""
    from otel_runtime._tools.demo import demo_etl

    telemetry = configure_telemetry()
    start_progress(telemetry, terminal_style())
    with deployment("demo", version="1"):
        result = demo_etl()
    flush_telemetry(telemetry)
    print(f"flow run {result['flow_run_name']} ({result['flow_run_id']}) finished: {result['report']}")
    print(f"trace id: {result['trace_id']}")
    print(telemetry_destination(telemetry))
    return 0
