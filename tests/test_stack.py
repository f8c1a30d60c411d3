"""The observability stack (docker-compose.yml, collector-config/, grafana/) hangs together.

These tests read the files and start nothing: the stack itself needs Docker. They check that the
Collector pipelines are wired, that ports and host names agree between docker-compose.yml and the
configs, that every data source a dashboard or cross-link uses is provisioned, and that every attribute,
label or log field a query uses is one otel_runtime emits. The names we emit come from
``otel_runtime._base.keys``; the few names below that are not ours come from OpenTelemetry, Prometheus
or Loki, and say so. (tests/integration/test_prometheus.py runs the PromQL on a real Prometheus.)
"""

from __future__ import annotations

import importlib.util
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _keys_from_file() -> ModuleType:
    """Load ``otel_runtime/_base/keys.py`` by path (it imports nothing outside the standard library)."""
    spec = importlib.util.spec_from_file_location("_otel_runtime_keys", ROOT / "otel_runtime" / "_keys.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


try:
    from otel_runtime._base import keys as _keys
except ImportError:  # the package may need dependencies this environment lacks; the key module does not
    _keys = _keys_from_file()

COMPOSE_FILE = ROOT / "docker-compose.yml"
COLLECTOR_FILE = ROOT / "collector-config" / "otel-collector.yaml"
DATASOURCES_FILE = ROOT / "grafana" / "provisioning" / "datasources" / "datasources.yaml"
DASHBOARD_PROVIDERS_FILE = ROOT / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
DASHBOARD_DIR = ROOT / "grafana" / "dashboards"
COLLECTOR_SERVICE = "otel-collector"
GRAFANA_SERVICE = "grafana"

# Names we emit, all from otel_runtime._base.keys.
SPAN_ATTRIBUTES = frozenset(_keys.SPAN_ATTRIBUTES)
LOG_FIELDS = frozenset(_keys.LOG_FIELDS)
RUN_TYPES = frozenset({_keys.RUN_TYPE_FLOW, _keys.RUN_TYPE_TASK})
# Attributes under flow_run.* / task_run.* describe one run (ids, names, tags, counts, parameters).
PER_RUN_SCOPES = frozenset({_keys.FLOW_RUN_ID.split(".")[0], _keys.TASK_RUN_ID.split(".")[0]})
EXAMPLE_FLOW_SPAN = _keys.FLOW_SPAN_PREFIX + "nightly-etl"
EXAMPLE_TASK_SPAN = _keys.TASK_SPAN_PREFIX + "extract"

# Names that are not ours.
SERVICE_NAME = "service.name"  # OpenTelemetry resource attribute; configure() sets it
RESOURCE_ATTRIBUTES = frozenset({SERVICE_NAME})
# Labels Prometheus series carry besides our metric attributes: the scrape's job and instance, the
# exporters' instrumentation-scope label, and the histogram bucket bound.
PROMETHEUS_BUILTIN_LABELS = frozenset({"job", "instance", "otel_scope_name"})
SPAN_METRICS_CONNECTOR = "span_metrics"  # component type in the pinned collector-contrib release
BUCKET_LABEL = "le"  # Prometheus histogram bucket bound
HISTOGRAM_SUFFIXES = ("bucket", "sum", "count")
RUN_METRIC_NAMES = frozenset(
    {_keys.PROMETHEUS_RUNS_ACTIVE, _keys.PROMETHEUS_RUNS_FINISHED}
    | {f"{_keys.PROMETHEUS_RUN_DURATION}_{suffix}" for suffix in HISTOGRAM_SUFFIXES}
)
# Grafana expands these itself; they are not dashboard variables.
GRAFANA_BUILTIN_VARIABLE = re.compile(r"__\w+")

DATASOURCE_LANGUAGES = {"prometheus": "promql", "loki": "logql", "tempo": "traceql"}
# Images that cannot run a health check (no shell, no HTTP client), and one-shot services.
NO_HEALTHCHECK = {
    "otel-collector": "collector-contrib image is built from scratch",
    "tempo": "distroless image without a health command",
    "volume-init": "one-shot job, not a long-running service",
}


# --- loading ---------------------------------------------------------------------------------------


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@cache
def _compose() -> dict[str, Any]:
    return _yaml(COMPOSE_FILE)


@cache
def _collector() -> dict[str, Any]:
    return _yaml(COLLECTOR_FILE)


@cache
def _datasources() -> list[dict[str, Any]]:
    return _yaml(DATASOURCES_FILE)["datasources"]


@cache
def _dashboards() -> dict[str, dict[str, Any]]:
    return {
        path.name: json.loads(path.read_text(encoding="utf-8"))
        for path in sorted(DASHBOARD_DIR.glob("*.json"))
    }


def _services() -> dict[str, dict[str, Any]]:
    return _compose()["services"]


def _stack_files() -> list[Path]:
    files = [COMPOSE_FILE]
    for folder in (ROOT / "collector-config", ROOT / "grafana"):
        files += sorted(p for p in folder.rglob("*") if p.suffix in {".yaml", ".yml", ".json"})
    return files


def _unescape(text: str) -> str:
    """Grafana provisioning files write a literal ``$`` as ``$$``."""
    return text.replace("$$", "$")


def _prometheus_name(name: str) -> str:
    """The label name Prometheus (and Loki) give an OpenTelemetry attribute: dots become underscores."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def _component_type(component_id: str) -> str:
    return component_id.split("/", 1)[0]


def _is_our_span_attribute(name: str) -> bool:
    parameter_prefixes = (_keys.FLOW_RUN_PARAMETER_PREFIX, _keys.TASK_RUN_PARAMETER_PREFIX)
    return name in SPAN_ATTRIBUTES or name.startswith(parameter_prefixes)


def _metric_labels() -> set[str]:
    """Every label a run-metric series can carry in Prometheus."""
    ours = {_prometheus_name(name) for name in _keys.METRIC_ATTRIBUTES}
    return ours | PROMETHEUS_BUILTIN_LABELS | {BUCKET_LABEL}


def _loki_stream_labels() -> set[str]:
    """Loki indexes resource attributes as stream labels; log attributes stay structured metadata."""
    return {_prometheus_name(name) for name in RESOURCE_ATTRIBUTES}


def _host_port(endpoint: str) -> tuple[str, int]:
    parts = urlsplit(endpoint if "://" in endpoint else f"//{endpoint}")
    assert parts.hostname, f"no host in {endpoint!r}"
    assert parts.port, f"no port in {endpoint!r}"
    return parts.hostname, parts.port


def _published(service: dict[str, Any]) -> dict[int, str]:
    """Container port -> the host binding compose publishes it on."""
    published: dict[int, str] = {}
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            published[int(entry["target"])] = f"{entry.get('host_ip', '')}:{entry.get('published', '')}"
        else:
            host, _, container = str(entry).rpartition(":")
            published[int(container.split("/")[0])] = host
    return published


def _declared_ports(service_name: str) -> set[int]:
    service = _services()[service_name]
    return {int(str(port).split("/")[0]) for port in service.get("expose", [])} | set(_published(service))


def _has_healthcheck(service: dict[str, Any]) -> bool:
    check = service.get("healthcheck") or {}
    return bool(check.get("test")) and not check.get("disable", False)


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def _bind_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of every ``./host:container`` bind mount."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            mounts[target] = (ROOT / source).resolve()
    return mounts


def _mounted_file(service: dict[str, Any], container_path: str) -> Path | None:
    """The repository path behind a path inside the container, through the service's bind mounts."""
    path = Path(container_path)
    for target, source in _bind_mounts(service).items():
        if path == Path(target) or Path(target) in path.parents:
            return source / path.relative_to(target)
    return None


def _config_flag(service: dict[str, Any]) -> str | None:
    command = service.get("command") or []
    for argument in [command] if isinstance(command, str) else command:
        match = re.match(r"--?config(?:\.file)?=(\S+)", argument)
        if match:
            return match.group(1)
    return None


def _walk(node: Any) -> Iterator[tuple[str, Any]]:
    """Every (key, value) pair in a JSON/YAML tree."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def _panels(panels: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


# --- queries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Query:
    where: str
    language: str
    text: str


def _queries_of_dashboard(name: str, dashboard: dict[str, Any]) -> list[Query]:
    queries = []
    for panel in _panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            datasource = target.get("datasource") or panel["datasource"]
            text = target.get("expr") or target.get("query")
            queries.append(Query(f"{name}: {panel['title']}", DATASOURCE_LANGUAGES[datasource["type"]], text))
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            text = query["query"] if isinstance(query, dict) else query
            language = DATASOURCE_LANGUAGES[variable["datasource"]["type"]]
            queries.append(Query(f"{name}: ${variable['name']}", language, text))
    return queries


def _dashboard_queries() -> list[Query]:
    return [
        query for name, dashboard in _dashboards().items() for query in _queries_of_dashboard(name, dashboard)
    ]


def _datasource_queries() -> list[Query]:
    types = {datasource["uid"]: datasource["type"] for datasource in _datasources()}
    queries = []
    for datasource in _datasources():
        options = datasource.get("jsonData") or {}
        uid = datasource["uid"]
        to_logs = options.get("tracesToLogsV2") or {}
        if to_logs.get("customQuery"):
            queries.append(Query(f"{uid}: tracesToLogsV2", "logql", _unescape(to_logs["query"])))
        queries += [
            Query(f"{uid}: tracesToMetrics {query['name']}", "promql", _unescape(query["query"]))
            for query in (options.get("tracesToMetrics") or {}).get("queries", [])
        ]
        for field in options.get("derivedFields", []):
            url = _unescape(field["url"])
            if types.get(field.get("datasourceUid")) == "tempo" and "{" in url.replace("${", ""):
                queries.append(Query(f"{uid}: derived field {field['name']}", "traceql", url))
    return queries


def _queries(language: str) -> list[Query]:
    found = [query for query in _dashboard_queries() + _datasource_queries() if query.language == language]
    assert found, f"no {language} query found: the parser or the files changed"
    return found


_PROM_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r'([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)\s*"')
_PROM_GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# label_values(metric{...}, label) or label_values(label): (metric, label)
_LABEL_VALUES = re.compile(r"label_values\((?:\s*([A-Za-z_:][\w:]*)\s*(?:\{[^}]*\})?\s*,)?\s*(\w+)\s*\)")
_RUN_TYPE_MATCHER = re.compile(rf'\b{_prometheus_name(_keys.RUN_TYPE)}\s*(=~|=)\s*"([^"]*)"')
_LOG_STREAM = re.compile(r"^\s*\{([^}]*)\}")
_LOG_LABEL_FILTER = re.compile(r"\|\s*([A-Za-z_]\w*)\s*(?:=~|!~|!=|==|=|>=|<=|>|<)")
_TRACEQL_ATTRIBUTE = re.compile(r"(?<![\w.])(span|resource)\.([A-Za-z_][\w.]*\w)")
_TRACEQL_STRING_COMPARISON = re.compile(r'(?<![\w.])span\.([A-Za-z_][\w.]*\w)\s*(?:=|!=)\s*"([^"]*)"')
_VARIABLE = re.compile(r"\$\{?([A-Za-z_]\w*)")


def _promql_metrics(text: str) -> set[str]:
    metrics = {name for name, _ in _PROM_SELECTOR.findall(text)}
    return metrics | {metric for metric, _ in _LABEL_VALUES.findall(text) if metric}


def _promql_labels(text: str) -> set[str]:
    labels = {label for _, body in _PROM_SELECTOR.findall(text) for label in _MATCHER.findall(body)}
    for group in _PROM_GROUPING.findall(text):
        labels |= {label.strip() for label in group.split(",") if label.strip()}
    return labels | {label for _, label in _LABEL_VALUES.findall(text)}


# --- files -----------------------------------------------------------------------------------------


def test_stack_files_parse():
    """Every YAML and JSON file of the stack parses to a mapping, and the files the stack needs exist."""
    files = _stack_files()
    for required in (COMPOSE_FILE, COLLECTOR_FILE, DATASOURCES_FILE, DASHBOARD_PROVIDERS_FILE):
        assert required in files, f"missing {required.relative_to(ROOT)}"
    assert any(path.suffix == ".json" for path in files), "no dashboard JSON under grafana/"
    for path in files:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        assert isinstance(document, dict), f"{path.relative_to(ROOT)} is not a mapping"


# --- collector -------------------------------------------------------------------------------------


def test_collector_config_names_the_pinned_collector_version():
    """The collector config says which collector-contrib release its component names are for, and
    that is the release docker-compose.yml runs (component names change between releases)."""
    text = COLLECTOR_FILE.read_text(encoding="utf-8")
    match = re.search(r"opentelemetry-collector-contrib (\d+\.\d+\.\d+)", text)
    assert match, "the collector config does not say which collector-contrib release it is written for"
    image = _services()[COLLECTOR_SERVICE]["image"]
    assert "opentelemetry-collector-contrib" in image, f"{image} is not the contrib distribution"
    assert image.rsplit(":", 1)[1] == match.group(1)


def test_every_pipeline_component_is_defined():
    """Every receiver, processor, exporter and extension the service section names is defined."""
    config = _collector()
    connectors = set(config.get("connectors") or {})
    for name, pipeline in config["service"]["pipelines"].items():
        for receiver in pipeline["receivers"]:
            assert receiver in set(config["receivers"]) | connectors, f"{name}: undefined receiver {receiver}"
        for processor in pipeline.get("processors", []):
            assert processor in config["processors"], f"{name}: undefined processor {processor}"
        for exporter in pipeline["exporters"]:
            assert exporter in set(config["exporters"]) | connectors, f"{name}: undefined exporter {exporter}"
    for extension in config["service"].get("extensions", []):
        assert extension in config["extensions"], f"undefined extension {extension}"


def test_every_defined_component_is_used():
    """No receiver, processor, exporter, connector or extension is defined without being used."""
    config = _collector()
    pipelines = config["service"]["pipelines"].values()
    used = {
        "receivers": {r for p in pipelines for r in p["receivers"]},
        "processors": {r for p in pipelines for r in p.get("processors", [])},
        "exporters": {e for p in pipelines for e in p["exporters"]},
        "extensions": set(config["service"].get("extensions", [])),
    }
    used["connectors"] = used["receivers"] & used["exporters"]
    for kind, names in used.items():
        unused = set(config.get(kind) or {}) - names
        assert not unused, f"{kind} defined but not used: {sorted(unused)}"


def test_connectors_feed_a_traces_pipeline_into_a_metrics_pipeline():
    """Each connector is an exporter of one pipeline and a receiver of another; span metrics go from
    the traces pipeline to a metrics pipeline."""
    pipelines = _collector()["service"]["pipelines"]
    for connector in _collector().get("connectors") or {}:
        feeds = {name for name, p in pipelines.items() if connector in p["exporters"]}
        fed = {name for name, p in pipelines.items() if connector in p["receivers"]}
        assert feeds, f"{connector} is not an exporter of any pipeline"
        assert fed, f"{connector} is not a receiver of any pipeline"
        assert not feeds & fed, f"{connector} is exporter and receiver of the same pipeline"
        if _component_type(connector) == SPAN_METRICS_CONNECTOR:
            assert {_component_type(name) for name in feeds} == {"traces"}
            assert {_component_type(name) for name in fed} == {"metrics"}


def test_pipelines_run_memory_limiter_first_and_batch_last():
    """Every pipeline refuses data under memory pressure before doing anything else, and batches last."""
    for name, pipeline in _collector()["service"]["pipelines"].items():
        processors = [_component_type(p) for p in pipeline.get("processors", [])]
        assert processors[:1] == ["memory_limiter"], f"{name}: memory_limiter is not first"
        assert processors[-1:] == ["batch"], f"{name}: batch is not last"


def test_collector_gets_every_environment_variable_it_substitutes():
    """Each ${env:VAR} in the collector config is set in the collector's compose environment."""
    wanted = set(re.findall(r"\$\{env:([A-Za-z_]\w*)", COLLECTOR_FILE.read_text(encoding="utf-8")))
    missing = wanted - set(_environment(_services()[COLLECTOR_SERVICE]))
    assert not missing, f"collector config substitutes unset variables: {sorted(missing)}"


def test_collector_listening_ports_are_published():
    """The OTLP receiver endpoints and the health_check port are published on the same host port,
    so OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317 reaches the collector."""
    config = _collector()
    endpoints = [protocol["endpoint"] for protocol in config["receivers"]["otlp"]["protocols"].values()]
    endpoints.append(config["extensions"]["health_check"]["endpoint"])
    published = _published(_services()[COLLECTOR_SERVICE])
    for endpoint in endpoints:
        _, port = _host_port(endpoint)
        assert port in published, f"collector port {port} is not published"
        assert published[port].endswith(f":{port}"), f"port {port} is published as {published[port]}"


def test_endpoints_point_at_ports_their_services_declare():
    """Collector exporters, Prometheus scrape targets and Grafana data source URLs name a compose
    service and a port that service exposes; the collector's own listen addresses are ports it exposes."""
    listen_hosts = {"0.0.0.0", "localhost", "127.0.0.1"}
    exporters = _collector()["exporters"].items()
    endpoints = [
        (f"exporter {name}", cfg["endpoint"]) for name, cfg in exporters if "endpoint" in (cfg or {})
    ]
    endpoints = [
        (where, COLLECTOR_SERVICE if _host_port(url)[0] in listen_hosts else _host_port(url)[0], url)
        for where, url in endpoints
    ]
    prometheus = _services()["prometheus"]
    scrape_config = _mounted_file(prometheus, _config_flag(prometheus) or "")
    assert scrape_config is not None, "prometheus config file is not mounted"
    for job in _yaml(scrape_config)["scrape_configs"]:
        targets = [target for static in job["static_configs"] for target in static["targets"]]
        endpoints += [(f"scrape {job['job_name']}", _host_port(t)[0], t) for t in targets]
    endpoints += [(f"datasource {ds['uid']}", _host_port(ds["url"])[0], ds["url"]) for ds in _datasources()]
    for where, service, endpoint in endpoints:
        assert service in _services(), f"{where}: {endpoint} does not name a compose service"
        port = _host_port(endpoint)[1]
        assert port in _declared_ports(service), f"{where}: {service} does not expose port {port}"


def test_config_file_flags_point_at_mounted_repository_files():
    """Every service started with a config-file flag gets that file mounted from this repository."""
    flagged = {name: service for name, service in _services().items() if _config_flag(service)}
    assert {COLLECTOR_SERVICE, "tempo", "loki", "prometheus"} <= set(flagged)
    for name, service in flagged.items():
        source = _mounted_file(service, _config_flag(service) or "")
        assert source is not None, f"{name}: {_config_flag(service)} is not mounted"
        assert source.is_file(), f"{name}: {source} does not exist"


def test_backend_configs_listen_on_declared_ports():
    """Tempo and Loki listen (HTTP API, and Tempo's OTLP receivers) on ports compose declares for them."""
    for name in ("tempo", "loki"):
        service = _services()[name]
        path = _mounted_file(service, _config_flag(service) or "")
        assert path is not None, f"{name}: config file is not mounted"
        config = _yaml(path)
        ports = {config["server"]["http_listen_port"]}
        receivers = (config.get("distributor") or {}).get("receivers", {})
        ports |= {_host_port(p["endpoint"])[1] for r in receivers.values() for p in r["protocols"].values()}
        assert ports <= _declared_ports(name), f"{name} listens on {sorted(ports - _declared_ports(name))}"


# --- run metrics and names -------------------------------------------------------------------------


def test_run_metric_attributes_are_flow_task_deployment_and_state():
    """Run metrics are grouped by run type, flow.name, task.name, deployment.name and the state: span
    attributes otel_runtime sets, or the run state it derives."""
    attributes = set(_keys.METRIC_ATTRIBUTES)
    assert {_keys.RUN_TYPE, _keys.FLOW_NAME, _keys.TASK_NAME, _keys.DEPLOYMENT_NAME} <= attributes
    state = {_keys.RUN_STATE_TYPE, _keys.RUN_STATE_NAME}
    unknown = [name for name in attributes - state if not _is_our_span_attribute(name)]
    assert not unknown, f"metric attributes otel_runtime never sets: {unknown}"


def test_run_metric_attributes_hold_no_per_run_value():
    """No metric attribute is a run id, run name or other per-run attribute (each value: a new series)."""
    per_run = [name for name in _keys.METRIC_ATTRIBUTES if name.split(".", 1)[0] in PER_RUN_SCOPES]
    assert not per_run, f"per-run attributes explode metric cardinality: {per_run}"


def test_metrics_go_from_otlp_to_prometheus_with_exemplars_and_no_span_metrics_connector():
    """The metrics pipeline takes OTLP (the library's run metrics) to the prometheus exporter, which serves
    OpenMetrics (exemplars: trace ids on the duration buckets); Prometheus stores exemplars; and there
    is no span-metrics connector (the run metrics replace it, see the README)."""
    config = _collector()
    pipelines = config["service"]["pipelines"].items()
    (metrics,) = [p for name, p in pipelines if _component_type(name) == "metrics"]
    assert metrics["receivers"] == ["otlp"]
    exporter_types = {_component_type(name): cfg for name, cfg in config["exporters"].items()}
    assert [_component_type(name) for name in metrics["exporters"]] == ["prometheus"]
    assert exporter_types["prometheus"].get("enable_open_metrics") is True
    assert exporter_types["prometheus"].get("translation_strategy") == "UnderscoreEscapingWithSuffixes"
    assert not [c for c in config.get("connectors") or {} if _component_type(c) == SPAN_METRICS_CONNECTOR]
    assert "--enable-feature=exemplar-storage" in _services()["prometheus"]["command"]


def test_queries_use_the_run_metric_names():
    """PromQL queries name the run metrics as Prometheus stores them (keys.PROMETHEUS_*)."""
    for query in _queries("promql"):
        used = _promql_metrics(query.text)
        assert used, f"{query.where}: no metric"
        unknown = used - RUN_METRIC_NAMES
        assert not unknown, f"{query.where}: metrics otel_runtime does not export: {sorted(unknown)}"


def test_prometheus_labels_in_queries_exist_on_run_metrics():
    """Every label a PromQL query matches or groups by is a run-metric attribute or a Prometheus label."""
    for query in _queries("promql"):
        unknown = _promql_labels(query.text) - _metric_labels()
        assert not unknown, f"{query.where}: labels no run metric carries: {sorted(unknown)}"


def test_run_type_filters_select_one_run_type():
    """Dashboard queries filter the run type to flow or to task, never both and never neither, and the
    dashboards cover both."""
    kinds = set()
    for query in _dashboard_queries():
        if query.language != "promql" or ("label_values" in query.text and "task_name" not in query.text):
            continue
        matches = _RUN_TYPE_MATCHER.findall(query.text)
        assert matches, f"{query.where}: the run type is not filtered"
        for operator, value in matches:
            regex = operator == "=~"
            found = {kind for kind in RUN_TYPES if (re.fullmatch(value, kind) if regex else value == kind)}
            assert len(found) == 1, f"{query.where}: {value!r} matches {sorted(found) or 'nothing'}"
            kinds |= found
    assert kinds == RUN_TYPES, f"dashboards only cover {sorted(kinds)} runs"


def test_logql_queries_filter_on_fields_the_library_logs():
    """LogQL stream selectors use Loki's resource labels and label filters use our log fields."""
    for query in _queries("logql"):
        stream = _LOG_STREAM.match(query.text)
        assert stream, f"{query.where}: no stream selector"
        unknown = set(_MATCHER.findall(stream.group(1))) - _loki_stream_labels()
        assert not unknown, f"{query.where}: stream labels Loki does not index: {sorted(unknown)}"
        event_fields = {_prometheus_name(name) for name in _keys.RUN_EVENT_ATTRIBUTES}  # Loki: dots to _
        unknown = set(_LOG_LABEL_FILTER.findall(query.text)) - LOG_FIELDS - event_fields
        assert not unknown, f"{query.where}: fields otel_runtime never logs: {sorted(unknown)}"


def test_traceql_queries_use_span_attributes_we_emit():
    """TraceQL queries use our span attributes (and service.name), and compare the run type to a real one."""
    for query in _queries("traceql"):
        for scope, attribute in _TRACEQL_ATTRIBUTE.findall(query.text):
            known = _is_our_span_attribute(attribute) if scope == "span" else attribute in RESOURCE_ATTRIBUTES
            assert known, f"{query.where}: {scope}.{attribute} is never set"
        for attribute, value in _TRACEQL_STRING_COMPARISON.findall(query.text):
            if attribute == _keys.RUN_TYPE:
                assert value in RUN_TYPES, f"{query.where}: run type {value!r} does not exist"


def test_cross_link_tag_mappings_use_emitted_names():
    """Trace-to-logs and trace-to-metrics links map attributes we emit to the labels Loki and Prometheus
    give them."""
    mappings = 0
    for datasource in _datasources():
        options = datasource.get("jsonData") or {}
        links = (("tracesToLogsV2", _loki_stream_labels()), ("tracesToMetrics", _metric_labels()))
        for link, labels in links:
            for tag in (options.get(link) or {}).get("tags", []):
                mappings += 1
                assert tag["key"] in SPAN_ATTRIBUTES | RESOURCE_ATTRIBUTES, f"{link}: {tag['key']} never set"
                assert tag["value"] == _prometheus_name(tag["key"]), f"{link}: {tag['key']} -> {tag['value']}"
                assert tag["value"] in labels, f"{link}: {tag['value']} is not a label there"
    assert mappings


# --- grafana ---------------------------------------------------------------------------------------


def test_datasource_uids_are_fixed():
    """Tempo, Jaeger, Loki and Prometheus are provisioned once each, with fixed uids."""
    uids = [datasource["uid"] for datasource in _datasources()]
    assert sorted(uids) == ["jaeger", "loki", "prometheus", "tempo"]
    assert all(datasource["type"] == datasource["uid"] for datasource in _datasources())


def test_every_datasource_reference_is_provisioned():
    """Every panel, target, variable and cross-link refers to a provisioned data source, by uid."""
    provisioned = {datasource["uid"] for datasource in _datasources()}
    trees: list[tuple[str, Any]] = [*_dashboards().items(), ("datasources.yaml", _datasources())]
    for name, tree in trees:
        for key, value in _walk(tree):
            if key == "datasource":
                assert isinstance(value, dict), f"{name}: data source referred to by name: {value!r}"
                assert value.get("uid") in provisioned, f"{name}: unknown data source {value!r}"
            elif key == "datasourceUid":
                assert value in provisioned, f"{name}: unknown data source uid {value!r}"
    for name, dashboard in _dashboards().items():
        for panel in _panels(dashboard["panels"]):
            if panel["type"] != "row":
                assert "datasource" in panel, f"{name}: panel {panel['title']!r} has no data source"


def test_loki_derived_fields_match_structured_metadata_and_link_to_tempo():
    """Log lines link to Tempo from trace_id (the trace) and flow_run_id (a TraceQL search for the run),
    both matched by field name because OTLP log attributes are structured metadata, not line text."""
    (loki,) = (datasource for datasource in _datasources() if datasource["type"] == "loki")
    fields = {field["matcherRegex"]: field for field in loki["jsonData"]["derivedFields"]}
    assert {_keys.LOG_TRACE_ID, _keys.LOG_FLOW_RUN_ID} <= set(fields)
    for name, field in fields.items():
        assert field["matcherType"] == "label", f"{name} is matched with a regex over the log line"
        assert name in LOG_FIELDS, f"{name} is not a field otel_runtime logs"
        assert field["datasourceUid"] == "tempo"
    assert _unescape(fields[_keys.LOG_TRACE_ID]["url"]) == "${__value.raw}"
    run_search = rf'\{{\s*span\.{re.escape(_keys.FLOW_RUN_ID)}\s*=\s*"\$\{{__value\.raw\}}"\s*\}}'
    assert re.fullmatch(run_search, _unescape(fields[_keys.LOG_FLOW_RUN_ID]["url"]))


def test_traces_link_to_logs_by_trace_id():
    """Tempo and Jaeger open a trace's logs in Loki, filtered by the trace id."""
    for uid in ("tempo", "jaeger"):
        (datasource,) = (ds for ds in _datasources() if ds["uid"] == uid)
        link = datasource["jsonData"]["tracesToLogsV2"]
        assert link["datasourceUid"] == "loki"
        if link.get("customQuery"):
            trace_filter = rf'\|\s*{_keys.LOG_TRACE_ID}\s*=\s*"\$\{{__(trace|span)\.traceId\}}"'
            assert re.search(trace_filter, _unescape(link["query"])), f"{uid}: logs not filtered by trace id"
        else:
            assert link.get("filterByTraceID") is True, f"{uid}: logs are not filtered by trace id"


def test_exemplars_link_to_tempo():
    """Prometheus exemplars (the trace_id label the exporter attaches) open the trace in Tempo."""
    (prometheus,) = (datasource for datasource in _datasources() if datasource["type"] == "prometheus")
    destinations = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert {(d["name"], d["datasourceUid"]) for d in destinations} == {(_keys.LOG_TRACE_ID, "tempo")}


def test_dashboard_variables_used_in_queries_are_defined():
    """Every $variable a dashboard query uses is a variable of that dashboard or a Grafana built-in."""
    for name, dashboard in _dashboards().items():
        defined = {variable["name"] for variable in dashboard["templating"]["list"]}
        for query in _queries_of_dashboard(name, dashboard):
            used = {v for v in _VARIABLE.findall(query.text) if not GRAFANA_BUILTIN_VARIABLE.fullmatch(v)}
            assert used <= defined, f"{query.where}: undefined variables {sorted(used - defined)}"


def test_dashboards_are_grafana_json():
    """Each dashboard has a unique uid, a recent schema version and panels laid out on the 24-column grid."""
    uids = [dashboard.get("uid") for dashboard in _dashboards().values()]
    assert all(uids), "a dashboard has no uid"
    assert len(set(uids)) == len(uids), "dashboard uids repeat"
    for name, dashboard in _dashboards().items():
        assert dashboard["title"], name
        assert dashboard["schemaVersion"] >= 39, f"{name}: schemaVersion {dashboard['schemaVersion']}"
        panels = list(_panels(dashboard["panels"]))
        assert panels, f"{name}: no panels"
        ids = [panel["id"] for panel in panels]
        assert len(set(ids)) == len(ids), f"{name}: panel ids repeat"
        for panel in panels:
            grid = panel["gridPos"]
            assert panel["type"], f"{name}: panel without a type"
            assert grid["x"] >= 0, f"{name}: {panel['title']}"
            assert grid["x"] + grid["w"] <= 24, f"{name}: {panel['title']} is wider than the grid"
            assert grid["h"] > 0, f"{name}: {panel['title']}"


def test_dashboard_provider_loads_the_dashboard_folder():
    """The dashboard provider reads the folder compose mounts from grafana/dashboards, and
    grafana/provisioning is mounted where Grafana reads provisioning files."""
    grafana = _services()[GRAFANA_SERVICE]
    mounts = _bind_mounts(grafana)
    assert mounts.get("/etc/grafana/provisioning") == DATASOURCES_FILE.parent.parent
    (provider,) = _yaml(DASHBOARD_PROVIDERS_FILE)["providers"]
    assert provider["type"] == "file"
    assert mounts.get(provider["options"]["path"]) == DASHBOARD_DIR


def test_grafana_anonymous_access_is_viewer():
    """Anonymous Grafana users are Viewers, never Editors or Admins."""
    environment = _environment(_services()[GRAFANA_SERVICE])
    if environment.get("GF_AUTH_ANONYMOUS_ENABLED", "false").lower() == "true":
        assert environment.get("GF_AUTH_ANONYMOUS_ORG_ROLE") == "Viewer"


# --- compose ---------------------------------------------------------------------------------------


def test_images_are_pinned_to_versions():
    """Every image has an exact version tag: not latest, not a floating major or minor."""
    for name, service in _services().items():
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert tag != image, f"{name}: {image} has no tag"
        assert "/" not in tag, f"{name}: {image} has no tag"
        assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{name}: {image} is not pinned to a version"


def test_ports_are_published_on_loopback_only():
    """Every published port binds to 127.0.0.1, so the stack is not reachable from the network."""
    published = [(name, binding) for name, s in _services().items() for binding in _published(s).values()]
    assert published
    for name, binding in published:
        assert binding.startswith("127.0.0.1:"), f"{name}: port published on {binding or 'all interfaces'}"


def test_dependencies_wait_for_health_where_a_check_exists():
    """A service waits for its dependency to be healthy when the dependency has a health check, and
    otherwise for it to start (or, for a one-shot job, to finish)."""
    services = _services()
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on without conditions"
        for dependency, options in depends_on.items():
            condition = options["condition"]
            if _has_healthcheck(services[dependency]):
                assert condition == "service_healthy", f"{name} -> {dependency}: {condition}"
            else:
                waits = {"service_started", "service_completed_successfully"}
                assert condition in waits, f"{name} -> {dependency}: {condition}"


def test_services_without_health_check_are_the_known_ones():
    """Every service has a health check unless its image cannot run one (listed here with the reason)."""
    unchecked = {name for name, service in _services().items() if not _has_healthcheck(service)}
    assert unchecked == set(NO_HEALTHCHECK), f"services without a health check: {sorted(unchecked)}"


def test_compose_mounts_repository_files_read_only_and_keeps_data_in_named_volumes():
    """Bind mounts are existing repository files or folders, mounted read-only; everything else is a
    named volume, and every named volume is used."""
    named = set(_compose().get("volumes") or {})
    used = set()
    for name, service in _services().items():
        for volume in service.get("volumes", []):
            source, *rest = str(volume).split(":")
            if source.startswith("."):
                assert (ROOT / source).exists(), f"{name}: {source} does not exist"
                assert rest[-1:] == ["ro"], f"{name}: {source} is mounted writable"
            else:
                assert source in named, f"{name}: {source} is neither a repository path nor a named volume"
                used.add(source)
    assert used == named, f"named volumes nobody mounts: {sorted(named - used)}"


def test_the_readme_clicks_for_a_running_run_name_real_panels():
    """The README's "A run that is still running" names dashboards and panels that exist, and those
    panels read the active-runs metric or the run events."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("**A run that is still running.**", 1)[1].split("\n- **", 1)[0]
    named = set(re.findall(r"\*([^*]+)\*", section))
    dashboards = {dashboard["title"]: dashboard for dashboard in _dashboards().values()}
    panels = {
        panel["title"]: panel for dashboard in dashboards.values() for panel in _panels(dashboard["panels"])
    }
    assert {"Flow runs running now", "Runs running now, by flow", "Run starts and ends"} <= named
    links = {
        field["urlDisplayLabel"]
        for ds in _datasources()
        for field in (ds.get("jsonData") or {}).get("derivedFields", [])
    }
    for name in named:
        known = name in panels or name in links or any(name in title for title in dashboards)
        assert known, f"README names {name!r}: no such dashboard, panel or link"
    for title in ("Flow runs running now", "Runs running now, by flow"):
        assert _keys.PROMETHEUS_RUNS_ACTIVE in panels[title]["targets"][0]["expr"]
    assert _prometheus_name(_keys.RUN_TYPE) in panels["Run starts and ends"]["targets"][0]["expr"]
