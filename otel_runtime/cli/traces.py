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
from otel_runtime._tools.otlp_read import iter_spans, read_records
from otel_runtime._tools.tree import build_forest, find_flow_runs, render
from otel_runtime.cli.errors import CliError
from otel_runtime.cli.terminal import terminal_style
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
        spans = [span for file in files for record in read_records(file) for span in iter_spans(record)]
    except OSError as error:
        raise CliError(f"cannot read {path}: {error}", 1) from None
    roots = build_forest(spans)
    if arguments.flow_run is not None:
        selected = find_flow_runs(roots, arguments.flow_run)
        ids = {str(node.span["attributes"].get(_keys.FLOW_RUN_ID)) for node in selected}
        if not selected:
            raise CliError(f"no flow run {arguments.flow_run!r} in {path}", 1)
        if len(ids) > 1:
            raise CliError(
                f"{arguments.flow_run!r} matches {len(ids)} flow runs: {', '.join(sorted(ids))}", 1
            )
    else:
        selected = roots[-arguments.last :]
    if not roots:
        print(f"no flow runs recorded in {path}")
        return 0
    for line in render(selected, terminal_style()):
        print(line)
    if arguments.flow_run is None and len(selected) < len(roots):
        print(f"\n(the last {len(selected)} of {len(roots)} runs in {path}; --last N shows more)")
    return 0
