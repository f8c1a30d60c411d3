"""The ``otel-runtime`` command: run flows as deployment runs, draw the recorded runs, check an endpoint.

::

    otel-runtime demo                                    # an example flow, written to the local file
    otel-runtime run flows.py:etl --deployment nightly --param day=2024-05-01 --param limit=10
    otel-runtime traces --last 3                         # the last 3 flow runs in the local file
    otel-runtime check --endpoint http://localhost:4317  # does the collector accept a span?

Telemetry goes where ``otel_runtime.configure()`` sends it: the ``OTEL_*`` variables, else the local
file that ``traces`` reads. Mistakes in the command line are one line on stderr and exit code 2; a
failed flow run or an endpoint that does not accept the test span exit with 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Final

from otel_runtime.cli.check import check_command
from otel_runtime.cli.demo import demo_command
from otel_runtime.cli.errors import CliError
from otel_runtime.cli.run import run_command
from otel_runtime.cli.terminal import PROGRAM
from otel_runtime.cli.traces import traces_command

__all__ = ["CliError", "main"]

_DEFAULT_LAST: Final = 10


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return seconds


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return number


# -- check -----------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="Prefect-style flow runs and task runs as OpenTelemetry traces.",
        epilog="Telemetry follows the OTEL_* variables; without an endpoint it goes to "
        ".otel_runtime/telemetry.jsonl (OTEL_RUNTIME_TELEMETRY_FILE).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser(
        "demo",
        help="run a small example flow and write its telemetry",
        description="Run an example flow (tasks, a retry, a mapped task, a subflow) as deployment 'demo'.",
    )
    demo.set_defaults(handler=demo_command)

    run = commands.add_parser(
        "run",
        help="run a flow from a Python file as a deployment run",
        description="Import a Python file, run one of its flows (as a run of --deployment, if given) and "
        "print each task run as it finishes. Exits with 1 if the flow run failed.",
        epilog="example: otel-runtime run flows.py:etl --deployment nightly --param day=2024-05-01 "
        '--param tables=\'["a", "b"]\'',
    )
    run.add_argument("target", metavar="FILE.py:FLOW", help="the file and the flow function (or flow name)")
    run.add_argument("--deployment", metavar="NAME", help="run the flow as a run of this deployment")
    run.add_argument(
        "--param",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="a flow parameter, typed by the flow's annotation (int, float, bool, str; JSON for lists and "
        "dicts); repeat for more",
    )
    run.set_defaults(handler=run_command)

    traces = commands.add_parser(
        "traces",
        help="draw the recorded flow runs as trees",
        description="Draw the flow runs in the telemetry file as trees: flows, subflows and tasks with "
        "status, duration, retries, deployment and ids; failures stand out.",
    )
    traces.add_argument(
        "--file",
        metavar="FILE",
        help="the OTLP/JSON lines file (default: $OTEL_RUNTIME_TELEMETRY_FILE, "
        "else .otel_runtime/telemetry.jsonl)",
    )
    traces.add_argument(
        "--last",
        metavar="N",
        type=_positive,
        default=_DEFAULT_LAST,
        help=f"show the N most recent flow runs (default {_DEFAULT_LAST})",
    )
    traces.add_argument(
        "--flow-run", metavar="ID", help="show only this flow run (an id or its first characters)"
    )
    traces.add_argument(
        "--follow",
        action="store_true",
        help="keep reading the file: runs as they start and end, running ones with their elapsed time, "
        "a run whose process died as lost (redrawn on a terminal, one line per change when piped); Ctrl-C "
        "stops",
    )
    traces.set_defaults(handler=traces_command)

    check = commands.add_parser(
        "check",
        help="send one test span to the OTLP endpoint",
        description="Send one test span to the OTLP endpoint (--endpoint, else OTEL_EXPORTER_OTLP_[TRACES_]"
        "ENDPOINT) and say whether it was accepted and how long it took. Exits with 1 if it was not.",
    )
    check.add_argument(
        "--endpoint", metavar="URL", help="the collector's base URL, e.g. http://localhost:4317"
    )
    check.add_argument(
        "--protocol",
        choices=("grpc", "http/protobuf"),
        help="default: OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL, else grpc",
    )
    check.add_argument(
        "--timeout", metavar="SECONDS", type=_seconds, default=3.0, help="give up after this long (default 3)"
    )
    check.set_defaults(handler=check_command)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``otel-runtime``; returns the exit code."""
    arguments = _parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except CliError as error:
        print(f"{PROGRAM} {arguments.command}: error: {error}", file=sys.stderr)
        return error.exit_code
    except KeyboardInterrupt:
        print(f"{PROGRAM} {arguments.command}: interrupted", file=sys.stderr)
        return 130
