"""A bearer token that is not of the shape the API issues is refused before any database query.

The app here points at a database that does not exist: a token that reached the database would
be answered 503 (warehouse unavailable), so a 401 proves the token never got that far.
"""

from __future__ import annotations

import pytest

from api_service import create_app
from api_service.auth import KeyVerifier, bearer_token, new_key, well_formed
from api_service.config import get_api_config
from api_service.db import Database

PROBLEM = "application/problem+json"
NOWHERE = "postgresql://nobody@127.0.0.1:1/none"
WELL_FORMED_UNKNOWN = "latam_" + "A" * 43


@pytest.fixture(scope="module")
def client():
    return create_app(get_api_config(database_url=NOWHERE, testing=True)).test_client()


def test_issued_keys_are_well_formed():
    assert all(well_formed(new_key()) for _ in range(200))
    assert well_formed(WELL_FORMED_UNKNOWN)
    assert not well_formed(WELL_FORMED_UNKNOWN + "\n") and not well_formed(None)


@pytest.mark.parametrize(
    "token",
    [
        "latam_not-a-real-key",
        "latam_" + "A" * 42,
        "latam_" + "A" * 44,
        "latam_" + "A" * 42 + "=",
        "latam_" + "A" * 42 + "é",
        "LATAM_" + "A" * 43,
        "xlatam_" + "A" * 42,
        "A" * 49,
        "latam_" + "A" * 42 + "%",
        "' OR 1=1 --",
    ],
)
def test_malformed_tokens_are_401_without_a_database_query(client, token):
    assert not well_formed(token)
    response = client.get("/api/v1/flights", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401 and response.content_type == PROBLEM
    assert KeyVerifier(Database(NOWHERE), cache_seconds=0).verify(token) is None


def test_a_well_formed_token_is_looked_up(client):
    # the contrast that makes the 401s above meaningful: this one asks the (missing) database
    response = client.get(
        "/api/v1/flights", headers={"Authorization": f"Bearer {WELL_FORMED_UNKNOWN}"}
    )
    assert response.status_code == 503 and response.content_type == PROBLEM


@pytest.mark.parametrize(
    "header, token",
    [
        ("Bearer abc", "abc"),
        ("bearer  abc ", "abc"),
        ("Basic abc", None),
        ("Bearer", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token
