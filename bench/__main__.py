"""``python -m bench``: run the rows, print one table, write ``bench/results.md``."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from bench import _timing, rows
from bench._floor import bench_provider
from bench._report import NOTES, RESULTS, Row, table, write_results
from bench._workloads import DEPLOYMENT
from otel_runtime import deployment


class _DropCounter(logging.Filter):
    """Counts the BatchSpanProcessor's "Queue full, dropping" warnings (before its duplicate filter)."""

    def __init__(self) -> None:
        super().__init__()
        self.dropped = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if "dropping" in str(record.msg):
            self.dropped += 1
        return True


def _run(selected: list[Callable[[], Row | list[Row] | None]]) -> list[Row]:
    table_rows: list[Row] = []
    for make in selected:
        made = make()
        if isinstance(made, Row):
            table_rows.append(made)
        elif made:
            table_rows.extend(made)
    return table_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--rows", help=f"comma-separated rows to run, of: {', '.join(rows.ROWS)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds: a smoke test of the bench")
    parser.add_argument(
        "--profile", metavar="ROW", help="run one row under pyinstrument and print the profile"
    )
    args = parser.parse_args(argv)
    names = args.rows.split(",") if args.rows else list(rows.ROWS)
    if args.profile:
        names = [args.profile]
    unknown = [name for name in names if name not in rows.ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; choose from {list(rows.ROWS)}")
    _timing.QUICK = args.quick
    drops = _DropCounter()
    logging.getLogger("opentelemetry.sdk._shared_internal").filters.insert(0, drops)
    started = time.perf_counter()
    with deployment(DEPLOYMENT), bench_provider():
        if args.profile:
            from pyinstrument import Profiler

            with Profiler() as profiler:
                table_rows = _run([rows.ROWS[args.profile]])
            profiler.print()
        else:
            table_rows = _run([rows.ROWS[name] for name in names])
    seconds = time.perf_counter() - started
    print(table(table_rows))
    notes = list(NOTES)
    if drops.dropped:
        notes.append(f"- Warning: the BatchSpanProcessor dropped {drops.dropped} span(s) during the rows.")
    print(
        f"\n{len(table_rows)} rows in {seconds:.0f} s"
        + (f"; {drops.dropped} spans dropped" if drops.dropped else "")
    )
    if not args.rows and not args.profile and not args.quick:
        write_results(table_rows, notes, seconds)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
