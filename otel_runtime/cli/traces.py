"""``otel-runtime traces``: the recorded flow runs of the local telemetry file, as trees."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

from otel_runtime._base import keys as _keys
from otel_runtime._sdk.file_export import DEFAULT_TELEMETRY_PATH
from otel_runtime._tools.follow import follow
from otel_runtime._tools.printable import printable
from otel_runtime._tools.trace_file import select_runs
from otel_runtime._tools.tree import render
from otel_runtime.cli.errors import CliError
from otel_runtime.cli.terminal import PROGRAM, terminal_style
from otel_runtime.environment_variables import OTEL_RUNTIME_TELEMETRY_FILE

__all__ = ["traces_command"]


def traces_command(arguments: argparse.Namespace) -> int:
    """Draw the flow runs recorded in the telemetry file as trees."""
    path = Path(
        arguments.file or os.environ.get(OTEL_RUNTIME_TELEMETRY_FILE, "").strip() or DEFAULT_TELEMETRY_PATH
    )
    if arguments.follow:  # the live tree (_tools.follow): runs as they start and end, until Ctrl-C
        with contextlib.suppress(KeyboardInterrupt):
            follow(path, sys.stdout, terminal_style(), terminal=sys.stdout.isatty(), last=arguments.last)
        return 0
    rotated = path.with_name(path.name + ".1")
    files = [file for file in (rotated, path) if file.is_file()]  # the older lines first
    if not path.is_file():
        hint = "pass --file" if arguments.file else "run a flow first (otel-runtime demo), or pass --file"
        raise CliError(f"no telemetry file at {path}: {hint}", 1)
    try:
        selection = select_runs(files, last=arguments.last, flow_run=arguments.flow_run)
    except OSError as error:
        raise CliError(f"cannot read {path}: {error}", 1) from None
    if selection.skipped_lines:
        lines = _plural(selection.skipped_lines, "line")
        print(
            f"{PROGRAM} traces: skipped {lines} of {printable(str(path))} that are not OTLP/JSON spans",
            file=sys.stderr,
        )
    selected = selection.roots
    if arguments.flow_run is not None:
        ids = {str(node.span["attributes"].get(_keys.FLOW_RUN_ID)) for node in selected}
        if not selected:
            raise CliError(f"no flow run {arguments.flow_run!r} in {path}", 1)
        if len(ids) > 1:
            raise CliError(
                f"{arguments.flow_run!r} matches {len(ids)} flow runs: {printable(', '.join(sorted(ids)))}", 1
            )
    if not selected:
        print(f"no flow runs recorded in {printable(str(path))}")
        return 0
    for line in render(selected, terminal_style()):
        print(line)
    if selection.more:
        runs = _plural(len(selected), "run")
        traces = _plural(selection.traces, "trace")
        print(f"\n(the last {runs} of {traces} in {printable(str(path))}; --last N shows more)")
    return 0


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"
