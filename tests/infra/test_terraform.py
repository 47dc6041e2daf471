"""The Terraform of infra/terraform, read with python-hcl2 (no provider, no network): the
properties the platform's data depends on hold in every module and environment.

- Cloud SQL: deletion protection (API and Terraform), backups with point-in-time recovery, a read
  replica, private IP only (ipv4_enabled false, no authorized networks), TLS required, CMEK;
  production REGIONAL.
- Every store is encrypted with a customer-managed key: Cloud SQL, GCS, GKE secrets and boot
  disks, Secret Manager, Memorystore.
- GKE: private nodes, Workload Identity, shielded nodes, no 0.0.0.0/0 on the control plane.
- Buckets: versioning, uniform access, public access prevention.
- No secret values: no secret versions, no passwords, no keys, no 0.0.0.0/0 anywhere.
- One root (environments/) wires the modules for every environment: an environment is its
  variables file (<env>.tfvars, over the root's defaults) and its state in its own GCS bucket
  (<env>.gcs.tfbackend); the addresses of the former per-environment roots move to the root's.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

hcl2 = pytest.importorskip("hcl2")

ROOT = Path(__file__).resolve().parents[2] / "infra" / "terraform"
MODULES = ROOT / "modules"
PLATFORM = ROOT / "environments"  # the one root: every environment's resources
ENVIRONMENTS = ("staging", "production")


def unq(value: Any) -> Any:
    """python-hcl2 keeps the quotes of string literals: drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def load(path: Path) -> dict[str, Any]:
    with path.open() as f:
        return hcl2.load(f)


def resources(module: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(type, name) -> body of every resource of a module."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for tf in sorted((MODULES / module).glob("*.tf")):
        for block in load(tf).get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    found[(unq(rtype), unq(name))] = body
    return found


def one(body: dict[str, Any], key: str) -> dict[str, Any]:
    """The single nested block `key` of a resource body."""
    blocks = body.get(key)
    assert isinstance(blocks, list) and len(blocks) == 1, f"expected one {key} block"
    return blocks[0]


def module_calls(path: Path) -> dict[str, dict[str, Any]]:
    """name -> arguments of every `module` block of a file."""
    return {
        unq(name): body for block in load(path).get("module", []) for name, body in block.items()
    }


def platform_variables() -> dict[str, dict[str, Any]]:
    """name -> body of every variable the root declares."""
    return {
        unq(name): body
        for block in load(PLATFORM / "variables.tf")["variable"]
        for name, body in block.items()
    }


def platform_defaults() -> dict[str, Any]:
    """Defaults of the root's variables (those that have one)."""
    return {
        name: unq(body["default"])
        for name, body in platform_variables().items()
        if "default" in body
    }


def assignments(path: Path) -> dict[str, Any]:
    """name -> value of a file of attributes only (a .tfvars or a .tfbackend file)."""
    # python-hcl2 keeps comments as __comments__
    return {k: v for k, v in load(path).items() if not k.startswith("__")}


def env_values(env: str) -> dict[str, Any]:
    """The root's inputs in an environment: its defaults, overridden by <env>.tfvars."""
    values = platform_defaults()
    values.update({k: unq(v) for k, v in assignments(PLATFORM / f"{env}.tfvars").items()})
    return values


def all_tf_text() -> str:
    return "\n".join(
        p.read_text() for p in sorted(ROOT.rglob("*.tf*")) if ".terraform" not in p.parts
    )


# --- Cloud SQL --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sql() -> dict[tuple[str, str], dict[str, Any]]:
    return resources("cloudsql")


@pytest.mark.parametrize("name", ["primary", "replica"])
def test_cloud_sql_has_deletion_protection_everywhere(sql, name):
    body = sql[("google_sql_database_instance", name)]
    assert body["deletion_protection"] is True
    assert one(body, "settings")["deletion_protection_enabled"] is True
    assert one(body, "lifecycle")["prevent_destroy"] is True


def test_cloud_sql_backups_and_point_in_time_recovery_are_on(sql):
    settings = one(sql[("google_sql_database_instance", "primary")], "settings")
    backup = one(settings, "backup_configuration")
    assert backup["enabled"] is True
    assert backup["point_in_time_recovery_enabled"] is True
    assert backup["transaction_log_retention_days"] >= 7
    assert one(backup, "backup_retention_settings")["retained_backups"]


@pytest.mark.parametrize("name", ["primary", "replica"])
def test_cloud_sql_is_private_and_requires_tls(sql, name):
    ip = one(one(sql[("google_sql_database_instance", name)], "settings"), "ip_configuration")
    assert ip["ipv4_enabled"] is False
    assert ip["private_network"] == "${var.network_id}"
    assert "authorized_networks" not in ip
    assert unq(ip["ssl_mode"]) in ("ENCRYPTED_ONLY", "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")


def test_cloud_sql_has_a_read_replica_of_the_primary(sql):
    replica = sql[("google_sql_database_instance", "replica")]
    assert replica["master_instance_name"] == "${google_sql_database_instance.primary.name}"
    assert one(replica, "replica_configuration")["failover_target"] is False


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environments_set_availability_and_production_is_regional(env):
    values = env_values(env)
    assert values["sql_availability_type"] in ("REGIONAL", "ZONAL")
    if env == "production":
        assert values["sql_availability_type"] == "REGIONAL"
        assert values["sql_retained_backups"] >= 30


def test_the_root_passes_the_environment_values_to_cloud_sql():
    """The environments' availability and backups reach the instance (not a value fixed on the way)."""
    cloudsql = module_calls(PLATFORM / "main.tf")["cloudsql"]
    assert cloudsql["availability_type"] == "${var.sql_availability_type}"
    assert cloudsql["retained_backups"] == "${var.sql_retained_backups}"
    assert "read_replica" not in cloudsql  # the module's default: a replica in every environment


# --- CMEK on every store -----------------------------------------------------------------------


def test_every_store_is_encrypted_with_a_customer_managed_key():
    sql = resources("cloudsql")
    for name in ("primary", "replica"):
        assert (
            sql[("google_sql_database_instance", name)]["encryption_key_name"]
            == "${var.kms_key_id}"
        )

    bucket = resources("storage")[("google_storage_bucket", "buckets")]
    assert one(bucket, "encryption")["default_kms_key_name"] == "${var.kms_key_id}"

    gke = resources("gke")
    db_enc = one(gke[("google_container_cluster", "cluster")], "database_encryption")
    assert unq(db_enc["state"]) == "ENCRYPTED" and db_enc["key_name"] == "${var.kms_key_id}"
    pool = one(gke[("google_container_node_pool", "platform")], "node_config")
    assert pool["boot_disk_kms_key"] == "${var.kms_key_id}"

    secret = resources("secrets")[("google_secret_manager_secret", "secrets")]
    replicas = one(one(one(secret, "replication"), "user_managed"), "replicas")
    assert one(replicas, "customer_managed_encryption")["kms_key_name"] == "${var.kms_key_id}"

    redis = resources("redis")[("google_redis_instance", "cache")]
    assert redis["customer_managed_key"] == "${var.kms_key_id}"


def test_the_root_hands_each_store_its_own_key():
    modules = module_calls(PLATFORM / "main.tf")
    expected = {
        "cloudsql": "cloudsql",
        "storage": "storage",
        "gke": "gke",
        "secrets": "secrets",
        "redis": "redis",
    }
    for module, key in expected.items():
        assert modules[module]["kms_key_id"] == f'${{module.kms.key_ids["{key}"]}}', module


def test_keys_rotate_and_cannot_be_destroyed():
    key = resources("kms")[("google_kms_crypto_key", "keys")]
    assert key["rotation_period"] == "${var.rotation_period}"
    assert one(key, "lifecycle")["prevent_destroy"] is True
    variables = {
        unq(k): v for b in load(MODULES / "kms" / "variables.tf")["variable"] for k, v in b.items()
    }
    seconds = int(unq(variables["rotation_period"]["default"]).rstrip("s"))
    assert seconds <= 90 * 24 * 3600


# --- GKE, network, buckets ---------------------------------------------------------------------


def test_gke_has_private_nodes_workload_identity_and_shielded_nodes():
    gke = resources("gke")
    cluster = gke[("google_container_cluster", "cluster")]
    assert one(cluster, "private_cluster_config")["enable_private_nodes"] is True
    pool = unq(one(cluster, "workload_identity_config")["workload_pool"])
    assert pool == "${var.project_id}.svc.id.goog"
    assert cluster["enable_shielded_nodes"] is True
    assert cluster["deletion_protection"] is True
    assert (
        one(one(cluster, "master_auth"), "client_certificate_config")["issue_client_certificate"]
        is False
    )
    node = one(gke[("google_container_node_pool", "platform")], "node_config")
    assert one(node, "workload_metadata_config")["mode"] == '"GKE_METADATA"'
    shielded = one(node, "shielded_instance_config")
    assert (
        shielded["enable_secure_boot"] is True and shielded["enable_integrity_monitoring"] is True
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_no_control_plane_or_database_is_open_to_the_internet(env):
    for network in env_values(env)["master_authorized_networks"]:
        assert unq(network["cidr_block"]) != "0.0.0.0/0"
    # no value anywhere is 0.0.0.0/0 (the validation that refuses it compares with `!=`)
    for line in all_tf_text().splitlines():
        code = line.split("#", 1)[0]
        if '"0.0.0.0/0"' in code:
            assert "!=" in code, line


def test_network_has_private_subnets_and_cloud_nat():
    net = resources("network")
    assert net[("google_compute_subnetwork", "nodes")]["private_ip_google_access"] is True
    nat = net[("google_compute_router_nat", "nat")]
    assert unq(nat["source_subnetwork_ip_ranges_to_nat"]) == "LIST_OF_SUBNETWORKS"
    assert (
        unq(net[("google_compute_global_address", "private_services")]["purpose"]) == "VPC_PEERING"
    )


def test_buckets_are_versioned_uniform_and_never_public():
    bucket = resources("storage")[("google_storage_bucket", "buckets")]
    assert one(bucket, "versioning")["enabled"] is True
    assert bucket["uniform_bucket_level_access"] is True
    assert unq(bucket["public_access_prevention"]) == "enforced"
    assert bucket["force_destroy"] is False


# --- no secret values, remote state --------------------------------------------------------------


SECRET_VALUE_RESOURCES = (
    "google_secret_manager_secret_version",
    "google_sql_user",
    "google_service_account_key",
    "random_password",
    "tls_private_key",
)


def test_no_secret_values_in_the_code():
    text = all_tf_text()
    for rtype in SECRET_VALUE_RESOURCES:
        assert f'resource "{rtype}"' not in text, rtype
    for attribute in ("password", "secret_data", "private_key", "auth_string"):
        assert not re.search(rf"^\s*{attribute}\s*=", text, re.M), attribute
    # nothing that looks like a key or a credential
    assert not re.search(r"-----BEGIN|AKIA[0-9A-Z]{16}|AIza[0-9A-Za-z_-]{35}", text)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_is_a_variables_file_of_the_one_root(env):
    values = assignments(PLATFORM / f"{env}.tfvars")
    declared = platform_variables()
    assert set(values) <= set(declared), "a value for a variable the root does not declare"
    required = {name for name, body in declared.items() if "default" not in body}
    assert required <= set(values), f"{env}.tfvars misses {sorted(required - set(values))}"
    assert unq(values["environment"]) == env
    # no per-environment code: the environments differ in their values and their state only
    assert not (PLATFORM / env).exists()
    for tf in PLATFORM.glob("*.tf"):
        assert env not in tf.stem


def test_the_former_environment_roots_move_to_the_one_root():
    """Each environment's state holds the resources under `module.platform` (the call its own root
    made): every module and resource of the root has a `moved` block from that address, so a plan
    finds them in place instead of creating them again."""
    main = load(PLATFORM / "main.tf")
    moved = {(unq(b["from"]), unq(b["to"])) for b in main["moved"]}
    addresses = [f"module.{name}" for name in module_calls(PLATFORM / "main.tf")]
    addresses += [
        f"{unq(rtype)}.{unq(name)}"
        for block in main["resource"]
        for rtype, named in block.items()
        for name in named
    ]
    assert moved == {(f"${{module.platform.{a}}}", f"${{{a}}}") for a in addresses}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_keeps_its_state_in_its_own_gcs_bucket(env):
    terraform = load(PLATFORM / "backend.tf")["terraform"][0]
    assert '"gcs"' in terraform["backend"][0]  # partial: the bucket comes from <env>.gcs.tfbackend
    gcs = assignments(PLATFORM / f"{env}.gcs.tfbackend")
    assert unq(gcs["bucket"]).endswith(env)
    assert unq(gcs["prefix"])
    buckets = {unq(assignments(PLATFORM / f"{e}.gcs.tfbackend")["bucket"]) for e in ENVIRONMENTS}
    assert len(buckets) == len(ENVIRONMENTS)
