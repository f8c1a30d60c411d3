"""The ``otel-runtime`` command."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from otel_runtime._configure import configure
from otel_runtime._deployments import deployment

__all__ = ["main"]


def _demo(_: argparse.Namespace) -> int:
    """Run the demo flow as a run of the deployment ``demo``, and say where its telemetry went."""
    from otel_runtime._demo import demo_etl

    telemetry = configure()
    with deployment("demo", version="1"):
        result = demo_etl()
    telemetry.force_flush()
    exporters = ", ".join(telemetry.traces_exporters) or "none"
    where = telemetry.telemetry_file if telemetry.telemetry_file is not None else f"exporter: {exporters}"
    print(f"flow run {result['flow_run_name']} ({result['flow_run_id']}) finished: {result['report']}")
    print(f"trace id: {result['trace_id']}")
    print(f"telemetry written to {where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``otel-runtime``; returns the exit code."""
    parser = argparse.ArgumentParser(prog="otel-runtime", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run a small example flow and write its telemetry")
    demo.set_defaults(handler=_demo)
    arguments = parser.parse_args(argv)
    return int(arguments.handler(arguments))


if __name__ == "__main__":
    sys.exit(main())
