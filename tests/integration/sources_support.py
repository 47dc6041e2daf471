"""Fixtures of the source-identity tests: a vhost of the test's own with a declared topology, a
management API client, registries of uniquely named systems, and a publisher that connects as a
system's own user."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import orjson
import pika
import pytest

from latam_dagster.ingest.topology import Topology, declare_topology, open_connection
from latam_dagster.sources.provision import MANAGED_TAG, ManagementAPI, read_secret, secret_path
from latam_dagster.sources.registry import Registry, SourceSystem
from tests.conftest import AMQP_BASE_URL

MANAGEMENT_URL = "http://guest:guest@127.0.0.1:15672"


def rabbitmqctl(*args: str) -> None:
    exe = shutil.which("rabbitmqctl")
    if not exe:
        pytest.skip("rabbitmqctl is not installed")
    proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@dataclass
class Broker:
    """A vhost of this test alone, its guest URL, its topology, and the management API."""

    vhost: str
    amqp_url: str
    topo: Topology
    api: ManagementAPI
    prefix: str  # of every system (and so user) name this test makes

    def user_url(self, name: str, password: str) -> str:
        parts = urlsplit(self.amqp_url)
        netloc = f"{quote(name, safe='')}:{quote(password, safe='')}@{parts.hostname}"
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cleanup_users(self) -> None:
        for user in self.api.call("GET", "/api/users") or []:  # type: ignore[union-attr]
            if user["name"].startswith(self.prefix):
                self.api.call("DELETE", f"/api/users/{ManagementAPI.q(user['name'])}")


@pytest.fixture(name="broker")
def broker_fixture() -> Iterator[Broker]:
    api = ManagementAPI(MANAGEMENT_URL)
    try:
        api.call("GET", "/api/overview")
    except Exception as exc:  # noqa: BLE001 - turned into a skip with the reason
        pytest.skip(f"RabbitMQ management API not available: {exc}")
    tag = uuid.uuid4().hex[:8]
    vhost = f"latam-src-{tag}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    parts = urlsplit(AMQP_BASE_URL)
    url = urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))
    topo = Topology(prefix="latam")
    declare_topology(url, topo)
    b = Broker(vhost, url, topo, api, prefix=f"s{tag}_")
    try:
        yield b
    finally:
        b.cleanup_users()
        rabbitmqctl("delete_vhost", vhost)


def registry_of(prefix: str, systems: list[tuple[str, list[str]]]) -> Registry:
    """A registry of systems named `prefix + name`, each with its event types."""
    return Registry(
        version=1,
        systems=tuple(
            SourceSystem(
                name=prefix + name, description="test", owner="tests", event_types=tuple(t)
            )
            for name, t in systems
        ),
    )


def password_of(secrets_dir: Path, name: str) -> str:
    password = read_secret(secret_path(secrets_dir, name))
    assert password, name
    return password


class SystemPublisher:
    """Publishes as one source system's user, with publisher confirms and `user_id` set."""

    def __init__(self, broker: Broker, name: str, password: str) -> None:
        self.broker, self.name = broker, name
        self.connection = open_connection(broker.user_url(name, password))
        self.channel = self.connection.channel()
        self.channel.confirm_delivery()

    def publish(
        self, event_or_body: dict | bytes, routing_key: str, user_id: str | None = ""
    ) -> None:
        """Publish; `user_id` "" means the system's own name, None means no user_id at all."""
        body = event_or_body if isinstance(event_or_body, bytes) else orjson.dumps(event_or_body)
        props = pika.BasicProperties(
            delivery_mode=2,
            content_type="application/json",
            user_id=self.name if user_id == "" else user_id,
        )
        self.channel.basic_publish(self.broker.topo.exchange, routing_key, body, props)

    def close(self) -> None:
        if self.connection.is_open:
            self.connection.close()


__all__ = [
    "MANAGED_TAG",
    "Broker",
    "SystemPublisher",
    "broker_fixture",
    "password_of",
    "registry_of",
]
