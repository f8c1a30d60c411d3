"""The terminal trace tree shows each run's state: its type, and its name when that says more."""

from __future__ import annotations

from otel_runtime import flow, task
from otel_runtime._tools.tree import RunInfo, Style
from otel_runtime.futures import wait
from otel_runtime.states import Completed
from otel_runtime.testing import CapturedSpans


def test_tree_lines_show_not_ready_and_custom_state_names(spans: CapturedSpans) -> None:
    """A ``NotReady`` run reads ``PENDING (NotReady)`` with its own mark, a ``Skipped`` one
    ``COMPLETED (Skipped)``, a failed one ``FAILED``, a plain one ``COMPLETED``."""

    @task
    def fails() -> None:
        raise ValueError("no")

    @task
    def after(value: object) -> None:
        return None

    @task
    def skip() -> object:
        return Completed(name="Skipped")

    @flow
    def graph() -> None:
        upstream = fails.submit()
        wait([upstream, after.submit(upstream)])
        skip()

    graph()
    style = Style(color=False, unicode=True)

    def line(name: str) -> str:
        return RunInfo.from_span(spans.find(name)).line(style, show_id=False)

    assert line("task after").startswith("◌ task after · ")
    assert "PENDING (NotReady) in " in line("task after")
    assert "COMPLETED (Skipped) in " in line("task skip")
    assert "FAILED in " in line("task fails")
    assert "· COMPLETED in " in line("flow graph")
