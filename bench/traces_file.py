"""``python -m bench.traces_file``: time and peak memory of ``otel-runtime traces`` on a big telemetry file.

The file is made of a real recording (``otel-runtime demo``, run once in a temporary folder): its lines
are copied over and over with fresh trace ids and later timestamps until the file reaches ``--mb``
megabytes, so it holds thousands of demo flow runs and their log records. Each round runs the real
command in a fresh interpreter and reads its wall time and peak RSS (``wait4``). ``--root`` runs another
checkout of the package (``PYTHONPATH``), to compare before and after a change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

_TRACE_ID = re.compile(rb'"traceId":"([0-9a-f]{32})"')
_NANOS = re.compile(rb'"(start|end|observed|)(TimeUnixNano|timeUnixNano)":"(\d+)"')


def _record_demo(folder: Path) -> list[bytes]:
    subprocess.run(
        [sys.executable, "-m", "otel_runtime.cli", "demo"], cwd=folder, check=True, capture_output=True
    )
    return (folder / ".otel_runtime" / "telemetry.jsonl").read_bytes().splitlines()


def _copy(lines: list[bytes], shift_ns: int) -> Iterator[bytes]:
    """The lines with a new id for each trace and every time ``shift_ns`` later."""
    fresh: dict[bytes, bytes] = {}

    def trace_id(match: re.Match[bytes]) -> bytes:
        return b'"traceId":"' + fresh.setdefault(match[1], secrets.token_hex(16).encode()) + b'"'

    def later(match: re.Match[bytes]) -> bytes:
        return b'"%s%s":"%d"' % (match[1], match[2], int(match[3]) + shift_ns)

    for line in lines:
        yield _NANOS.sub(later, _TRACE_ID.sub(trace_id, line)) + b"\n"


def make_file(path: Path, megabytes: int, folder: Path, *, spans_only: bool = False) -> int:
    """Write ``path`` (about ``megabytes`` MB) from copies of a demo recording; return the copies made."""
    lines = _record_demo(folder)
    if spans_only:
        lines = [line for line in lines if line.startswith(b'{"resourceSpans"')]
    copies = 0
    with path.open("wb") as out:
        while out.tell() < megabytes * 1_000_000:
            copies += 1
            out.writelines(_copy(lines, copies * 10_000_000_000))  # each copy 10 s after the one before
    return copies


def measure(path: Path, root: str | None, arguments: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MiB) of one ``otel-runtime traces --file path`` in a fresh interpreter."""
    env = dict(os.environ)
    if root:
        env["PYTHONPATH"] = root
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "otel_runtime.cli", "traces", "--file", str(path), *arguments],
        env=env,
        cwd=path.parent,  # not the checkout: ``-m`` puts the working directory before PYTHONPATH
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"traces failed: {process.stderr.read().decode() if process.stderr else status}")
    return elapsed, usage.ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.traces_file", description=__doc__)
    parser.add_argument("--mb", type=int, default=200, help="size of the file (default 200 MB)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--root", action="append", default=[], help="a checkout to compare (PYTHONPATH)")
    parser.add_argument("--spans-only", action="store_true", help="leave the demo's log lines out")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "telemetry.jsonl"
        copies = make_file(path, args.mb, Path(folder), spans_only=args.spans_only)
        size = path.stat().st_size / 1e6
        print(f"{path.name}: {size:.0f} MB, {copies:,} demo flow runs")
        for root in args.root or [None]:
            runs = [measure(path, root, []) for _ in range(args.rounds)]
            seconds = [run[0] for run in runs]
            rss = [run[1] for run in runs]
            print(
                json.dumps(
                    {
                        "package": root or "installed",
                        "seconds": [round(value, 2) for value in seconds],
                        "median_s": round(statistics.median(seconds), 2),
                        "peak_rss_mib": [round(value) for value in rss],
                    }
                )
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
