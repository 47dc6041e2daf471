"""LATAM_AMQP_URL may name every node of a RabbitMQ cluster, comma-separated: a connection tries
them in order, so a client whose node died reconnects to a live one."""

from __future__ import annotations

import pytest

from latam_dagster.ingest.topology import BrokerUnavailable, open_connection
from tests.conftest import AMQP_BASE_URL
from tests.tls_support import free_port


def test_every_node_is_tried_and_named_without_its_password() -> None:
    first, second = free_port(), free_port()
    with pytest.raises(BrokerUnavailable) as refused:
        open_connection(f"amqp://u:secret1@127.0.0.1:{first}/%2F, amqp://u:secret2@[::1]:{second}/")
    message = str(refused.value)
    assert f"amqp://u:***@127.0.0.1:{first}/%2F, amqp://u:***@[::1]:{second}/" in message
    assert "secret" not in message


def test_a_comma_inside_a_password_does_not_split_the_url() -> None:
    port = free_port()
    with pytest.raises(BrokerUnavailable) as refused:
        open_connection(f"amqp://u:pa,ss@127.0.0.1:{port}/%2F")
    assert f"at amqp://u:***@127.0.0.1:{port}/%2F (" in str(refused.value)


@pytest.mark.integration
def test_a_dead_first_node_is_passed_over_for_the_next() -> None:
    dead = f"amqp://guest:guest@127.0.0.1:{free_port()}/%2F"
    conn = open_connection(f"{dead},{AMQP_BASE_URL}")
    try:
        assert conn.channel().is_open
    finally:
        conn.close()


def test_the_vhost_and_management_url_of_a_cluster_url_come_from_its_first_node() -> None:
    from latam_dagster.observability.config import management_url_from_amqp, vhost_of

    url = "amqps://mon:pw@rabbit-0.example:5671/latam, amqps://mon:pw@rabbit-1.example:5671/latam"
    assert vhost_of(url) == "latam"
    assert management_url_from_amqp(url, 15671) == "https://mon:pw@rabbit-0.example:15671"
