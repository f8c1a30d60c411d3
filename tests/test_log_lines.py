"""configure_logging()'s fast paths write the lines the plain ``logging`` path writes, and step aside.

A structlog event whose record would reach only configure_logging()'s handler is written without a
``LogRecord``; any other handler, filter or logger class takes the ``logging`` path. JSON lines are
serialized by ``orjson`` when installed (the ``fast`` extra), else by stdlib ``json``.
"""

from __future__ import annotations

import dataclasses
import datetime
import io
import json
import logging
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from otel_runtime import deployment, flow, task
from otel_runtime._surface.json_lines import serializer
from otel_runtime.logging import configure_logging

HAS_ORJSON = serializer() is not serializer(use_orjson=False)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def without_time(line: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in line.items() if key != "timestamp"}


class Seen(logging.Handler):
    """A handler of the program's own: the records it was handed."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


Configure = Callable[..., logging.Handler]


@pytest.fixture
def configure_alone() -> Iterator[Configure]:
    """configure_logging(), then its handler the root logger's only one, as in a program (pytest's own
    capture handlers are set aside for the test and put back after)."""
    root = logging.getLogger()
    set_aside: list[logging.Handler] = []

    def configure(**options: Any) -> logging.Handler:
        handler = configure_logging(**options)
        for other in list(root.handlers):
            if other is not handler:
                set_aside.append(other)
                root.removeHandler(other)
        return handler

    try:
        yield configure
    finally:
        for other in set_aside:
            root.addHandler(other)


EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("fields", {"rows": 3, "table": "orders", "ratio": 0.5, "ok": True, "none": None}),
    ("reserved names", {"name": "mine", "filename": "f.csv", "args": [1, 2]}),
    ("a run field given", {"flow_run_name": "mine"}),
    ("meta keys", {"_record": "r", "_from_structlog": "s"}),
    ("values json cannot take", {"when": datetime.date(2026, 1, 2), "obj": object, "big": 2**70}),
    ("text é ü € \u2028 \x1b[2J", {"note": "line\nbreak"}),
]


@pytest.mark.parametrize(("event", "fields"), EVENTS, ids=[event for event, _ in EVENTS])
@pytest.mark.parametrize("method", ["debug", "info", "warning", "error", "critical"])
def test_a_line_written_directly_is_the_line_logging_writes(
    event: str, fields: dict[str, Any], method: str, configure_alone: Configure
) -> None:
    """The same event, once with configure_logging()'s handler alone (the direct path) and once with a
    second handler on the root logger (the logging path), in a task run of a deployment: equal lines."""
    stream = io.StringIO()
    configure_alone(json=True, stream=stream, level=logging.DEBUG)
    log = structlog.get_logger("etl")
    second = Seen()

    @task
    def work() -> None:
        getattr(log, method)(event, **fields)
        logging.getLogger().addHandler(second)
        try:
            getattr(log, method)(event, **fields)
        finally:
            logging.getLogger().removeHandler(second)

    @flow
    def pipeline() -> None:
        work()

    with deployment("nightly"):
        pipeline()
    direct, through_logging = lines(stream)
    assert len(second.records) == 1
    assert without_time(direct) == without_time(through_logging)
    assert direct["event"] == event and direct["level"] == method and direct["logger"] == "etl"
    assert direct["deployment_name"] == "nightly" and direct["task_run_name"] is not None
    assert direct["timestamp"].endswith("Z") and direct["timestamp"] <= through_logging["timestamp"]


def timeless(text: str) -> str:
    """A line as written, its timestamp (the only field that differs from call to call) left out."""
    return re.sub(r'"timestamp": ?"[^"]*"', "", text)


def test_structlogs_own_wrapper_over_the_configured_chain_writes_the_same_lines(
    configure_alone: Configure,
) -> None:
    """configure_logging()'s wrapper ends a directly written line without structlog's DropEvent; structlog's
    own stdlib BoundLogger over the same chain (the renderer raising DropEvent) writes the same bytes."""
    stream = io.StringIO()
    configure_alone(json=True, stream=stream)
    ours = structlog.get_logger("etl")
    theirs = structlog.wrap_logger(logging.getLogger("etl"), wrapper_class=structlog.stdlib.BoundLogger)

    @task
    def work() -> None:
        for event, fields in EVENTS:
            ours.info(event, **fields)
            theirs.info(event, **fields)

    @flow
    def pipeline() -> None:
        work()

    with deployment("nightly"):
        pipeline()
    written = stream.getvalue().splitlines()
    assert len(written) == 2 * len(EVENTS)
    assert [timeless(line) for line in written[::2]] == [timeless(line) for line in written[1::2]]


def test_capture_logs_levels_and_processors_added_to_the_configured_chain_still_apply(
    configure_alone: Configure,
) -> None:
    """Under capture_logs the event is captured and no line written; a line below the level is dropped; a
    processor put into the configured chain (before its renderer) runs on every line."""
    stream = io.StringIO()
    configure_alone(json=True, stream=stream)
    log = structlog.get_logger("app")
    with capture_logs() as captured:
        log.info("captured", n=1)
    assert captured == [{"event": "captured", "n": 1, "log_level": "info"}]
    assert log.debug("below the level") is None

    def stamp(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        event_dict["stamped"] = True
        return event_dict

    chain = structlog.get_config()["processors"]
    chain.insert(len(chain) - 1, stamp)
    log.info("stamped")
    chain.remove(stamp)
    log.info("plain")
    assert [(line["event"], line.get("stamped")) for line in lines(stream)] == [
        ("stamped", True),
        ("plain", None),
    ]


def test_handlers_filters_and_levels_of_the_program_still_see_or_stop_every_line(
    configure_alone: Configure,
) -> None:
    """Whatever ``logging`` would do with a record still happens: a handler added after configure_logging()
    (on the root or on the logger) gets the record, a logger filter or a disabled logger drops the line,
    a handler level above the line drops it, and a record factory of the program's own makes it."""
    stream = io.StringIO()
    handler = configure_alone(json=True, stream=stream)
    log = structlog.get_logger("app")
    app = logging.getLogger("app")

    own = Seen()
    app.addHandler(own)
    log.info("to both")
    app.removeHandler(own)
    assert [record.getMessage() for record in own.records] == ["to both"]

    class NoSecrets(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "secret" not in record.getMessage()

    app.addFilter(no_secrets := NoSecrets())
    log.info("a secret")
    app.removeFilter(no_secrets)

    app.disabled = True
    log.info("while disabled")
    app.disabled = False

    handler.setLevel(logging.WARNING)
    log.info("below the handler's level")
    handler.setLevel(logging.NOTSET)

    made: list[str] = []
    default_factory = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default_factory(*args, **kwargs)
        made.append(record.getMessage())
        return record

    logging.setLogRecordFactory(factory)
    try:
        log.info("through the factory")
    finally:
        logging.setLogRecordFactory(default_factory)
    assert made == ["through the factory"]
    assert [line["event"] for line in lines(stream)] == ["to both", "through the factory"]


def test_a_failing_stream_is_reported_as_logging_reports_it_and_the_program_goes_on(
    capsys: pytest.CaptureFixture[str], configure_alone: Configure
) -> None:
    """A stream that raises on write: the logging call returns, and ``logging`` prints its usual report."""

    class Broken(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError("disk full")

    configure_alone(json=True, stream=Broken())
    structlog.get_logger("app").info("lost line")
    assert "--- Logging error ---" in capsys.readouterr().err


SAMPLES: list[Any] = [
    {"event": "e", "n": 1, "f": 1.5, "b": False, "none": None, "list": [1, "a"], "nested": {"k": [{}]}},
    {"event": "é ü € 日本", "breaks": "a\u0085b\u2028c\u2029d\x85", "controls": "\x00\x1b[2J\r\n\t\x7f"},
    {"event": "fallbacks", "date": datetime.datetime(2026, 1, 2, 3, 4, 5), "set": {1}, "type": int},
    {"event": "orjson refuses", "big": 2**70, "keys": {1: "a", None: "b"}},
]


@dataclasses.dataclass
class Point:
    x: int


def fallback(value: Any) -> Any:
    return repr(value)


@pytest.mark.skipif(not HAS_ORJSON, reason="orjson (the fast extra) is in the test extra")
@pytest.mark.parametrize("sample", [*SAMPLES, {"event": "dataclass", "p": Point(1)}])
def test_orjson_lines_read_back_as_the_json_lines_do(sample: dict[str, Any]) -> None:
    """Each line is one line (no break ``str.splitlines`` splits on) and parses to what stdlib json's does."""
    fast, stdlib = (
        serializer(use_orjson=True)(sample, default=fallback),
        serializer(use_orjson=False)(sample, default=fallback),
    )
    assert len(fast.splitlines()) == 1 and "\x1b" not in fast
    assert json.loads(fast) == json.loads(stdlib)


def test_without_orjson_the_lines_are_stdlib_json() -> None:
    """With orjson not importable, configure_logging(json=True) writes stdlib json's lines (ASCII)."""
    script = (
        "import sys; sys.modules['orjson'] = None\n"
        "import io, structlog\n"
        "from otel_runtime.logging import configure_logging\n"
        "stream = io.StringIO(); configure_logging(json=True, stream=stream)\n"
        "structlog.get_logger('x').info('é', n=1)\n"
        "print(stream.getvalue(), end='')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.startswith('{"event": "\\u00e9", "n": 1, ') and out.stdout.count("\n") == 1
