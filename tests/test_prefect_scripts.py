"""Prefect 3 scripts, ported by changing their imports, behave as Prefect documents.

Each script in ``tests/prefect_scripts/`` is one of Prefect's documented examples (states, state
hooks, futures and mapping, upstream failures, worker processes) with ``prefect`` imports replaced by
``otel_runtime`` ones. Each runs in a fresh interpreter, as a user runs it; the test reads what it
printed: results, states, exceptions, hook calls and the hooks' log lines.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).parent / "prefect_scripts"


def run_script(name: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``prefect_scripts/<name>`` in ``tmp_path``; its stdout, then its stderr (where the run logger
    prints, as Prefect's does); the test fails on a non-zero exit."""
    completed = subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OTEL_SDK_DISABLED": "true", **(env or {})},
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout + completed.stderr


def test_task_return_values_and_return_state_as_in_the_manage_states_docs(tmp_path: Path) -> None:
    """A task returning ``Failed(...)`` fails without raising, the flow returning it fails with
    "1/2 states failed." and returns the states; ``return_state=True`` gives the final state; a flow
    that swallows a failed state completes; custom names such as ``Skipped`` are kept."""
    out = run_script("states_return_values.py", tmp_path)
    assert "example: FAILED Failed 1/2 states failed.\n" in out
    assert "state_one: FAILED Failed I was instructed to fail.\n" in out
    assert "state_two: COMPLETED Completed I was instructed to succeed.\n" in out
    assert (
        "example() returned: [\"Failed('I was instructed to fail.')\", "
        "\"Completed('I was instructed to succeed.')\"]\n"
    ) in out
    assert "my_flow: ok\n" in out
    assert "hidden failure flow: COMPLETED\n" in out
    assert "skip_me: COMPLETED Skipped nothing to do\n" in out
    assert "result() raised: TypeError\n" in out
    message = 'Task run encountered an exception TypeError: can only concatenate str (not "int") to str'
    assert f"message: {message}" in out


def test_state_hooks_as_in_the_state_change_hooks_docs(tmp_path: Path) -> None:
    """Keyword and decorator hooks run in order inside the run (``runtime.task_run`` is the run's), with
    Prefect's log lines; success and failure hooks pick by state; kwargs reach a hook through
    ``with_options`` and ``partial``; a failure hook runs once, after the retries; a raising hook is
    logged and the flow still returns its value."""
    out = run_script("state_hooks.py", tmp_path)
    assert "calls: [('first_task_hook', 'nice_task', True, 'Completed'), ('second_hook', 'COMPLETED')]" in out
    assert "Running hook 'first_task_hook' in response to entering state 'Completed'" in out
    assert "Hook 'first_task_hook' finished running successfully" in out
    assert out.index("I run anytime this task executes successfully") < out.index("another hook")
    assert "Task run succeeded!\n" in out
    assert "Task run failed!\n" in out
    assert out.count("If the task run succeeds or fails, this hook runs.") == 2
    assert "maybe(True) raised ValueError" in out
    assert "kwargs hook: ['state', 'x', 'y'] Failed" in out
    assert "with message: Flow run encountered an exception: ValueError: oops!" in out
    assert "failing_flow raised: oops!" in out
    assert "failure hook calls: [('notify_slack', True, 2)]" in out
    assert "An error was encountered while running hook 'broken_hook'" in out
    assert "survives_its_hook returned: 7" in out
    assert "calls: [('running_hook', 'RUNNING')]" in out


def test_futures_wait_map_and_resolution_as_in_the_task_runner_docs(tmp_path: Path) -> None:
    """``wait`` returns done/not-done sets, futures passed to tasks arrive as values (also inside
    dataclasses, pydantic models and dicts), ``map`` with ``unmapped`` gives a ``PrefectFutureList``,
    ``as_completed`` yields every future, and a flow returning futures returns their results."""
    out = run_script("futures_and_map.py", tmp_path)
    assert "elevator: (10, 0)\n" in out
    assert "my_workflow: cool task said sup\n" in out
    assert "raise_on_failure: I'm a task!\n" in out
    assert "sums: ok\n" in out
    assert "evaluate_models: (6, True)\n" in out
    assert "containers: (3, 'abab', 1)\n" in out
    assert "returns_futures: (3, [4])\n" in out
    assert "as_completed: ([1, 2, 3], True)\n" in out


def test_upstream_failures_wait_for_allow_failure_and_quote(tmp_path: Path) -> None:
    """``wait_for`` orders runs; downstream runs of a failed upstream do not run and are ``NotReady``
    (PENDING) with Prefect's message, their ``result()`` raising ``UnfinishedRun``; the flow is FAILED
    ("2/4 states failed."); ``allow_failure`` lets a run start and receive the exception; ``quote``
    passes a value as it is."""
    out = run_script("upstream_failures.py", tmp_path)
    assert "ran: ['a', 'b', 'c', 'd']\n" in out
    assert "test_flow: FAILED 2/4 states failed.\n" in out
    assert "a.result() raised: RuntimeError This task fails!\n" in out
    assert "b.result() raised: ValueError This task fails and passes data downstream!\n" in out
    assert "c: True NotReady\nd: True NotReady\n" in out
    assert "c message ok: True\nd message ok: True\n" in out
    assert "c.result() raised UnfinishedRun: Run is in PENDING state, its result is not available.\n" in out
    assert "downstream ran: []\n" in out
    assert "allowed: ('cleaned up after ValueError', 'NotReady', 'Completed')\n" in out
    assert "quoted: 100000\n" in out


WORKER_LINES = (
    "map: [2, 4, 6]\n",
    "failed: FAILED Failed Task run encountered an exception ValueError: raised in a worker\n",
    "blocked: PENDING NotReady\n",
    "refused: FAILED the worker says no\n",
    "skipped: COMPLETED Skipped 5\n",
    "wait_for: 42\n",
    "dead: True CRASHED Crashed\n",
    "dead message: Execution was interrupted by an unexpected exception\n",
)


def missing_worker_lines(out: str) -> list[str]:
    """The lines of ``WORKER_LINES`` that ``out`` lacks."""
    return [line for line in WORKER_LINES if line not in out]


def test_states_and_futures_through_process_workers_and_a_dead_worker(tmp_path: Path) -> None:
    """Through ``ProcessPoolTaskRunner`` the states, ``NotReady``, returned states and ``wait_for``
    are as in threads, and a worker that dies leaves its future ``Crashed`` instead of hanging."""
    assert missing_worker_lines(run_script("workers.py", tmp_path, "process")) == []


def test_states_and_futures_through_dask_workers_and_a_dead_worker(tmp_path: Path) -> None:
    """The same through ``DaskTaskRunner``: a killed Dask worker (no retries allowed) is ``Crashed``."""
    pytest.importorskip("distributed")
    no_retries = {"DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    assert missing_worker_lines(run_script("workers.py", tmp_path, "dask", env=no_retries)) == []


def test_runtime_overrides_in_prefects_spelling_as_in_the_runtime_context_docs(tmp_path: Path) -> None:
    """``PREFECT__RUNTIME__<MODULE>__<ATTR>`` mocks a runtime value cast to its type (an unknown key is
    the raw string); ``OTEL_RUNTIME__...`` wins when both spellings are set."""
    out = run_script(
        "runtime_overrides.py",
        tmp_path,
        env={
            "PREFECT__RUNTIME__TASK_RUN__FAKE_KEY": "foo",
            "PREFECT__RUNTIME__FLOW_RUN__NAME": "mocked-run",
            "PREFECT__RUNTIME__FLOW_RUN__RUN_COUNT": "2",
            "PREFECT__RUNTIME__FLOW_RUN__SCHEDULED_START_TIME": "2024-05-01T12:30:00",
            "PREFECT__RUNTIME__DEPLOYMENT__NAME": "prefect-spelling",
            "OTEL_RUNTIME__DEPLOYMENT__NAME": "our-spelling",
        },
    )
    assert "fake_key: foo\n" in out
    assert "my_flow: ('mocked-run', 2, 2024, True, 'our-spelling')\n" in out


RUN_LOGGER_MESSAGES = [
    ("INFO", "Flow run", "INFO level log message."),
    ("ERROR", "Flow run", "ERROR level log message."),
    ("CRITICAL", "Flow run", "CRITICAL level log message."),
    ("INFO", "Task run", "INFO level log message from a task."),
    ("INFO", "Flow run", "fetched 42 rows from events table=events"),
    ("ERROR", "Flow run", "lookup failed"),
]


def test_the_run_logger_prints_as_prefects_when_no_logging_is_set_up(tmp_path: Path) -> None:
    """The "Emit custom logs" example with no logging set up: each line printed once on stderr in
    Prefect's format (``HH:MM:SS.mmm | LEVEL   | Flow run 'name' - message``), DEBUG lines dropped,
    %-arguments applied, the exception's traceback after its line."""
    out = run_script("run_logger.py", tmp_path, "plain")
    pattern = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| (\w+) *\| (Flow run|Task run) '([\w-]+)' - (.*)$")
    lines = [match.groups() for match in map(pattern.match, out.splitlines()) if match]
    assert [(level, kind, message) for level, kind, _, message in lines] == RUN_LOGGER_MESSAGES
    assert lines[3][2].startswith("log-example-task-")
    assert "DEBUG" not in out
    assert out.count("Traceback (most recent call last):") == 1
    assert "KeyError: 'missing'" in out


def test_the_run_logger_goes_through_the_users_logging_set_up_once(tmp_path: Path) -> None:
    """With ``logging.basicConfig(format=...)``: each line once, through the user's format, which reads
    Prefect's record attributes (``flow_name``, ``flow_run_name``, ``task_name``, ``task_run_name``)."""
    out = run_script("run_logger.py", tmp_path, "basic")
    lines = [line.split("|") for line in out.splitlines() if line.count("|") == 5]
    assert [(line[0], line[5]) for line in lines] == [
        (level, message.removesuffix(" table=events")) for level, _, message in RUN_LOGGER_MESSAGES
    ]
    assert {line[1] for line in lines} == {"log-example-flow"}
    assert [line[3] for line in lines] == ["None", "None", "None", "log-example-task", "None", "None"]
    assert out.count("INFO level log message from a task.") == 1


def test_the_run_logger_is_exported_with_trace_ids_by_configure(tmp_path: Path) -> None:
    """After ``otel_runtime.configure()`` the lines still print once and each is a log record in the
    local telemetry file, with the run's trace id, its span id and the run fields."""
    from otel_runtime._tools.otlp_read import iter_logs, read_records

    env = {"OTEL_SDK_DISABLED": "false", "OTEL_RUNTIME_RUN_EVENTS": "false", "OTEL_METRICS_EXPORTER": "none"}
    out = run_script("run_logger.py", tmp_path, "export", env=env)
    assert out.count(" - INFO level log message.") == 1
    path = tmp_path / ".otel_runtime" / "telemetry.jsonl"
    logs = [log for record in read_records(path) for log in iter_logs(record)]
    assert [log["body"] for log in logs] == [
        message.removesuffix(" table=events") for *_, message in RUN_LOGGER_MESSAGES
    ]
    assert len({log["trace_id"] for log in logs}) == 1
    assert all(log["trace_id"] and log["span_id"] and log["attributes"]["flow_run_id"] for log in logs)
    assert logs[3]["attributes"]["task_name"] == "log-example-task"
    assert logs[4]["attributes"]["table"] == "events"
    assert logs[5]["attributes"]["exception.type"] == "KeyError"


def test_timeouts_as_in_the_write_workflows_and_tasks_docs(tmp_path: Path) -> None:
    """``timeout_seconds`` stops a sync flow on the main thread mid-``time.sleep``, a called task and an
    async task, raising ``TimeoutError`` in the caller with Prefect's ``TimedOut`` state and messages;
    a timed-out attempt is retried; a submitted task's blocking call ends first, then it times out."""
    out = run_script("timeouts.py", tmp_path)
    assert "I will execute" in out
    assert "I will not execute" not in out
    assert "show_timeouts raised: FlowRunTimeoutError: Scope timed out after 0.5 second(s).\n" in out
    assert "show_timeouts state: FAILED TimedOut Flow run exceeded timeout of 0.5 second(s)\n" in out
    # the run logger's line, on stderr
    logged = r"\| ERROR   \| Flow run '[\w-]+' - Flow run exceeded timeout of 0\.5 second"
    assert re.search(logged, out)
    assert "slow_task raised: TaskRunTimeoutError: Scope timed out after 0.3 second(s).\n" in out
    assert "slow_task state: FAILED TimedOut Task run exceeded timeout of 0.3 second(s)\n" in out
    assert "retried: done on attempt 2\n" in out
    assert "submitted state: TimedOut Task run exceeded timeout of 0.2 second(s)\n" in out
    assert "flow finished\n" in out
    assert "slow_async_task raised: TaskRunTimeoutError\n" in out
    assert "took under 5 s: True\n" in out


def test_retry_options_as_in_the_retries_docs(tmp_path: Path) -> None:
    """``retry_condition_fn`` decides from the failed state (retry a 500, not a 404 or a connection
    error); a condition that raises is logged and stops the retries; ``exponential_backoff`` gives
    Prefect's delays, jittered by ``retry_jitter_factor``; a list of delays is used in order; each
    retry logs Prefect's line."""
    out = run_script("retry_options.py", tmp_path)
    assert "exponential_backoff(10)(3): [10, 20, 40]\n" in out
    assert "status 500 ok on attempt 3\n" in out
    for name in ("404", "connect", "guarded", "melancholic"):
        assert f"{name}: FAILED Failed\n" in out
    assert "An error was encountered while running `retry_condition_fn` check 'broken_handler'" in out
    assert (
        "Task run failed with exception: HTTPStatusError('HTTP 500') - Retry 1/2 will start immediately"
        in out
    )
    assert "Retry 4/4 will start 0.08 second(s) from now" in out
    assert "backed off\n" in out
    assert "backoff took under 2 s: True\n" in out
    expected = [
        ("backoff", 4),
        ("connect", 1),
        ("guarded", 1),
        ("melancholic", 5),
        ("status 404", 1),
        ("status 500", 3),
    ]
    assert f"attempts: {expected}\n" in out
    assert "delays kept: [0.05, 0.1, 0.2]\n" in out


def test_task_caching_as_in_the_caching_docs_and_across_two_processes(tmp_path: Path) -> None:
    """``persist_result=True`` (``DEFAULT``) caches within a flow run; ``INPUTS``, ``INPUTS - "debug"``,
    ``TASK_SOURCE``, ``FLOW_PARAMETERS``, a ``cache_key_fn`` and ``task_input_hash`` cache across runs
    and processes; expired values and ``refresh_cache`` run again; unhashable inputs, ``NO_CACHE`` and
    unpicklable values run every time without failing; a hit is ``Cached(type=COMPLETED)``."""
    first = run_script("caching.py", tmp_path, "first")
    counts = {line: first.count(line + "\n") for line in set(first.splitlines()) if line.endswith(" ran")}
    assert counts == {
        "add_one(1) ran": 1,
        "add_one(2) ran": 1,
        "my_cached_task(1) ran": 1,
        "my_subset_task(2, debug=True) ran": 1,
        "my_stateful_task ran": 1,
        "cached_task ran": 1,
        "hello_task(Marvin) ran": 1,
        "expired_task(3) ran": 2,
        "refreshed_task(4) ran": 2,
        "with_lock(5) ran": 2,
        "without_lock(6) ran": 1,
        "never_cached(7) ran": 2,
        "unpicklable(8) ran": 2,
        "by_flow_parameters ran": 2,  # once for day=mon, once for day=tue
    }
    assert "my_flow last: COMPLETED Cached 2 Cached(type=COMPLETED)\n" in first
    assert "submitted: Cached 43\n" in first
    assert "shared key: 43\n" in first  # my_subset_task(1) did not run: INPUTS alone is shared
    second = run_script("caching.py", tmp_path, "second")
    ran_again = sorted(line for line in second.splitlines() if line.endswith(" ran"))
    assert ran_again == sorted(
        [
            "add_one(1) ran",  # DEFAULT includes the flow run id: a new flow run, a new key
            "add_one(2) ran",
            *["expired_task(3) ran"] * 2,
            *["refreshed_task(4) ran"] * 2,
            *["with_lock(5) ran"] * 2,
            *["never_cached(7) ran"] * 2,
            *["unpicklable(8) ran"] * 2,
        ]
    )
    assert "second phase done\n" in second


def test_run_names_as_in_the_write_workflows_and_tasks_docs(tmp_path: Path) -> None:
    """Name functions read ``runtime.flow_run`` / ``runtime.task_run`` (parameters, flow and task
    names) of the run they name; a task's name function may take ``parameters``; templates format the
    parameters; a failing template or a non-string name gives a generated name, with a warning."""
    out = run_script("run_names.py", tmp_path)
    assert "flow run name: my_flow-with-marvin-and-100\n" in out
    assert "task run name: my_flow-my-example-task-with-marvin-and-100\n" in out
    assert "parameters name: sum-of-1-and-2\n" in out
    assert "template: hello-marvin-on-Monday\n" in out
    assert "bad template starts generated: True\n" in out
    assert "not a string starts generated: True\n" in out


def test_parameter_validation_as_in_the_pass_inputs_docs(tmp_path: Path) -> None:
    """Flow inputs are validated against the type hints with pydantic: ``"3"`` arrives as ``3`` (in
    ``runtime.flow_run.parameters`` too), ``name=1`` for a ``str`` raises ``ParameterTypeError`` before
    the function runs, ``validate_parameters=False`` turns it off, pydantic models are validated."""
    out = run_script("parameter_validation.py", tmp_path)
    assert "Hello, Marvin!\n" in out
    assert "my_workflow(name=1) raised ParameterTypeError: Flow run received invalid parameters:\n" in out
    assert " - name: Input should be a valid string\n" in out
    assert "Validation of flow parameters failed with error: Flow run received invalid parameters:" in out
    assert "Hello, 1!\n" in out
    assert "coerced: (3, 'int', 3)\n" in out
    assert "model: Model(a=1, b='fine')\n" in out
    assert "state: FAILED Failed\n" in out
    assert "message starts: Validation of flow parameters failed with error: ParameterTypeError:" in out
    assert "ran: 1\n" in out


def test_without_pydantic_parameters_pass_as_given_with_one_warning(tmp_path: Path) -> None:
    """Without pydantic (the ``validation`` extra), a flow's parameters are not validated or coerced:
    the run goes ahead with them as given, and one warning says how to turn validation on."""
    script = tmp_path / "no_pydantic.py"
    script.write_text(
        "import sys\n"
        "sys.modules['pydantic'] = None  # as if it were not installed\n"
        "from otel_runtime import flow\n"
        "@flow\n"
        "def count_to(limit: int):\n"
        "    return type(limit).__name__\n"
        "print('types:', count_to('3'), count_to('4'))\n"
    )
    completed = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OTEL_SDK_DISABLED": "true"},
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert "types: str str\n" in completed.stdout
    warning = "pydantic is not installed: its parameters are not validated or coerced"
    assert (completed.stdout + completed.stderr).count(warning) == 1
