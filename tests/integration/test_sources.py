"""Source systems: provisioning their RabbitMQ users, what the broker refuses them, and the drain's
identity check (source_system against the user_id property). Real RabbitMQ and Postgres, a vhost
of each test's own."""

from __future__ import annotations

import os
import stat

import pika.exceptions
import pytest

from latam_dagster.ingest.drain import (
    IDENTITY_MISMATCH,
    IDENTITY_MISSING,
    DrainConfig,
    drain_queue,
)
from latam_dagster.sources.provision import (
    MANAGED_TAG,
    ProvisionError,
    provision,
    secret_path,
    write_secret,
)
from tests.conftest import query
from tests.integration.ingest_helpers import make_flight_event, make_passenger_event
from tests.integration.sources_support import (
    Broker,
    SystemPublisher,
    broker_fixture,  # noqa: F401 - the `broker` fixture
    password_of,
    registry_of,
)

ACCESS_REFUSED = 403
PRECONDITION_FAILED = 406
FAST = DrainConfig(idle_seconds=0.3, max_seconds=30, lock_timeout=10)


def _provision(b: Broker, registry, secrets_dir, **kw):
    return provision(b.api, registry, b.vhost, b.topo.exchange, secrets_dir, **kw)


def _drain(b: Broker, warehouse_url: str, family: str, enforce: bool) -> None:
    config = DrainConfig(**{**FAST.__dict__, "enforce_identity": enforce})
    drain_queue(b.amqp_url, warehouse_url, b.topo, family, config)


def test_provision_creates_least_privilege_users_idempotently(broker: Broker, tmp_path):
    b = broker
    reg = registry_of(
        b.prefix, [("ops", ["flight_status"]), ("dcs", ["passenger_event", "flight_status"])]
    )
    secrets = tmp_path / "secrets"

    dry = _provision(b, reg, secrets, dry_run=True)
    assert sorted(dry.created) == sorted(reg.names)
    assert not secrets.exists(), "a dry run writes no password file"
    assert all(b.api.call("GET", f"/api/users/{n}") is None for n in reg.names)

    plan = _provision(b, reg, secrets)
    assert sorted(plan.created) == sorted(reg.names)
    for name in reg.names:
        path = secret_path(secrets, name)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        user = b.api.call("GET", f"/api/users/{name}")
        assert MANAGED_TAG in user["tags"]
        perm = b.api.call("GET", f"/api/permissions/{b.vhost}/{name}")
        assert (perm["configure"], perm["write"], perm["read"]) == ("^$", r"^latam\.events$", "^$")
    topic = b.api.call("GET", f"/api/topic-permissions/{b.vhost}/{b.prefix}dcs")
    assert topic[0]["write"] == rf"^(?:passenger\.{b.prefix}dcs|flight\.{b.prefix}dcs)$"

    again = _provision(b, reg, secrets)
    assert sorted(again.unchanged) == sorted(reg.names) and not again.created + again.updated

    # a password file replaced by the operator is taken over on the next run
    path = secret_path(secrets, f"{b.prefix}ops")
    path.unlink()
    write_secret(path, "a-new-password-from-the-vault")
    assert _provision(b, reg, secrets).updated == [f"{b.prefix}ops"]
    SystemPublisher(b, f"{b.prefix}ops", "a-new-password-from-the-vault").close()


def test_provision_prunes_only_when_asked(broker: Broker, tmp_path):
    b = broker
    both = registry_of(b.prefix, [("a", ["flight_status"]), ("b", ["position_report"])])
    _provision(b, both, tmp_path)
    only_a = registry_of(b.prefix, [("a", ["flight_status"])])
    kept = _provision(b, only_a, tmp_path)
    assert kept.stale == [f"{b.prefix}b"] and not kept.pruned
    assert b.api.call("GET", f"/api/users/{b.prefix}b") is not None
    dry = _provision(b, only_a, tmp_path, prune=True, dry_run=True)
    assert dry.pruned == [f"{b.prefix}b"]
    assert b.api.call("GET", f"/api/users/{b.prefix}b") is not None
    pruned = _provision(b, only_a, tmp_path, prune=True)
    assert pruned.pruned == [f"{b.prefix}b"]
    assert b.api.call("GET", f"/api/users/{b.prefix}b") is None
    assert b.api.call("GET", f"/api/users/{b.prefix}a") is not None
    assert b.api.call("GET", "/api/users/guest") is not None


def test_provision_refuses_bad_secret_files_and_foreign_users(broker: Broker, tmp_path):
    b = broker
    reg = registry_of(b.prefix, [("x", ["flight_status"])])
    path = secret_path(tmp_path, f"{b.prefix}x")
    path.write_text("readable-by-all\n")
    os.chmod(path, 0o644)
    with pytest.raises(ProvisionError, match=r"open to other users \(mode 0644\); chmod 600"):
        _provision(b, reg, tmp_path)
    os.chmod(path, 0o600)
    path.write_text("\n")
    with pytest.raises(ProvisionError, match="password file is empty"):
        _provision(b, reg, tmp_path)
    path.unlink()
    # a user of the same name that this command did not make is never taken over
    b.api.call("PUT", f"/api/users/{b.prefix}x", {"password": "p", "tags": ""})
    with pytest.raises(ProvisionError, match="was not made by this command"):
        _provision(b, reg, tmp_path)
    with pytest.raises(ProvisionError, match="does not exist on the broker"):
        provision(b.api, reg, "no-such-vhost-xyz", b.topo.exchange, tmp_path)


@pytest.fixture
def two_systems(broker: Broker, tmp_path):
    """Two provisioned systems (`ops` sends flight status, `res` bookings) and their publishers."""
    reg = registry_of(broker.prefix, [("ops", ["flight_status"]), ("res", ["passenger_event"])])
    _provision(broker, reg, tmp_path)
    pubs = {n: SystemPublisher(broker, n, password_of(tmp_path, n)) for n in reg.names}
    yield broker, pubs
    for p in pubs.values():
        p.close()


def _rows(url: str, sql: str) -> list[tuple]:
    return query(url, sql)


def test_identity_checked_by_broker_and_drain(two_systems, warehouse_url):
    b, pubs = two_systems
    ops, res = (f"{b.prefix}ops", f"{b.prefix}res")
    own = make_flight_event(source_system=ops)
    claims_other = make_flight_event(source_system=res)  # ops pretending to be res
    no_user_id = make_flight_event(source_system=ops)
    pubs[ops].publish(own, f"flight.{ops}")
    pubs[ops].publish(claims_other, f"flight.{ops}")
    pubs[ops].publish(no_user_id, f"flight.{ops}", user_id=None)
    booking = make_passenger_event(source_system=res)
    pubs[res].publish(booking, f"passenger.{res}")

    _drain(b, warehouse_url, "flights", enforce=True)
    _drain(b, warehouse_url, "passengers", enforce=True)

    landed = {r[0] for r in _rows(warehouse_url, "SELECT message_id::text FROM raw.flight_events")}
    assert landed == {own["message_id"]}
    assert _rows(warehouse_url, "SELECT count(*) FROM raw.passenger_events") == [(1,)]
    reasons = dict(_rows(warehouse_url, "SELECT message_id, reason FROM raw.quarantine ORDER BY 1"))
    assert reasons == {
        claims_other["message_id"]: IDENTITY_MISMATCH,
        no_user_id["message_id"]: IDENTITY_MISSING,
    }
    # the reasons name the rule and the path, never a value (no system name, no body text)
    for reason in reasons.values():
        assert ops not in reason and res not in reason
    classes = _rows(warehouse_url, "SELECT DISTINCT error_class, routing_key FROM raw.quarantine")
    assert classes == [("SourceIdentity", f"flight.{ops}")]


def test_without_enforcement_a_missing_user_id_lands_but_a_wrong_one_does_not(
    two_systems, warehouse_url
):
    b, pubs = two_systems
    ops, res = (f"{b.prefix}ops", f"{b.prefix}res")
    plain = make_flight_event(source_system=ops)
    claims_other = make_flight_event(source_system=res)
    pubs[ops].publish(plain, f"flight.{ops}", user_id=None)
    pubs[ops].publish(claims_other, f"flight.{ops}")
    _drain(b, warehouse_url, "flights", enforce=False)
    assert _rows(warehouse_url, "SELECT message_id::text FROM raw.flight_events") == [
        (plain["message_id"],)
    ]
    assert _rows(warehouse_url, "SELECT reason FROM raw.quarantine") == [(IDENTITY_MISMATCH,)]


def test_broker_refuses_a_forged_user_id(two_systems):
    b, pubs = two_systems
    ops, res = (f"{b.prefix}ops", f"{b.prefix}res")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        pubs[ops].publish(make_flight_event(source_system=res), f"flight.{ops}", user_id=res)
    assert refused.value.reply_code == PRECONDITION_FAILED
    assert "user_id" in refused.value.reply_text


@pytest.mark.parametrize(
    "key",
    ["flight.{res}", "passenger.{ops}", "unknown.{ops}", "flight.{ops}.extra", "flight"],
)
def test_broker_refuses_routing_keys_outside_the_systems_permissions(two_systems, key):
    b, pubs = two_systems
    ops, res = (f"{b.prefix}ops", f"{b.prefix}res")
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        pubs[ops].publish(make_flight_event(source_system=ops), key.format(ops=ops, res=res))
    assert refused.value.reply_code == ACCESS_REFUSED


def test_a_source_user_can_neither_read_nor_declare(two_systems):
    b, pubs = two_systems
    ops = f"{b.prefix}ops"
    ch = pubs[ops].connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        ch.basic_get(b.topo.queue("flights"))
    assert refused.value.reply_code == ACCESS_REFUSED
    ch = pubs[ops].connection.channel()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
        ch.queue_declare(f"{ops}.mine")
    assert refused.value.reply_code == ACCESS_REFUSED


def test_cli_provision_dry_run_then_real_never_prints_passwords(broker: Broker, tmp_path):
    import subprocess

    from tests.conftest import LATAM

    b = broker
    registry = tmp_path / "sources.yaml"
    registry.write_text(
        f"version: 1\nsystems:\n  - {{name: {b.prefix}ops, description: d, owner: o, "
        "event_types: [flight_status]}\n"
    )
    env = {
        **os.environ,
        "LATAM_AMQP_URL": b.amqp_url,
        "LATAM_SOURCES_FILE": str(registry),
        "LATAM_SOURCES_SECRETS_DIR": str(tmp_path / "secrets"),
        "LATAM_SOURCES_MANAGEMENT_URL": "http://guest:guest@127.0.0.1:15672",
    }

    def latam(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([LATAM, "sources", *args], capture_output=True, text=True, env=env)

    dry = latam("provision", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert f"would create {b.prefix}ops" in dry.stdout and "dry run" in dry.stdout
    real = latam("provision")
    assert real.returncode == 0, real.stderr
    password = password_of(tmp_path / "secrets", f"{b.prefix}ops")
    assert password not in real.stdout + real.stderr
    assert "1 unchanged" in latam("provision").stdout
    shown = latam("password", f"{b.prefix}ops")
    assert shown.stdout.strip() == password
    assert latam("password", "not_registered").returncode == 2
    env["LATAM_SOURCES_MANAGEMENT_URL"] = "http://guest:wrong@127.0.0.1:15672"
    refused = latam("provision")
    assert refused.returncode == 2 and "401" in refused.stderr and "wrong" not in refused.stderr
