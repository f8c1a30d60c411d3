"""Secrets: what a run records of its parameters, and what leaves the process.

Parameters are recorded on spans as a bounded ``repr`` (``_parameters.MAX_REPR_LENGTH``), bounded in cost
too; a value whose parameter name looks secret is ``[REDACTED]``, as is a value under a secret-looking
key of a mapping nested in a parameter. Recording can be switched off per flow or task and for the
whole process. Baggage carries run identity only, never a parameter.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from opentelemetry import propagate

from otel_runtime import configure, flow, propagation, task
from otel_runtime._base import keys as _keys
from otel_runtime._base.settings import settings as runtime_settings
from otel_runtime._core.parameters import MAX_REPR_LENGTH, REDACTED, parameter_attributes, safe_repr
from otel_runtime._sdk.file_export import JsonLinesWriter
from otel_runtime.logging import add_run_context
from otel_runtime.testing import CapturedSpans, capture_spans, use_logger_provider

SECRET = "hunter2-s3cr3t-value"
SECRET_WORDS = [
    "password",
    "passwd",
    "token",
    "secret",
    "api_key",
    "apikey",
    "authorization",
    "credential",
    "credentials",
    "private_key",
    "access_key",
    "session_key",
    "cookie",
    "pwd",
    "auth",
    "dsn",
]
FUZZ = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


def parameters_of(span: Any, prefix: str) -> dict[str, str]:
    return {
        key[len(prefix) :]: value for key, value in (span.attributes or {}).items() if key.startswith(prefix)
    }


@pytest.fixture
def record_parameters() -> Iterator[None]:
    """Whatever a test does to the process-wide switch, it is on again afterwards."""
    try:
        yield
    finally:
        runtime_settings.record_parameters = True


IDENTIFIER_PART = st.text("abcdefghijklmnopqrstuvwxyz_0123456789", max_size=8)


@FUZZ
@given(
    word=st.sampled_from(SECRET_WORDS),
    before=IDENTIFIER_PART,
    after=IDENTIFIER_PART,
    shout=st.booleans(),
)
def test_a_parameter_whose_name_looks_secret_is_redacted_on_flow_and_task_spans(
    word: str, before: str, after: str, shout: bool
) -> None:
    """Any parameter name containing a secret word (``db_password``, ``GITHUB_TOKEN``, ``x_api_key2``,
    ...) is recorded as ``[REDACTED]`` on the flow span and the task span; the value appears in no
    attribute of any span."""
    name = f"{before}{word}{after}"
    name = name.upper() if shout else name
    if not name.isidentifier():
        name = f"p_{name}"

    namespace: dict[str, Any] = {}
    exec(f"def body({name}):\n    return len({name})\n", namespace)  # a parameter with a drawn name
    traced_task = task(name="secretive")(namespace["body"])
    traced_flow = flow(name="secretive_flow")(namespace["body"])
    with capture_spans() as spans:
        assert traced_flow(**{name: SECRET}) == len(SECRET)
        assert traced_task(**{name: SECRET}) == len(SECRET)
    (flow_span,) = spans.named("flow secretive_flow")
    (task_span,) = spans.named("task secretive")
    assert parameters_of(flow_span, _keys.FLOW_RUN_PARAMETER_PREFIX) == {name: REDACTED}
    assert parameters_of(task_span, _keys.TASK_RUN_PARAMETER_PREFIX) == {name: REDACTED}
    for span in spans.spans:
        assert all(SECRET not in str(value) for value in (span.attributes or {}).values())


@task
def connect(host: str, config: dict[str, Any], payload: Any) -> int:
    return len(host)


def test_secret_keys_nested_in_mapping_parameters_are_redacted(spans: CapturedSpans) -> None:
    """A mapping parameter (``config={"password": ...}``) keeps its other keys but not its secrets, at
    any depth and in dict subclasses; the same goes for a list of mappings."""
    config = {
        "user": "etl",
        "db": {"password": SECRET, "port": 5432},
        "headers": [{"Authorization": f"Bearer {SECRET}"}],
        "API_KEY": SECRET,
    }
    assert connect("db.local", config, payload={"token": SECRET}) == 8
    recorded = parameters_of(spans.find("task connect"), _keys.TASK_RUN_PARAMETER_PREFIX)
    assert SECRET not in str(recorded)
    assert recorded["config"] == (
        "{'user': 'etl', 'db': {'password': [REDACTED], 'port': 5432}, "
        "'headers': [{'Authorization': [REDACTED]}], 'API_KEY': [REDACTED]}"
    )
    assert recorded["payload"] == "{'token': [REDACTED]}"
    assert recorded["host"] == "'db.local'"


@pytest.mark.parametrize(
    "key", ["X-Api-Key", "api-key", "private-key", "Access-Key", "X-Session-Key", "x-api.key", "Api Key"]
)
def test_hyphenated_secret_keys_as_in_http_headers_are_redacted(key: str, spans: CapturedSpans) -> None:
    """HTTP header dicts spell keys with hyphens: ``headers={"X-Api-Key": ...}`` (or ``api-key``,
    ``private-key``, ``Access-Key``, ``api.key``, ``Api Key``) is redacted like ``api_key``, in a task's
    parameter as in a flow's; the other headers are kept."""

    @task
    def call(headers: dict[str, str]) -> int:
        return len(headers)

    @flow
    def fetch(headers: dict[str, str]) -> int:
        return call(headers)

    headers = {"Accept": "application/json", key: SECRET}
    assert fetch(headers) == 2
    for name, prefix in (
        ("flow fetch", _keys.FLOW_RUN_PARAMETER_PREFIX),
        ("task call", _keys.TASK_RUN_PARAMETER_PREFIX),
    ):
        recorded = parameters_of(spans.find(name), prefix)
        assert recorded["headers"] == f"{{'Accept': 'application/json', {key!r}: {REDACTED}}}"
        assert SECRET not in str(recorded)


@task
def swallow(value: Any) -> str:
    return type(value).__name__


@pytest.mark.parametrize(
    "make",
    [
        lambda: "x" * 100_000,
        lambda: b"\x00" * 50_000_000,
        lambda: list(range(2_000_000)),
        lambda: {str(index): index for index in range(200_000)},
        lambda: [[[[[[[["deep"]]]]]]]],
        lambda: 10**5000,  # repr() raises ValueError: too many digits
    ],
    ids=["long-str", "50MB-bytes", "2M-list", "200k-dict", "deep", "huge-int"],
)
def test_parameters_are_recorded_as_a_repr_bounded_in_length_and_in_cost(
    make: Callable[[], Any], spans: CapturedSpans
) -> None:
    """However large a parameter is, its attribute is at most MAX_REPR_LENGTH characters, and making it
    costs the run almost nothing (the value is never represented whole: before, a 50 MB bytes parameter
    cost a quarter of a second per run)."""
    value = make()
    started = time.thread_time()  # this thread's CPU time: other processes on a loaded machine don't count
    swallow(value)
    took = time.thread_time() - started
    recorded = parameters_of(spans.find("task swallow"), _keys.TASK_RUN_PARAMETER_PREFIX)["value"]
    assert len(recorded) <= MAX_REPR_LENGTH
    assert took < 0.05, f"a task run with a large parameter took {took * 1000:.1f} ms"


def nesting(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        return 1 + max((nesting(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((nesting(item) for item in value.values()), default=0)
    return 0


SMALL_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.binary(max_size=12),
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(st.sampled_from(["a", "name", "rows", "x"]) | st.integers(), children, max_size=4)
    ),
    max_leaves=12,
)


@FUZZ
@given(value=SMALL_VALUES)
def test_a_small_parameter_is_recorded_exactly_as_its_repr(value: Any) -> None:
    """Within the limits (256 characters, 4 levels, 24 items) and without secret keys, the recorded value
    is exactly ``repr(value)``: the bounded walk changes nothing a reader would notice."""
    assume(len(repr(value)) <= MAX_REPR_LENGTH and nesting(value) <= 4)
    assert safe_repr(value) == repr(value)
    assert parameter_attributes("p.", {"x": value}) == {"p.x": repr(value)}


class Unrepresentable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr for you")


def test_a_parameter_that_cannot_be_represented_is_named_not_raised(spans: CapturedSpans) -> None:
    """A parameter whose ``__repr__`` raises does not break the run: its attribute names its type."""
    assert swallow(Unrepresentable()) == "Unrepresentable"
    recorded = parameters_of(spans.find("task swallow"), _keys.TASK_RUN_PARAMETER_PREFIX)
    assert recorded == {"value": "<unrepresentable Unrepresentable>"}


@task(record_parameters=False)
def quiet_task(api: str, note: str) -> str:
    return note


@flow(record_parameters=False)
def quiet_flow(note: str) -> str:
    return quiet_task("x", note)


@flow
def loud_flow(note: str) -> str:
    return quiet_task("x", note)


def test_record_parameters_false_keeps_that_flows_or_tasks_parameters_off_its_span(
    spans: CapturedSpans,
) -> None:
    """``record_parameters=False`` on a flow or a task: that run's span has no parameter attribute, while
    the runs around it still record theirs."""
    assert quiet_flow(SECRET) == SECRET
    assert loud_flow(SECRET) == SECRET
    (quiet, loud) = spans.named("flow quiet_flow") + spans.named("flow loud_flow")
    assert parameters_of(quiet, _keys.FLOW_RUN_PARAMETER_PREFIX) == {}
    assert parameters_of(loud, _keys.FLOW_RUN_PARAMETER_PREFIX) == {"note": repr(SECRET)}
    for task_span in spans.named("task quiet_task"):
        assert parameters_of(task_span, _keys.TASK_RUN_PARAMETER_PREFIX) == {}


@flow
def plain_flow(note: str) -> str:
    return swallow(note)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_record_parameters_can_be_switched_off_for_the_whole_process(
    how: str,
    spans: CapturedSpans,
    record_parameters: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """``configure(record_parameters=False)`` or ``OTEL_RUNTIME_RECORD_PARAMETERS=false``: no flow or
    task records its parameters; the spans are otherwise the same."""
    monkeypatch.chdir(tmp_path)
    with use_logger_provider(None):
        if how == "argument":
            configure(record_parameters=False, traces_exporter="none", logs_exporter="none")
        else:
            monkeypatch.setenv("OTEL_RUNTIME_RECORD_PARAMETERS", "false")
            configure(traces_exporter="none", logs_exporter="none")
    assert runtime_settings.record_parameters is False
    assert plain_flow(SECRET) == "str"
    for span in spans.spans:
        assert not [key for key in (span.attributes or {}) if ".parameter." in key], span.name
        assert SECRET not in str(span.attributes)
    assert spans.find("flow plain_flow").attributes[_keys.FLOW_RUN_ID]  # type: ignore[index]


@task
def call_out(password: str, api_key: str, note: str) -> dict[str, Any]:
    """What this task would send to another service: the propagation headers of its context."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    return {
        "global": headers,
        "ours": propagation.inject(),
        "env": propagation.to_env(),
        "log": add_run_context(None, "info", {"event": "calling out"}),
    }


@flow
def calls_out(password: str) -> dict[str, Any]:
    return call_out(password, api_key=SECRET, note=f"not secret but a parameter {SECRET}")


def baggage_keys(header: str) -> set[str]:
    return {member.split("=", 1)[0].strip() for member in header.split(",") if member.strip()}


@pytest.mark.parametrize("propagators", ["sdk", "otel_runtime"])
def test_baggage_never_carries_parameters(propagators: str) -> None:
    """Inside a task with secret parameters (and a non-secret one holding the same text), the headers
    that leave the process, through the global propagators, ``propagation.inject`` and ``to_env``,
    hold only otel_runtime's run keys in baggage and no parameter value; neither does a log line."""
    previous = propagate.get_global_textmap()
    try:
        if propagators == "otel_runtime":
            propagation.install_baggage_propagator()
        seen = calls_out(SECRET)
    finally:
        propagate.set_global_textmap(previous)
    for carrier in (seen["global"], seen["ours"]):
        assert baggage_keys(carrier["baggage"]) <= set(_keys.BAGGAGE_KEYS)
        assert SECRET not in str(carrier)
    assert baggage_keys(seen["env"]["BAGGAGE"]) <= set(_keys.BAGGAGE_KEYS)
    assert SECRET not in str(seen["env"]) and SECRET not in str(seen["log"])


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_the_telemetry_file_and_its_folder_are_readable_by_their_owner_only(tmp_path: Path) -> None:
    """A flow run in a child process (umask 022, as on most systems) creates ``.otel_runtime`` 0700 and
    ``telemetry.jsonl`` 0600: the log records and exception messages in it are not for other users;
    a rotated file and the new one after it keep 0600."""
    script = tmp_path / "flows.py"
    script.write_text(
        "import os\nos.umask(0o022)\n"
        "from otel_runtime import configure, flow\n"
        "@flow\ndef secretive() -> None:\n    raise ValueError('the message may hold a secret')\n"
        "configure()\ntry:\n    secretive()\nexcept ValueError:\n    pass\n"
    )
    env = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, check=True, timeout=60)
    folder = tmp_path / ".otel_runtime"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    written = folder / "telemetry.jsonl"
    assert "the message may hold a secret" in written.read_text()
    assert stat.S_IMODE(written.stat().st_mode) == 0o600

    old = os.umask(0o022)
    try:
        writer = JsonLinesWriter(tmp_path / "rotating" / "t.jsonl", max_bytes=100)
        for _ in range(3):
            assert writer.write_line("x" * 60)
    finally:
        os.umask(old)
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(writer.rotated_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(writer.path.parent.stat().st_mode) == 0o700
