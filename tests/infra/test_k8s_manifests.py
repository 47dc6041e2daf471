"""The Kubernetes manifests of infra/k8s, rendered offline with `kubectl kustomize` (no cluster):
the properties the platform's security and availability depend on hold in every overlay, and
the Dagster chart's values agree with the platform's own Dagster instance.

- Every container: non-root, read-only root filesystem, no privilege escalation, all
  capabilities dropped, seccomp RuntimeDefault, requests and limits.
- The API: startup/liveness on /healthz, readiness on /readyz; its database URL names the
  CloudNativePG read-only service; every platform Deployment has a PDB and an HPA, the API's
  HPA scales on CPU and on the request rate.
- NetworkPolicy: default deny in and out; the API reachable from the ingress namespace only and
  talking to Postgres, Redis and DNS only.
- CloudNativePG: 3 instances, backups to GCS with Workload Identity and a retention, a nightly
  ScheduledBackup; RabbitMQ: 3 replicas, TLS only, quorum queues by default, Prometheus plugin.
- No Secret object anywhere, no password in a URL.
- infra/k8s/dagster/values.yaml: chart version = the dagster package's, K8sRunLauncher with run
  resources, run monitoring, queue limits and tick retention equal to infra/dagster/dagster.yaml's,
  external Postgres, read-only webserver, the user code from the platform image. The chart's
  values schema is not available offline: the keys it expects are checked here instead.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "infra" / "k8s"
OVERLAYS = ("staging", "production")
# Deployments that need no disruption budget or autoscaler: Redis holds only the API's
# rate-limit counters (one replica; while it is down each API worker counts on its own)
SINGLETONS = {"latam-redis"}
WORKLOAD_KINDS = {"Deployment", "Job", "StatefulSet", "DaemonSet"}


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render the overlays (`kubectl kustomize`)"
    out = subprocess.run(
        [kubectl, "kustomize", str(K8S / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def objects(overlay: str, kind: str) -> list[dict[str, Any]]:
    return [doc for doc in rendered(overlay) if doc["kind"] == kind]


def one(overlay: str, kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in objects(overlay, kind) if doc["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name} in {overlay}: {len(found)}"
    return found[0]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return workload["spec"]["template"]["spec"]


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value") for e in container.get("env", [])}


@pytest.fixture(params=OVERLAYS)
def overlay(request: pytest.FixtureRequest) -> str:
    return request.param


def test_overlays_render_in_namespace_latam(overlay: str) -> None:
    docs = rendered(overlay)
    assert docs
    for doc in docs:
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "latam", doc["metadata"]["name"]


def test_every_container_is_locked_down(overlay: str) -> None:
    workloads = [d for d in rendered(overlay) if d["kind"] in WORKLOAD_KINDS]
    assert {w["metadata"]["name"] for w in workloads} >= {
        "latam-api",
        "latam-exporter",
        "latam-ui-proxy",
        "latam-migrate",
    }
    for workload in workloads:
        spec = pod_spec(workload)
        name = workload["metadata"]["name"]
        pod_sc = spec.get("securityContext", {})
        assert pod_sc.get("runAsNonRoot") is True, name
        assert pod_sc.get("runAsUser", 0) >= 10000, name
        assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", name
        assert spec.get("automountServiceAccountToken") is False, name
        assert not spec.get("hostNetwork") and not spec.get("hostPID"), name
        for container in spec["containers"] + spec.get("initContainers", []):
            where = f"{name}/{container['name']}"
            sc = container.get("securityContext", {})
            assert sc.get("readOnlyRootFilesystem") is True, where
            assert sc.get("runAsNonRoot") is True, where
            assert sc.get("allowPrivilegeEscalation") is False, where
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not sc.get("capabilities", {}).get("add"), where
            assert not sc.get("privileged"), where
            resources = container.get("resources", {})
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(bound, {})), f"{where} {bound}"


def test_api_probes(overlay: str) -> None:
    (container,) = pod_spec(one(overlay, "Deployment", "latam-api"))["containers"]
    assert container["args"] == ["api"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080, "metrics": 9809}


def test_every_deployment_has_probes(overlay: str) -> None:
    for deployment in objects(overlay, "Deployment"):
        for container in pod_spec(deployment)["containers"]:
            assert "livenessProbe" in container and "readinessProbe" in container, deployment[
                "metadata"
            ]["name"]


def test_pdb_and_hpa_per_deployment(overlay: str) -> None:
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in objects(overlay, "HorizontalPodAutoscaler")
    }
    pdbs = objects(overlay, "PodDisruptionBudget")
    for deployment in objects(overlay, "Deployment"):
        name = deployment["metadata"]["name"]
        if name in SINGLETONS:
            continue
        labels = pod_spec_labels(deployment)
        assert name in hpas, f"no HPA for {name}"
        assert hpas[name]["spec"]["minReplicas"] >= 2, name
        covering = [
            p for p in pdbs if p["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert covering, f"no PodDisruptionBudget selects {name}"
    production_min = one("production", "HorizontalPodAutoscaler", "latam-api")["spec"]
    assert production_min["minReplicas"] >= 3


def pod_spec_labels(workload: dict[str, Any]) -> dict[str, str]:
    return workload["spec"]["template"]["metadata"]["labels"]


def test_api_hpa_scales_on_cpu_and_request_rate(overlay: str) -> None:
    metrics = one(overlay, "HorizontalPodAutoscaler", "latam-api")["spec"]["metrics"]
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    custom = [m for m in metrics if m["type"] in ("Pods", "External", "Object")]
    assert custom
    name = custom[0][custom[0]["type"].lower()]["metric"]["name"]
    assert name == "latam_api_requests_per_second"
    # the adapter's rule that serves it is documented next to the HPA, from the API's counter
    assert "latam_api_requests_total" in (K8S / "base" / "api.yaml").read_text()


def test_network_policies(overlay: str) -> None:
    policies = {p["metadata"]["name"]: p["spec"] for p in objects(overlay, "NetworkPolicy")}
    deny = policies["default-deny-all"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    # every pod of the namespace is selected by a policy of its own
    selected = [p["podSelector"].get("matchLabels", {}) for p in policies.values()]
    for workload in (d for d in rendered(overlay) if d["kind"] in WORKLOAD_KINDS):
        labels = pod_spec_labels(workload)
        assert any(s and s.items() <= labels.items() for s in selected), workload["metadata"]

    api = policies["latam-api"]
    assert set(api["policyTypes"]) == {"Ingress", "Egress"}
    sources = [peer for rule in api["ingress"] for peer in rule["from"]]
    assert all("podSelector" not in s and "ipBlock" not in s for s in sources)
    namespaces = {
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for s in sources
    }
    assert namespaces == {"ingress-nginx", "monitoring"}
    app_port = [r for r in api["ingress"] if {"protocol": "TCP", "port": 8080} in r["ports"]]
    assert [
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for r in app_port
        for s in r["from"]
    ] == ["ingress-nginx"]
    targets = set()
    for rule in api["egress"]:
        assert rule.get("to"), "an egress rule of the API without a destination"
        for peer in rule["to"]:
            assert "ipBlock" not in peer
            targets.add(tuple(sorted(peer["podSelector"]["matchLabels"].items())))
    assert targets == {
        (("cnpg.io/cluster", "latam-pg"),),
        (("app.kubernetes.io/name", "latam-redis"),),
    }
    dns = policies["allow-dns"]
    assert {p["port"] for r in dns["egress"] for p in r["ports"]} == {53}


def test_api_reads_from_the_cnpg_read_only_service(overlay: str) -> None:
    (container,) = pod_spec(one(overlay, "Deployment", "latam-api"))["containers"]
    env = env_of(container)
    url = env["LATAM_API_DATABASE_URL"]
    assert url.startswith("postgresql://latam_api_reader@latam-pg-ro.latam.svc:5432/latam?")
    assert "sslmode=verify-full" in url and "sslcert=" in url
    assert env["LATAM_WAREHOUSE_URL"] == url
    assert container["envFrom"] == [{"configMapRef": {"name": "latam-platform-env"}}]
    assert one(overlay, "ConfigMap", "latam-platform-env")["data"]["LATAM_ENV"] == "production"
    cluster = one(overlay, "Cluster", "latam-pg")
    rules = cluster["spec"]["postgresql"]["pg_hba"]
    assert "hostssl latam latam_api_reader all cert" in rules


def test_cnpg_cluster(overlay: str) -> None:
    spec = one(overlay, "Cluster", "latam-pg")["spec"]
    assert spec["instances"] == 3
    assert spec["enableSuperuserAccess"] is False
    assert spec["affinity"]["podAntiAffinityType"] == "required"
    backup = spec["backup"]
    assert re.fullmatch(r"\d+[dwm]", backup["retentionPolicy"])
    store = backup["barmanObjectStore"]
    assert store["destinationPath"] == f"gs://latam-data-{overlay}-backups/cnpg"
    assert store["googleCredentials"] == {"gkeEnvironment": True}
    account = spec["serviceAccountTemplate"]["metadata"]["annotations"][
        "iam.gke.io/gcp-service-account"
    ]
    assert account == f"latam-{overlay}-platform@latam-data-{overlay}.iam.gserviceaccount.com"
    (scheduled,) = objects(overlay, "ScheduledBackup")
    assert scheduled["spec"]["cluster"]["name"] == "latam-pg"
    assert scheduled["spec"]["method"] == "barmanObjectStore"
    (database,) = objects(overlay, "Database")
    assert database["spec"] == {
        "name": "latam_dagster",
        "owner": "dagster",
        "cluster": {"name": "latam-pg"},
    }


def test_rabbitmq_cluster(overlay: str) -> None:
    spec = one(overlay, "RabbitmqCluster", "latam-rabbitmq")["spec"]
    assert spec["replicas"] == 3
    assert spec["tls"]["disableNonTLSListeners"] is True
    assert spec["tls"]["secretName"] and spec["tls"]["caSecretName"]
    assert "rabbitmq_prometheus" in spec["rabbitmq"]["additionalPlugins"]
    config = spec["rabbitmq"]["additionalConfig"]
    assert re.search(r"^default_queue_type = quorum$", config, re.M)


def test_migrate_job_runs_first(overlay: str) -> None:
    job = one(overlay, "Job", "latam-migrate")
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "migrate"
    (container,) = pod_spec(job)["containers"]
    assert container["args"] == ["migrate"]
    assert pod_spec(job)["restartPolicy"] == "Never"
    assert env_of(container)["LATAM_WAREHOUSE_URL_FILE"].startswith("/run/secrets/")


def test_platform_image_and_commands(overlay: str) -> None:
    commands = {}
    for workload in (d for d in rendered(overlay) if d["kind"] in WORKLOAD_KINDS):
        for container in pod_spec(workload)["containers"]:
            if "latam-platform" in container["image"]:
                commands[workload["metadata"]["name"]] = container["args"]
                assert container["image"].startswith("ghcr.io/latam-data/latam-platform:")
    assert commands == {
        "latam-api": ["api"],
        "latam-exporter": ["exporter"],
        "latam-ui-proxy": ["ui-proxy"],
        "latam-migrate": ["migrate"],
    }


def test_no_secret_values_in_the_repository() -> None:
    password_in_url = re.compile(r"\b[a-z][a-z0-9+]*://[^/\s:@]+:[^/\s@]+@", re.I)
    for path in sorted(K8S.rglob("*")):
        if not path.is_file() or path.suffix not in (".yaml", ".yml"):
            continue
        text = path.read_text(encoding="utf-8")
        assert not password_in_url.search(text), f"a URL with a password in {path}"
        for doc in yaml.safe_load_all(text):
            if isinstance(doc, dict) and doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), path
    for overlay in OVERLAYS:
        assert not objects(overlay, "Secret"), f"a Secret object in {overlay}"
        for doc in rendered(overlay):
            if doc["kind"] == "ConfigMap":
                for key in doc.get("data", {}):
                    assert not re.search(r"PASSWORD|SECRET|TOKEN|KEY$", key), key


# --- Dagster's Helm chart values ---------------------------------------------------------------

VALUES = K8S / "dagster" / "values.yaml"


@cache
def values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text(encoding="utf-8"))


def locked_dagster_version() -> str:
    match = re.search(r"^dagster==(\S+)$", (REPO / "requirements.lock").read_text(), re.M)
    assert match
    return match.group(1)


def test_values_pin_the_chart_to_the_dagster_version() -> None:
    version = locked_dagster_version()
    header = VALUES.read_text(encoding="utf-8").split("\n\n", 1)[0]
    assert f"chart version {version}" in header
    assert f"--version {version}" in VALUES.read_text(encoding="utf-8")


def test_values_queue_limits_equal_the_instance() -> None:
    instance = yaml.safe_load((REPO / "infra" / "dagster" / "dagster.yaml").read_text())
    runs = instance["concurrency"]["runs"]
    coordinator = values()["dagsterDaemon"]["runCoordinator"]
    assert coordinator["enabled"] is True and coordinator["type"] == "QueuedRunCoordinator"
    queued = coordinator["config"]["queuedRunCoordinator"]
    assert queued["maxConcurrentRuns"] == runs["max_concurrent_runs"]
    assert queued["tagConcurrencyLimits"] == runs["tag_concurrency_limits"]
    queue = instance["run_queue"]
    assert queued["dequeueIntervalSeconds"] == queue["dequeue_interval_seconds"]
    assert queued["dequeueUseThreads"] == queue["dequeue_use_threads"]
    assert queued["dequeueNumWorkers"] == queue["dequeue_num_workers"]


def test_values_tick_retention_equals_the_instance() -> None:
    instance = yaml.safe_load((REPO / "infra" / "dagster" / "dagster.yaml").read_text())
    retention = values()["retention"]
    assert retention["enabled"] is True
    for kind in ("sensor", "schedule"):
        days = retention[kind]["purgeAfterDays"]
        # the chart's values schema wants every tick status
        assert set(days) == {"skipped", "success", "failure", "started"}
        assert days == instance["retention"][kind]["purge_after_days"]


def test_values_run_launcher_and_monitoring() -> None:
    launcher = values()["runLauncher"]
    assert launcher["type"] == "K8sRunLauncher"
    run = launcher["config"]["k8sRunLauncher"]["runK8sConfig"]
    resources = run["containerConfig"]["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(
        resources["limits"]
    )
    assert run["podSpecConfig"]["securityContext"]["runAsNonRoot"] is True
    monitoring = values()["dagsterDaemon"]["runMonitoring"]
    assert monitoring["enabled"] is True and monitoring["startTimeoutSeconds"] > 0


def test_values_external_postgres() -> None:
    v = values()
    assert v["postgresql"]["enabled"] is False
    assert v["postgresql"]["postgresqlHost"] == "latam-pg-rw.latam.svc"
    assert v["postgresql"]["postgresqlDatabase"] == "latam_dagster"
    assert v["postgresql"]["postgresqlParams"]["sslmode"] == "verify-full"
    assert "postgresqlPassword" not in v["postgresql"]
    assert v["generatePostgresqlPasswordSecret"] is False
    assert v["global"]["postgresqlSecretName"]


def test_values_webservers_and_user_code() -> None:
    v = values()
    webserver = v["dagsterWebserver"]
    assert webserver["enableReadOnly"] is True
    assert webserver["service"]["type"] == "ClusterIP"
    assert v["ingress"]["enabled"] is False  # reached through the UI proxy only
    # the UI proxy's upstreams are the chart's Services for release `dagster`
    (proxy,) = pod_spec(one("production", "Deployment", "latam-ui-proxy"))["containers"]
    env = env_of(proxy)
    port = webserver["service"]["port"]
    assert (
        env["LATAM_UI_ANALYST_UPSTREAM"]
        == f"dagster-dagster-webserver-read-only.dagster.svc:{port}"
    )
    assert env["LATAM_UI_OPERATOR_UPSTREAM"] == f"dagster-dagster-webserver.dagster.svc:{port}"

    user = v["dagster-user-deployments"]
    assert user["enabled"] is True
    (deployment,) = user["deployments"]
    assert deployment["image"]["repository"] == "ghcr.io/latam-data/latam-platform"
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "latam_dagster.definitions"]
    for component in (webserver, v["dagsterDaemon"], deployment):
        assert component["podSecurityContext"]["runAsNonRoot"] is True
        assert component["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert {"requests", "limits"} <= set(component["resources"])
    for env_name in ("staging", "production"):
        extra = yaml.safe_load((K8S / "dagster" / f"values-{env_name}.yaml").read_text())
        assert extra["computeLogManager"]["config"]["gcsComputeLogManager"]["bucket"] == (
            f"latam-data-{env_name}-dagster-compute"
        )
