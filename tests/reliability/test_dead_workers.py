"""A task run whose pool worker dies leaves one span, with the worker's death on it.

A real flow in a child process runs task runs on a real ``ProcessPoolTaskRunner`` and exports over
OTLP/gRPC to a loopback ``OtlpReceiver``; one task run kills its own worker with ``SIGKILL``. The
worker can export nothing after that, and the runs still queued never reach a worker, so the
submitting process records each of them, once the pool's workers are gone and have said which runs
they ended (``remote.tell_ended``: those have their own span): one ``task`` span per task run,
``CRASHED``, status ERROR, ``error.type`` ``concurrent.futures.process.BrokenProcessPool`` and an
``exception`` event saying the pool's process died.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from otel_runtime._base import keys as _keys
from otel_runtime.testing import OtlpReceiver

SCRIPT = textwrap.dedent(
    """
    import os, signal, sys, time
    from otel_runtime import configure, flow, task
    from otel_runtime.task_runners import ProcessPoolTaskRunner

    @task
    def fine(n: int) -> int:
        return n

    @task
    def dies() -> None:
        os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-run: nothing of it is exported
        time.sleep(10)

    @task
    def queued(n: int) -> int:
        return n

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=int(sys.argv[2]), mp_context=sys.argv[1]))
    def pool() -> str:
        assert fine.submit(1).result() == 1  # the worker is up and exporting
        dying = dies.submit()
        later = [queued.submit(n) for n in range(3)]
        outcomes = []
        for future in [dying, *later]:
            try:
                future.result()
                outcomes.append("ok")
            except Exception as error:
                outcomes.append(type(error).__name__)
        return ",".join(outcomes)

    if __name__ == "__main__":
        configure()
        print(pool())
    """
)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    running = OtlpReceiver().start()
    try:
        yield running
    finally:
        running.stop(grace=0)


# Under load, a worker that ``submit`` starts for a queued run can be added to the pool's table only
# after the pool, broken by the death, terminated its workers: that worker is never terminated and the
# pool's shutdown joins it forever (CPython's race). This wrapper makes the late start certain, by
# holding each worker after the first for 1 s between its start and its entry in the table.
LATE_WORKER = textwrap.dedent(
    """
    import concurrent.futures.process as pool_module, runpy, sys, time

    started = []

    def start_late(self):
        worker = self._mp_context.Process(
            target=pool_module._process_worker,
            args=(self._call_queue, self._result_queue, self._initializer, self._initargs,
                  self._max_tasks_per_child),
        )
        worker.start()
        started.append(worker)
        if len(started) > 1:
            time.sleep(1.0)  # the first worker dies and the pool breaks meanwhile
        self._processes[worker.pid] = worker

    pool_module.ProcessPoolExecutor._spawn_process = start_late
    sys.argv = ["pool.py", *sys.argv[1:]]
    runpy.run_path("pool.py", run_name="__main__")
    """
)


def _run_pool_flow(receiver: OtlpReceiver, tmp_path: Path, script: str, *args: str) -> list[str]:
    """Run ``SCRIPT`` (through ``script``) in a child exporting to ``receiver``; the flow's outcomes."""
    (tmp_path / "pool.py").write_text(SCRIPT)
    (tmp_path / "late_worker.py").write_text(LATE_WORKER)
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    env.update(
        {
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.grpc_endpoint,
            "OTEL_EXPORTER_OTLP_INSECURE": "true",
            "OTEL_LOGS_EXPORTER": "none",
            "OTEL_METRICS_EXPORTER": "none",
        }
    )
    result = subprocess.run(
        [sys.executable, script, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    outcomes = result.stdout.strip().split(",")
    assert outcomes[0] == "BrokenProcessPool"
    assert set(outcomes[1:]) <= {"ok", "BrokenProcessPool"}
    return outcomes


def _assert_one_span_per_task_run(receiver: OtlpReceiver, workers: int) -> None:
    spans = receiver.wait_for_spans(1 + 1 + 1 + 3, timeout=10)
    time.sleep(0.5)  # nothing more arrives (a second span of a run would come with the first ones)
    spans = receiver.spans()
    tasks = [span for span in spans if span["name"].startswith("task ")]
    per_run = collections.Counter(span["attributes"][_keys.TASK_RUN_ID] for span in tasks)
    assert set(per_run.values()) == {1}, per_run
    names = collections.Counter(span["name"] for span in tasks)
    assert names == {"task fine": 1, "task dies": 1, "task queued": 3}
    (flow_span,) = [span for span in spans if span["name"] == "flow pool"]
    for span in tasks:
        assert span["parent_span_id"] == flow_span["span_id"]
        state = span["attributes"][_keys.TASK_RUN_STATE_TYPE]
        if span["name"] == "task fine" or (
            workers > 1 and span["name"] == "task queued" and state != "CRASHED"
        ):
            assert state in ("COMPLETED", "CANCELLED")  # CANCELLED: a worker the broken pool terminated
            continue
        assert span["attributes"][_keys.TASK_RUN_STATE_TYPE] == "CRASHED"
        assert span["status_code"] == 2
        assert span["attributes"]["error.type"] == "concurrent.futures.process.BrokenProcessPool"
        (event,) = [event for event in span["events"] if event["name"] == "exception"]
        assert "terminated abruptly" in event["attributes"]["exception.message"]


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_a_task_run_whose_worker_was_killed_leaves_one_crashed_span_with_the_death_on_it(
    start_method: str, workers: int, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """The killed run: one span, CRASHED, with ``BrokenProcessPool`` as its exception and error type,
    under the flow span. The three submitted after it: with one worker they were still queued when the
    pool broke, each one CRASHED span; with two, the other worker may have run some (one COMPLETED span,
    its result lost with the pool) or been terminated by the pool: still one span each. No task run has
    two spans; the flow's futures raise ``BrokenProcessPool``."""
    outcomes = _run_pool_flow(receiver, tmp_path, "pool.py", start_method, str(workers))
    if workers == 1:
        assert outcomes == ["BrokenProcessPool"] * 4
    _assert_one_span_per_task_run(receiver, workers)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")
@pytest.mark.parametrize("start_method", ["spawn", "forkserver"])
def test_a_worker_started_while_the_pool_broke_neither_hangs_the_flow_nor_fails_its_submit(
    start_method: str, receiver: OtlpReceiver, tmp_path: Path
) -> None:
    """A worker the pool started for a queued run as the pool broke is terminated at the flow's end (the
    child exits instead of joining it forever), and a run submitted to the broken pool gets a future
    that raises ``BrokenProcessPool`` instead of ``submit`` raising: each run is still one span."""
    outcomes = _run_pool_flow(receiver, tmp_path, "late_worker.py", start_method, "2")
    assert outcomes == ["BrokenProcessPool"] * 4
    _assert_one_span_per_task_run(receiver, 2)
