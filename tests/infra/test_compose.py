"""The compose stack (infra/compose/compose.yaml) read as data: the rules of its shape hold, its
monitoring configuration stays in step with the repository's, and secrets.sh makes every secret
file it names. No container runs here (docs/deploy.md says what runs where)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_DIR = ROOT / "infra" / "compose"
COMPOSE = COMPOSE_DIR / "compose.yaml"
PLATFORM_SERVICES = {
    "api",
    "daemon",
    "exporter",
    "migrate",
    "ui-proxy",
    "user-code",
    "webserver-analyst",
    "webserver-operator",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def long_running(services: dict) -> dict:
    return {name: s for name, s in services.items() if s.get("restart") != "no"}


def test_the_stack_has_every_service_of_the_platform(services):
    expected = PLATFORM_SERVICES | {
        "grafana",
        "loki",
        "postgres",
        "prometheus",
        "promtail",
        "rabbitmq",
        "redis",
    }
    assert set(services) == expected
    for name in PLATFORM_SERVICES:
        assert services[name]["image"].startswith("${LATAM_IMAGE:-"), name


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in long_running(services).items():
        test = service.get("healthcheck", {}).get("test")
        assert test and test[0] in ("CMD", "CMD-SHELL"), f"{name} has no healthcheck"


def test_migrate_is_a_one_shot_that_the_platform_waits_for(services):
    assert services["migrate"]["restart"] == "no"
    assert services["migrate"]["command"] == ["latam", "migrate"]
    assert "healthcheck" not in services["migrate"]
    for name in ("api", "exporter", "user-code"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        for dep, spec in service.get("depends_on", {}).items():
            condition = spec["condition"]
            assert condition in ("service_healthy", "service_completed_successfully"), name
            if condition == "service_healthy":
                assert "healthcheck" in services[dep], f"{name} waits on {dep}'s health"
            else:
                assert services[dep]["restart"] == "no", f"{dep} is not a one-shot"


def test_the_proxy_is_the_one_way_to_the_webservers(compose, services):
    on_ui = {name for name, s in services.items() if "ui" in (s.get("networks") or [])}
    assert on_ui == {"ui-proxy", "webserver-analyst", "webserver-operator"}
    assert compose["networks"]["ui"]["internal"] is True
    assert compose["networks"]["backend"]["internal"] is True
    for name, flag in (("webserver-analyst", True), ("webserver-operator", False)):
        command = services[name]["command"]
        address = services[name]["networks"]["ui"]["ipv4_address"]
        # listens on its `ui` address only: not reachable from the backend network
        assert command[command.index("-h") + 1] == address
        assert ("--read-only" in command) is flag
        assert "ports" not in services[name]
    proxy = " ".join(services["ui-proxy"]["command"])
    assert "--analyst-upstream $${LATAM_UI_NET}.12:3000" in proxy
    assert "--operator-upstream $${LATAM_UI_NET}.11:3000" in proxy
    assert services["ui-proxy"]["depends_on"] == {
        "webserver-analyst": {"condition": "service_healthy"},
        "webserver-operator": {"condition": "service_healthy"},
    }


def test_published_ports_are_bound_to_loopback(services):
    published = {name: s["ports"] for name, s in services.items() if "ports" in s}
    assert set(published) == {"api", "grafana", "ui-proxy"}
    for ports in published.values():
        for port in ports:
            assert port.startswith("127.0.0.1:"), port


def test_platform_processes_run_in_production_with_secrets_from_files(compose, services):
    declared = compose["secrets"]
    for name in PLATFORM_SERVICES:
        service = services[name]
        env = service["environment"]
        assert env["LATAM_ENV"] == "production", name
        mounted = set(service.get("secrets", []))
        for variable, value in env.items():
            assert not re.search(r"(PASSWORD|SECRET|_URL|_KEY)$", variable) or variable in (
                "LATAM_API_RATELIMIT_STORAGE_URL",
            ), f"{name}: {variable} must come from a file"
            if variable.endswith("_FILE") and str(value).startswith("/run/secrets/"):
                assert value.removeprefix("/run/secrets/") in mounted, f"{name}: {variable}"
        for secret in mounted:
            assert declared[secret]["file"] == f"./secrets/{secret}"


def test_each_process_gets_only_its_own_database_login(services):
    def url_file(service: str, variable: str) -> str | None:
        return services[service]["environment"].get(variable)

    assert url_file("migrate", "LATAM_WAREHOUSE_URL_FILE") == "/run/secrets/warehouse_url"
    owners = [n for n, s in services.items() if "warehouse_url" in s.get("secrets", [])]
    assert owners == ["migrate"], "only the one-shot migration holds the owner's login"
    assert url_file("user-code", "LATAM_PIPELINE_DATABASE_URL_FILE").endswith(
        "pipeline_database_url"
    )
    assert url_file("api", "LATAM_API_DATABASE_URL_FILE").endswith("api_database_url")
    assert url_file("exporter", "LATAM_EXPORTER_DATABASE_URL_FILE").endswith(
        "exporter_database_url"
    )


def test_rabbitmq_has_the_management_and_prometheus_plugins():
    plugins = (COMPOSE_DIR / "rabbitmq" / "enabled_plugins").read_text()
    assert "rabbitmq_management" in plugins and "rabbitmq_prometheus" in plugins
    conf = (COMPOSE_DIR / "rabbitmq" / "tls.conf").read_text()
    assert "listeners.tcp = none" in conf
    assert "load_definitions = /run/secrets/rabbitmq_definitions" in conf


def test_postgres_accepts_tls_sessions_only():
    hba = [
        line.split()
        for line in (COMPOSE_DIR / "postgres" / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ["hostnossl", "all", "all", "all", "reject"] in hba
    assert all(entry[0] in ("local", "hostssl", "hostnossl") for entry in hba)


def test_prometheus_scrapes_the_repository_jobs_with_its_rules():
    repo = yaml.safe_load((ROOT / "infra" / "prometheus" / "prometheus.yml").read_text())
    stack = yaml.safe_load((COMPOSE_DIR / "prometheus" / "prometheus.yml").read_text())

    def jobs(config: dict) -> dict[str, tuple]:
        return {
            job["job_name"]: (
                job.get("metrics_path", "/metrics"),
                [tuple(sorted(sc.get("labels", {}).items())) for sc in job["static_configs"]],
            )
            for job in config["scrape_configs"]
        }

    repo_jobs, stack_jobs = jobs(repo), jobs(stack)
    for name, spec in repo_jobs.items():
        assert stack_jobs.get(name) == spec, name
    assert [Path(f).name for f in stack["rule_files"]] == [Path(f).name for f in repo["rule_files"]]
    assert stack["global"]["external_labels"] == repo["global"]["external_labels"]


def test_promtail_parses_container_logs_as_the_repository_parses_files():
    repo = yaml.safe_load((ROOT / "infra" / "logging" / "promtail.yml").read_text())
    stack = yaml.safe_load((COMPOSE_DIR / "promtail" / "promtail.yml").read_text())
    assert (
        stack["scrape_configs"][0]["pipeline_stages"]
        == repo["scrape_configs"][0]["pipeline_stages"]
    )


def test_grafana_mounts_the_repository_provisioning(services):
    volumes = services["grafana"]["volumes"]
    assert "../grafana/provisioning/datasources:/etc/grafana/provisioning/datasources:ro" in volumes
    assert "../grafana/dashboards:/var/lib/grafana/dashboards/latam:ro" in volumes
    env = services["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_secrets_script_makes_every_secret_the_stack_names(compose, tmp_path):
    out = tmp_path / "secrets"
    env = {**os.environ, "LATAM_COMPOSE_SECRETS": str(out), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(COMPOSE_DIR / "secrets.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    for name in compose["secrets"]:
        path = out / name
        assert path.is_file() and path.stat().st_size > 0, name

    urls = {n: (out / n).read_text().strip() for n in compose["secrets"] if n.endswith("_url")}
    for name, url in urls.items():
        parts = urlsplit(url)
        assert parts.password, name
        if parts.scheme == "postgresql":
            query = parse_qs(parts.query)
            assert query["sslmode"] == ["verify-full"], name
            assert query["sslrootcert"] == ["/run/secrets/tls_ca"], name
            assert parts.hostname == "postgres"
    assert urlsplit(urls["amqp_url"]).scheme == "amqps"
    assert urlsplit(urls["rabbitmq_management_url"]).scheme == "https"
    assert urlsplit(urls["warehouse_url"]).username == "latam_owner"
    assert urlsplit(urls["pipeline_database_url"]).username == "latam_pipeline"

    definitions = json.loads((out / "rabbitmq_definitions").read_text())
    assert {u["name"] for u in definitions["users"]} == {"latam", "latam_monitor"}
    assert "guest" not in json.dumps(definitions)

    roles = (out / "ui_roles_map").read_text()
    assert '"operator" operator;' in roles and '"analyst" analyst;' in roles
    assert (out / "ui_operator_htpasswd").read_text().startswith("operator:$2")

    # the server certificates name their service and are signed by the stack's CA
    for service in ("postgres", "rabbitmq"):
        verify = subprocess.run(
            [
                "openssl",
                "verify",
                "-CAfile",
                str(out / "tls_ca"),
                "-verify_hostname",
                service,
                str(out / f"{service}_tls_cert"),
            ],
            capture_output=True,
            text=True,
        )
        assert verify.returncode == 0, verify.stdout + verify.stderr

    # a second run keeps every file as it is
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    proc = subprocess.run(
        ["bash", str(COMPOSE_DIR / "secrets.sh")], env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.skipif(
    shutil.which("podman-compose") is None
    and not (ROOT / ".venv" / "bin" / "podman-compose").exists(),
    reason="podman-compose is not installed",
)
def test_podman_compose_reads_the_file():
    binary = shutil.which("podman-compose") or str(ROOT / ".venv" / "bin" / "podman-compose")
    proc = subprocess.run(
        [binary, "--dry-run", "-f", str(COMPOSE), "config"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    rendered = yaml.safe_load(proc.stdout)
    assert rendered["services"]["webserver-operator"]["networks"]["ui"]["ipv4_address"] == (
        "172.30.53.11"
    )


NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")


@pytest.mark.skipif(NGINX is None or shutil.which("openssl") is None, reason="needs nginx, openssl")
def test_the_ui_proxy_command_renders_a_configuration_nginx_accepts(services, tmp_path):
    """The ui-proxy service's own shell command, with its paths moved under tmp_path, on the
    files secrets.sh makes: nginx accepts the configuration (`nginx -t`)."""
    secrets, run = tmp_path / "secrets", tmp_path / "run"
    env = {**os.environ, "LATAM_COMPOSE_SECRETS": str(secrets), "PYTHON": sys.executable}
    made = subprocess.run(
        ["bash", str(COMPOSE_DIR / "secrets.sh")], env=env, capture_output=True, text=True
    )
    assert made.returncode == 0, made.stderr
    script = services["ui-proxy"]["command"][2]
    script = script.replace("/run/latam-ui", str(run)).replace("/run/secrets", str(secrets))
    script = script.replace("$$", "$").replace("exec env", "env") + " -t"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "LATAM_UI_HOST": "127.0.0.1",
        "LATAM_UI_AUTH_DIR": str(run / "auth"),
        "LATAM_UI_NET": "172.30.53",
    }
    run.mkdir()
    proc = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    conf = (run / "nginx" / "nginx.conf").read_text()
    assert "server 172.30.53.12:3000;" in conf and "server 172.30.53.11:3000;" in conf
    assert (run / "auth" / "operator.htpasswd").read_text().startswith("operator:$2")
