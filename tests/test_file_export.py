"""The OTLP/JSON lines file exporters: appending, sharing one file between processes, rotation, failures."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry._logs import SeverityNumber
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import LogRecordExportResult, SimpleLogRecordProcessor
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult

from otel_runtime._sdk.file_export import (
    DEFAULT_TELEMETRY_PATH,
    JsonLinesLogExporter,
    JsonLinesSpanExporter,
)
from otel_runtime._tools.otlp_read import iter_logs, iter_spans, read_records

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def tracer_provider() -> Iterator[TracerProvider]:
    """A local provider whose spans are exported by the tests themselves (no processor)."""
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def make_span(provider: TracerProvider, name: str, **attributes: str | int) -> ReadableSpan:
    span = provider.get_tracer("file-export-test").start_span(name, attributes=attributes)
    span.end()
    assert isinstance(span, ReadableSpan)
    return span


def span_names(path: Path) -> list[str]:
    return [span["name"] for record in read_records(path) for span in iter_spans(record)]


def test_each_span_export_appends_one_line(tmp_path: Path, tracer_provider: TracerProvider) -> None:
    """Every export appends one OTLP/JSON line that read_records parses back, in order."""
    path = tmp_path / "telemetry.jsonl"
    exporter = JsonLinesSpanExporter(path)
    first = [make_span(tracer_provider, "flow a"), make_span(tracer_provider, "task b")]
    assert exporter.export(first) is SpanExportResult.SUCCESS
    assert exporter.export([make_span(tracer_provider, "flow c")]) is SpanExportResult.SUCCESS
    assert path.read_bytes().count(b"\n") == 2
    assert span_names(path) == ["flow a", "task b", "flow c"]


def test_span_exporter_works_behind_a_real_span_processor(tmp_path: Path) -> None:
    """Plugged into an SDK processor, the exporter writes the spans the program creates."""
    path = tmp_path / "telemetry.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(path)))
    tracer = provider.get_tracer("file-export-test")
    with tracer.start_as_current_span("flow outer"), tracer.start_as_current_span("task inner"):
        pass
    provider.shutdown()
    spans = {span["name"]: span for record in read_records(path) for span in iter_spans(record)}
    assert spans["task inner"]["parent_span_id"] == spans["flow outer"]["span_id"]


def test_log_exporter_appends_log_records(tmp_path: Path) -> None:
    """The log exporter writes ``resourceLogs`` lines with the emitted bodies and attributes."""
    path = tmp_path / "telemetry.jsonl"
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(JsonLinesLogExporter(path)))
    logger = provider.get_logger("file-export-test")
    logger.emit(body="first", severity_number=SeverityNumber.INFO, attributes={"flow_run_id": "r1"})
    logger.emit(body="second", severity_number=SeverityNumber.ERROR)
    provider.shutdown()
    records = list(read_records(path))
    assert [list(record) for record in records] == [["resourceLogs"], ["resourceLogs"]]
    logs = [log for record in records for log in iter_logs(record)]
    assert [(log["body"], log["severity_number"]) for log in logs] == [("first", 9), ("second", 17)]
    assert logs[0]["attributes"] == {"flow_run_id": "r1"}


def test_default_path_is_resolved_against_the_working_directory_at_construction(
    tmp_path: Path, tracer_provider: TracerProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default path is ``.otel_runtime/telemetry.jsonl`` under the cwd of construction; its
    directory is created on the first write, not before."""
    monkeypatch.chdir(tmp_path)
    exporter = JsonLinesSpanExporter()
    assert exporter.path == tmp_path / DEFAULT_TELEMETRY_PATH
    assert not (tmp_path / ".otel_runtime").exists()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert exporter.export([make_span(tracer_provider, "flow a")]) is SpanExportResult.SUCCESS
    assert span_names(tmp_path / ".otel_runtime" / "telemetry.jsonl") == ["flow a"]
    assert not (elsewhere / ".otel_runtime").exists()


# A writer process: THREADS threads each export BATCHES single-span batches to each of ROUNDS files
# in turn, all starting at the same wall-clock instant so that processes and threads contend.
WRITER = textwrap.dedent(
    """
    import sys, threading, time
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from otel_runtime._sdk.file_export import JsonLinesSpanExporter

    directory, writer, threads, batches, rounds, max_bytes, start_at = sys.argv[1:]
    paths = [f"{directory}/round{r}.jsonl" for r in range(int(rounds))]
    exporters = [JsonLinesSpanExporter(path, max_bytes=int(max_bytes)) for path in paths]
    tracer = TracerProvider().get_tracer("writer")
    failures = []

    def run(thread):
        for exporter in exporters:
            for batch in range(int(batches)):
                attributes = {"id": f"{writer}-{thread}-{batch}", "pad": "x" * 900}
                span = tracer.start_span("task write", attributes=attributes)
                span.end()
                if exporter.export([span]) is not SpanExportResult.SUCCESS:
                    failures.append(batch)

    time.sleep(max(0.0, float(start_at) - time.time()))
    workers = [threading.Thread(target=run, args=(t,)) for t in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    sys.exit(1 if failures else 0)
    """
)


def test_processes_and_threads_share_one_file_without_losing_or_tearing_lines(
    tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    """Four processes of three threads append concurrently through one rotation: every line is
    whole, and no batch is lost or duplicated (the file is rotated exactly once, not once per
    process that saw it full). Repeated over several files, since a race shows up only sometimes."""
    processes, threads, batches, rounds = 4, 3, 30, 10
    total = processes * threads * batches
    line_bytes = _sample_line_bytes(tmp_path, tracer_provider)
    # Above one file's worth but well under two: exactly one rotation, and nothing may be dropped.
    max_bytes = int(total * line_bytes / 1.5)
    out = tmp_path / "out"
    start_at = time.time() + 1.5
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER,
                str(out),
                str(n),
                *map(str, (threads, batches, rounds, max_bytes, start_at)),
            ],
            env=env,
        )
        for n in range(processes)
    ]
    assert [child.wait(timeout=60) for child in children] == [0] * processes

    expected = sorted(
        f"{w}-{t}-{b}" for w in range(processes) for t in range(threads) for b in range(batches)
    )
    for r in range(rounds):
        path, rotated = out / f"round{r}.jsonl", out / f"round{r}.jsonl.1"
        raw_lines = rotated.read_bytes().splitlines() + path.read_bytes().splitlines()
        ids = [span["attributes"]["id"] for line in raw_lines for span in iter_spans(json.loads(line))]
        assert sorted(ids) == expected, f"round {r}: {len(ids)} of {total} batches kept"
        assert path.stat().st_size <= max_bytes
        assert rotated.stat().st_size <= max_bytes
    assert len(list(out.iterdir())) == 2 * rounds


def _sample_line_bytes(tmp_path: Path, provider: TracerProvider) -> int:
    sample_path = tmp_path / "sample" / "line.jsonl"
    span = make_span(provider, "task write", id="0-0-00", pad="x" * 900)
    JsonLinesSpanExporter(sample_path).export([span])
    return sample_path.stat().st_size


def test_rotation_keeps_one_backup_and_the_live_file_under_the_cap(
    tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    """Past ``max_bytes`` the file moves to ``<path>.1`` (replacing the older one); the two files
    together hold the newest lines, contiguous and in order."""
    path = tmp_path / "telemetry.jsonl"
    max_bytes = 6_000
    exporter = JsonLinesSpanExporter(path, max_bytes=max_bytes)
    for n in range(60):
        assert (
            exporter.export([make_span(tracer_provider, f"task {n:02d}", pad="y" * 500)])
            is SpanExportResult.SUCCESS
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["telemetry.jsonl", "telemetry.jsonl.1"]
    assert path.stat().st_size <= max_bytes
    assert path.with_name("telemetry.jsonl.1").stat().st_size <= max_bytes
    kept = span_names(path.with_name("telemetry.jsonl.1")) + span_names(path)
    assert kept == [f"task {n:02d}" for n in range(60 - len(kept), 60)]
    assert len(kept) < 60


def test_a_line_larger_than_the_cap_is_written_alone(tmp_path: Path, tracer_provider: TracerProvider) -> None:
    """A batch bigger than ``max_bytes`` is not dropped: it gets a file of its own."""
    path = tmp_path / "telemetry.jsonl"
    exporter = JsonLinesSpanExporter(path, max_bytes=100)
    for name in ("flow a", "flow b"):
        assert exporter.export([make_span(tracer_provider, name)]) is SpanExportResult.SUCCESS
    assert span_names(path.with_name("telemetry.jsonl.1")) == ["flow a"]
    assert span_names(path) == ["flow b"]


def test_unwritable_path_fails_quietly_and_warns_once(
    tmp_path: Path, tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """When the file cannot be written, export returns FAILURE, never raises, and the
    ``otel_runtime`` logger warns once per exporter, not once per batch."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the parent directory should be")
    span_exporter = JsonLinesSpanExporter(blocker / "telemetry.jsonl")
    log_exporter = JsonLinesLogExporter(blocker / "telemetry.jsonl")
    provider = LoggerProvider()
    provider.add_log_record_processor(SimpleLogRecordProcessor(log_exporter))
    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        for _ in range(3):
            assert span_exporter.export([make_span(tracer_provider, "flow a")]) is SpanExportResult.FAILURE
            provider.get_logger("t").emit(body="lost")
    provider.shutdown()
    warnings = [record for record in caplog.records if record.name == "otel_runtime"]
    assert len(warnings) == 2  # one per exporter
    assert all(str(blocker) in record.getMessage() for record in warnings)
    assert all(record.levelno == logging.WARNING for record in warnings)


def test_shutdown_makes_later_exports_fail_without_writing(
    tmp_path: Path, tracer_provider: TracerProvider
) -> None:
    """After shutdown, exports return FAILURE and leave the file alone; force_flush still succeeds."""
    path = tmp_path / "telemetry.jsonl"
    spans_out = JsonLinesSpanExporter(path)
    logs_out = JsonLinesLogExporter(path)
    assert spans_out.export([make_span(tracer_provider, "flow a")]) is SpanExportResult.SUCCESS
    spans_out.shutdown()
    logs_out.shutdown()
    assert spans_out.export([make_span(tracer_provider, "flow b")]) is SpanExportResult.FAILURE
    assert logs_out.export([]) is LogRecordExportResult.FAILURE
    assert spans_out.force_flush() is True
    assert logs_out.force_flush() is True
    assert span_names(path) == ["flow a"]


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    """A non-positive cap is a configuration error raised at construction."""
    with pytest.raises(ValueError, match="max_bytes"):
        JsonLinesSpanExporter(tmp_path / "t.jsonl", max_bytes=0)


# Forks 20 times while a thread keeps writing; each child writes once. A child that inherited the
# writer's lock held by the (now absent) writing thread would hang until SIGALRM kills it.
FORKER = textwrap.dedent(
    """
    import os, signal, sys, threading
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExportResult
    from otel_runtime._sdk.file_export import JsonLinesSpanExporter

    exporter = JsonLinesSpanExporter(sys.argv[1])
    tracer = TracerProvider().get_tracer("fork")
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            span = tracer.start_span("task parent")
            span.end()
            exporter.export([span])

    threading.Thread(target=spin, daemon=True).start()
    failed = 0
    for _ in range(20):
        pid = os.fork()
        if pid == 0:
            signal.alarm(2)
            span = tracer.start_span("task child")
            span.end()
            os._exit(0 if exporter.export([span]) is SpanExportResult.SUCCESS else 1)
        failed += os.waitpid(pid, 0)[1] != 0
    stop.set()
    sys.exit(failed)
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_can_write_even_if_forked_mid_write(tmp_path: Path) -> None:
    """A process forked while one of its threads was writing still writes from the child."""
    path = tmp_path / "telemetry.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])}
    # -W ignore: Python 3.12+ warns about fork() in a multi-threaded process, which is the point here.
    result = subprocess.run(
        [sys.executable, "-W", "ignore::DeprecationWarning", "-c", FORKER, str(path)],
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"{result.returncode} of 20 forked children could not write"
    assert span_names(path).count("task child") == 20


def test_a_batch_that_cannot_be_encoded_fails_without_raising(
    tmp_path: Path, tracer_provider: TracerProvider, caplog: pytest.LogCaptureFixture
) -> None:
    """A span that protobuf cannot encode (a lone surrogate in a string) fails its batch with a
    warning; the exporter keeps working for the next batch."""
    path = tmp_path / "telemetry.jsonl"
    exporter = JsonLinesSpanExporter(path)
    with caplog.at_level(logging.WARNING, logger="otel_runtime"):
        assert exporter.export([make_span(tracer_provider, "task \udcff")]) is SpanExportResult.FAILURE
    assert [record.name for record in caplog.records if record.levelno == logging.WARNING][
        -1
    ] == "otel_runtime"
    assert exporter.export([make_span(tracer_provider, "task fine")]) is SpanExportResult.SUCCESS
    assert span_names(path) == ["task fine"]
