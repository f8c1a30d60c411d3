"""Every PromQL query of the Grafana dashboards, run on a real Prometheus scraping real flow runs.

A child process runs flows (completed and failed flow runs and task runs in two deployments, then one
flow run that stays running) with ``OTEL_METRICS_EXPORTER=prometheus``; a real Prometheus server
(Debian's ``prometheus`` package; ``.ci/run`` installs it) scrapes its endpoint on 127.0.0.1 every
second. Then each query of each dashboard, template variables filled in as Grafana would, goes to
Prometheus's HTTP API and must return the series those runs produced. Without a ``prometheus`` binary
the tests fail: they are never skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_runtime._base import keys as _keys

ROOT = Path(__file__).resolve().parent.parent.parent
DASHBOARDS = sorted((ROOT / "grafana" / "dashboards").glob("*.json"))
ROUNDS = 3

FLOWS = """
import sys, time
from otel_runtime import configure, deployment, flow, task

@task
def extract(n: int) -> int:
    return n

@task
def load(rows: list) -> int:
    time.sleep(0.02)
    return len(rows)

@task
def explode() -> None:
    raise ValueError("boom")

@task
def wait_for_signal() -> None:
    sys.stdin.readline()

@flow
def etl() -> None:
    load([extract(1), extract(2)])

@flow
def etl_failing() -> None:
    explode()

@flow
def long_etl() -> None:
    wait_for_signal()

configure(service_name="prometheus-test")
print("serving", flush=True)
sys.stdin.readline()  # the test says when Prometheus scrapes us: then every round is seen
for _ in range(int(sys.argv[1])):
    with deployment("nightly"):
        etl()
        try:
            etl_failing()
        except ValueError:
            pass
    with deployment("hourly"):
        etl()
    time.sleep(2.5)  # two scrapes or more between rounds: increase() and rate() see each round
print("running", flush=True)
with deployment("nightly"):
    long_etl()  # until the test writes a line
"""

FLOW_NAMES = {"etl", "etl_failing", "long_etl"}
TASK_NAMES = {"extract", "load", "explode", "wait_for_signal"}
DEPLOYMENTS = {"nightly", "hourly"}
# What each run produced, for the checks below: (run type, deployment, flow, task, final state).
FINISHED = {
    ("flow", "nightly", "etl", None, "COMPLETED"),
    ("flow", "nightly", "etl_failing", None, "FAILED"),
    ("flow", "hourly", "etl", None, "COMPLETED"),
    ("task", "nightly", "etl", "extract", "COMPLETED"),
    ("task", "nightly", "etl", "load", "COMPLETED"),
    ("task", "nightly", "etl_failing", "explode", "FAILED"),
    ("task", "hourly", "etl", "extract", "COMPLETED"),
    ("task", "hourly", "etl", "load", "COMPLETED"),
}
RUNNING = {("flow", "nightly", "long_etl", None), ("task", "nightly", "long_etl", "wait_for_signal")}
LABEL = {"deployment": "deployment_name", "flow": "flow_name", "task": "task_name"}
GROUP = {
    "deployment_name": 1,
    "flow_name": 2,
    "task_name": 3,
    "otel_runtime_run_state_type": 4,
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prometheus_binary() -> str:
    binary = shutil.which("prometheus") or next(
        (path for path in ("/usr/bin/prometheus", "/usr/local/bin/prometheus") if os.path.exists(path)), None
    )
    if binary is None:
        pytest.fail(
            "the prometheus server is not installed: apt-get install -y prometheus (.ci/run does it). "
            "These tests run every dashboard query on a real Prometheus and are never skipped."
        )
    return binary


def get(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise AssertionError(f"{urllib.parse.unquote(url)}: {error.read().decode()}") from None


@dataclass
class Stack:
    prometheus: str
    flows: subprocess.Popen[str]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector ``promql`` gives now: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        answer = get(f"{self.prometheus}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert answer["status"] == "success", (promql, answer)
        assert answer["data"]["resultType"] == "vector", promql
        return list(answer["data"]["result"])

    def label_values(self, label: str, selector: str) -> set[str]:
        url = f"{self.prometheus}/api/v1/label/{label}/values?" + urllib.parse.urlencode(
            {"match[]": selector}
        )
        answer = get(url)
        assert answer["status"] == "success", answer
        return set(answer["data"])


def wait_until(check: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Flows exposing their run metrics, and a Prometheus scraping them every second, both on 127.0.0.1."""
    binary = prometheus_binary()
    folder = tmp_path_factory.mktemp("prometheus")
    metrics_port, web_port = free_port(), free_port()
    script = folder / "flows.py"
    script.write_text(FLOWS)
    environment = {key: value for key, value in os.environ.items() if not key.startswith("OTEL_")}
    environment |= {
        "OTEL_METRICS_EXPORTER": "prometheus",
        "OTEL_RUNTIME_PROMETHEUS_ADDRESS": f"127.0.0.1:{metrics_port}",
        "OTEL_TRACES_EXPORTER": "none",
        "OTEL_LOGS_EXPORTER": "none",
    }
    config = folder / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n  - job_name: flows\n    static_configs:\n"
        f"      - targets: ['127.0.0.1:{metrics_port}']\n"
    )
    log = (folder / "prometheus.log").open("w")
    server = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{web_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{web_port}"
    flows = subprocess.Popen(
        [sys.executable, str(script), str(ROUNDS)],
        env=environment,
        cwd=folder,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(lambda: urllib.request.urlopen(f"{base}/-/ready", timeout=2).status == 200, "Prometheus")
        assert flows.stdout is not None
        assert flows.stdin is not None
        assert flows.stdout.readline().strip() == "serving", flows.stderr.read() if flows.stderr else ""
        running = Stack(base, flows)
        wait_until(lambda: len(running.query('up{job="flows"} == 1')) == 1, "Prometheus scraping the flows")
        flows.stdin.write("go\n")
        flows.stdin.flush()
        assert flows.stdout.readline().strip() == "running", flows.stderr.read() if flows.stderr else ""
        active = f'{_keys.PROMETHEUS_RUNS_ACTIVE}{{flow_name="long_etl"}} == 1'
        wait_until(lambda: len(running.query(active)) == 2, "a scrape that sees the running flow")
        yield running
    finally:
        try:
            flows.communicate("stop\n", timeout=30)
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()


def dashboard_queries() -> list[tuple[str, str, str]]:
    """(where, PromQL, grouping label or "") of every Prometheus target of every dashboard."""
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for panel in _panels(dashboard["panels"]):
            for target in panel.get("targets", []):
                datasource = target.get("datasource") or panel["datasource"]
                if datasource["type"] == "prometheus":
                    where = f"{path.name}: {panel['title']} {target['refId']}"
                    found.append((where, target["expr"], _grouping(target["expr"])))
    assert found, "no PromQL in the dashboards"
    return found


def variable_queries() -> list[tuple[str, str]]:
    found = []
    for path in DASHBOARDS:
        dashboard = json.loads(path.read_text(encoding="utf-8"))
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query" and variable["datasource"]["type"] == "prometheus":
                query = variable["query"]
                found.append(
                    (
                        f"{path.name}: ${variable['name']}",
                        query["query"] if isinstance(query, dict) else query,
                    )
                )
    assert found
    return found


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _grouping(expr: str) -> str:
    groups = {label.strip() for group in re.findall(r"\bby \(([^)]*)\)", expr) for label in group.split(",")}
    groups.discard("le")
    assert len(groups) <= 1, f"{expr}: grouped by {groups}"
    return groups.pop() if groups else ""


def fill(expr: str, selection: dict[str, str]) -> str:
    """The query as Grafana sends it: variables replaced, All as .*, a single value as itself."""
    for name in ("deployment", "flow", "task", "flow_run"):
        value = re.escape(selection[name]).replace("\\", "\\\\") if name in selection else ".*"
        expr = expr.replace(f"${name}", value)
    return expr.replace("$__range", "10m").replace("$__rate_interval", "1m")


def expected_values(expr: str, label: str, selection: dict[str, str]) -> set[str]:
    """The values of ``label`` the runs produced that ``expr``'s filters (and the selection) keep."""
    run_type = re.search(r'otel_runtime_run_type="(\w+)"', expr)
    failed_only = "FAILED|CRASHED" in expr
    running = "_active" in expr
    pool = {row[:4] for row in RUNNING} | {row[:4] for row in FINISHED} if running else FINISHED
    values = set()
    for row in pool:
        if run_type and row[0] != run_type.group(1):
            continue
        if failed_only and row[4] != "FAILED":
            continue
        if any(row[GROUP[LABEL[name]]] != value for name, value in selection.items()):
            continue
        values.add(str(row[GROUP[label]]))
    return values


@pytest.mark.parametrize(
    "selection",
    [{}, {"deployment": "hourly"}, {"deployment": "nightly", "flow": "etl_failing"}, {"task": "load"}],
    ids=["all", "deployment=hourly", "deployment=nightly,flow=etl_failing", "task=load"],
)
def test_every_dashboard_query_returns_the_series_the_flows_produced(
    stack: Stack, selection: dict[str, str]
) -> None:
    """Each PromQL target, variables filled in, returns one series per value of its grouping label that
    the runs produced and the filters keep (and nothing else); counts, rates and durations are positive
    where runs happened, and "running now" is 1 where the long flow runs."""
    for where, expr, label in dashboard_queries():
        result = stack.query(fill(expr, selection))
        applied = {name: value for name, value in selection.items() if f"${name}" in expr}
        if not label:  # a total: one series
            assert len(result) == 1, (where, result)
            total = float(result[0]["value"][1])
            running_now = {
                row for row in RUNNING if all(row[GROUP[LABEL[n]]] == v for n, v in applied.items())
            }
            kind = re.search(r'otel_runtime_run_type="(\w+)"', expr)
            assert kind is not None, where
            assert total == len([row for row in running_now if row[0] == kind.group(1)]), (where, total)
            continue
        got = {series["metric"].get(label, "") for series in result}
        assert got == expected_values(expr, label, applied), (where, fill(expr, selection), result)
        for series in result:
            value = float(series["value"][1])
            if "_active" in expr:  # as many as are running there now: the long flow (and its task)
                kind = re.search(r'otel_runtime_run_type="(\w+)"', expr)
                running = [
                    row
                    for row in RUNNING
                    if (kind is None or row[0] == kind.group(1))
                    and row[GROUP[label]] == series["metric"][label]
                    and all(row[GROUP[LABEL[n]]] == v for n, v in applied.items())
                ]
                assert value == len(running), (where, series)
            else:
                assert value > 0, (where, series)


def test_every_template_variable_lists_the_values_the_flows_produced(stack: Stack) -> None:
    """Each label_values() variable lists exactly the deployments, flows or tasks that ran."""
    wanted = {"deployment_name": DEPLOYMENTS, "flow_name": FLOW_NAMES, "task_name": TASK_NAMES}
    for where, query in variable_queries():
        match = re.fullmatch(r"label_values\((.*), (\w+)\)", query)
        assert match, f"{where}: not label_values(selector, label): {query}"
        selector, label = match.groups()
        assert stack.label_values(label, fill(selector, {})) == wanted[label], where


def test_the_metric_names_in_keys_are_the_ones_prometheus_stores(stack: Stack) -> None:
    """keys.PROMETHEUS_* name what Prometheus has, with the labels of keys.METRIC_ATTRIBUTES."""
    names = stack.label_values("__name__", '{job="flows"}')
    assert _keys.PROMETHEUS_RUNS_ACTIVE in names
    assert _keys.PROMETHEUS_RUNS_FINISHED in names
    assert {f"{_keys.PROMETHEUS_RUN_DURATION}_{suffix}" for suffix in ("bucket", "sum", "count")} <= names
    labels = {label for series in stack.query(_keys.PROMETHEUS_RUNS_FINISHED) for label in series["metric"]}
    ours = {re.sub(r"\W", "_", name) for name in _keys.METRIC_ATTRIBUTES}
    assert ours <= labels
    assert not {"flow_run_id", "task_run_id", "flow_run_name", "task_run_name"} & labels
