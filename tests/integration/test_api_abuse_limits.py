"""Abuse limits of the API, against the real Redis and a warehouse of the test's own.

Every app here counts under a Redis key prefix of its own (deleted afterwards), so tests and
concurrent test runs never share a counter. Limits are per day: a test's few requests take
milliseconds, so the window's edge never falls between them. Client addresses are set on the
test client (REMOTE_ADDR); no traffic leaves the process.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis

from api_service import create_app
from api_service.auth import REFUSED_CACHE_SIZE, KeyVerifier, revoke_key
from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
from api_service.db import Database
from latam_dagster.db import connection
from tests.integration.api_fixtures import new_api_key

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
REDIS_URL = "redis://127.0.0.1:6379/0"
PLENTY = "100000/day"


@pytest.fixture
def make_app(warehouse_url: str) -> Iterator[Callable[..., object]]:
    """`make_app(prefix=None, **settings)`: an app reading the test warehouse as the API role,
    rate limits on, counting under `prefix` (a fresh one by default)."""
    apps, prefixes = [], set()

    def make(prefix: str | None = None, **settings):
        prefix = prefix or f"test-{uuid.uuid4().hex}"
        prefixes.add(prefix)
        values = {
            "ratelimit_per_key": PLENTY,
            "ratelimit_per_address": PLENTY,
            "ratelimit_failed_auth": PLENTY,
            "ratelimit_storage_url": REDIS_URL,
            **settings,
        }
        config = get_api_config(
            database_url=role_url(warehouse_url, READ_ONLY_ROLE),
            cursor_secret="test-cursor-secret",
            key_cache_seconds=0.0,
            testing=True,
            ratelimit_enabled=True,
            ratelimit_key_prefix=prefix,
            **values,
        )
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.extensions["latam_api"].db.close()
    client = redis.Redis.from_url(REDIS_URL)
    for prefix in prefixes:
        keys = list(client.scan_iter(match=f"*LIMITER/{prefix}/*", count=1000))
        if keys:
            client.delete(*keys)
    client.close()


def _get(app, url: str, key: str | None = None, addr: str = "192.0.2.1", **headers: str):
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return app.test_client().get(url, headers=headers, environ_base={"REMOTE_ADDR": addr})


def _assert_429(response, says: str) -> None:
    assert response.status_code == 429 and response.content_type == PROBLEM
    assert int(response.headers["Retry-After"]) >= 1
    body = response.get_json()
    assert body["status"] == 429 and body["title"] == "Too Many Requests"
    assert says in body["detail"], body["detail"]


def test_per_key_limit_holds_across_replicas(make_app, warehouse_url):
    prefix = f"test-{uuid.uuid4().hex}"
    # two apps on one Redis prefix: two replicas (or two gunicorn workers) of one API
    first, second = (make_app(prefix, ratelimit_per_key="3/day") for _ in range(2))
    key, other_key = new_api_key(warehouse_url), new_api_key(warehouse_url)
    url = "/api/v1/flights?limit=1"
    statuses = [_get(app, url, key).status_code for app in (first, second, first)]
    assert statuses == [200, 200, 200]
    _assert_429(_get(second, url, key, addr="192.0.2.1"), "this API key")
    # the key's limit, wherever the key comes from; other keys of that address go on
    _assert_429(_get(first, url, key, addr="198.51.100.9"), "this API key")
    assert _get(second, url, other_key).status_code == 200


def test_per_address_limit_counts_every_request_but_the_probes(make_app):
    app = make_app(ratelimit_per_address="3/day")
    for _ in range(5):
        assert _get(app, "/healthz").status_code == 200
    statuses = [_get(app, "/openapi.json").status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    _assert_429(_get(app, "/openapi.json"), "this address")
    _assert_429(_get(app, "/api/v1/flights", key="latam_junk"), "this address")
    assert _get(app, "/openapi.json", addr="192.0.2.2").status_code == 200
    # paths that name nothing count too
    unknown = [_get(app, "/nothing/here", addr="192.0.2.3").status_code for _ in range(4)]
    assert unknown[:3] == [404, 404, 404] and unknown[3] == 429


def test_forwarded_for_counts_only_behind_a_trusted_proxy(make_app):
    direct = make_app(ratelimit_per_address="2/day")
    forged = [
        _get(direct, "/openapi.json", **{"X-Forwarded-For": f"203.0.113.{i}"}).status_code
        for i in range(3)
    ]
    assert forged == [200, 200, 429]  # a made-up X-Forwarded-For does not escape the limit

    proxied = make_app(ratelimit_per_address="2/day", proxy_hops=1)
    proxy = "10.1.2.3"
    clients = [
        _get(proxied, "/openapi.json", addr=proxy, **{"X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(3)
    ]
    assert [r.status_code for r in clients] == [200, 200, 200]  # one proxy, three clients
    same = [
        _get(proxied, "/openapi.json", addr=proxy, **{"X-Forwarded-For": "203.0.113.0"})
        for _ in range(2)
    ]
    assert same[0].status_code == 200
    _assert_429(same[1], "this address")


def test_unknown_keys_per_address_are_capped(make_app, warehouse_url):
    app = make_app(ratelimit_failed_auth="3/day")
    key = new_api_key(warehouse_url)
    url = "/api/v1/flights?limit=1"
    attacker = "192.0.2.66"
    guesses = ["latam_" + secrets.token_urlsafe(32) for _ in range(3)]
    assert [_get(app, url, g, addr=attacker).status_code for g in guesses] == [401, 401, 401]
    _assert_429(_get(app, url, "latam_" + secrets.token_urlsafe(32), addr=attacker), "unknown")
    # the address is locked out for keys, the key itself is not
    _assert_429(_get(app, url, key, addr=attacker), "unknown or revoked API keys")
    assert _get(app, url, key, addr="192.0.2.67").status_code == 200
    # malformed tokens cost no lookup: they are refused, not counted
    for _ in range(6):
        assert _get(app, url, "latam_short", addr="192.0.2.68").status_code == 401
    assert _get(app, url, key, addr="192.0.2.68").status_code == 200
    # keys pasted into the quality report's sign-in form count the same way
    form = app.test_client()
    for expected in (401, 401, 401, 429):
        response = form.post(
            "/quality/login",
            data={"api_key": "latam_" + secrets.token_urlsafe(32)},
            environ_base={"REMOTE_ADDR": "192.0.2.69"},
        )
        assert response.status_code == expected


def test_without_redis_each_worker_limits_on_its_own(make_app, warehouse_url):
    # nothing listens on port 1: the limiter falls back to this process's memory
    app = make_app(ratelimit_per_key="2/day", ratelimit_storage_url="redis://127.0.0.1:1/0")
    key = new_api_key(warehouse_url)
    url = "/api/v1/flights?limit=1"
    assert [_get(app, url, key).status_code for _ in range(2)] == [200, 200]
    _assert_429(_get(app, url, key), "this API key")


def test_a_flood_of_unknown_keys_does_not_evict_valid_ones(warehouse_url):
    reader = role_url(warehouse_url, READ_ONLY_ROLE)
    db = Database(reader)
    verifier = KeyVerifier(db, cache_seconds=3600)
    key = new_api_key(warehouse_url, name="in-use")
    assert verifier.verify(key).name == "in-use"
    with connection(warehouse_url) as conn:
        assert revoke_key(conn, "in-use") == 1
    # more made-up keys than any cache of the verifier holds
    flood = max(4097, 4 * REFUSED_CACHE_SIZE)
    for _ in range(flood):
        assert verifier.verify("latam_" + secrets.token_urlsafe(32)) is None
    assert len(verifier.refused) <= REFUSED_CACHE_SIZE
    # still answered from the cache (the database already says revoked): not pushed out
    owner = verifier.verify(key)
    assert owner is not None and owner.name == "in-use"
    assert KeyVerifier(db, cache_seconds=3600).verify(key) is None
    db.close()
