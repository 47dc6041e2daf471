"""A table declared in the registry alone becomes an asset with its checks, and an endpoint.

The toy table counts flights per route from `curated.fact_flight`. The test writes its SQL file
and creates the table (as its migration would); everything else (the asset and its dependency,
one check per rule, the transform, the API's row endpoint with its schema and key validation)
comes from the declaration.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, Definitions, materialize

from api_service import create_app
from api_service.auth import create_key
from api_service.config import READ_ONLY_ROLE, get_api_config, role_url
from latam_dagster.assets.curated import build_curated_assets
from latam_dagster.db import connection
from latam_dagster.quality.gx_checks import build_asset_checks
from latam_dagster.quality.gx_resource import GreatExpectationsResource
from latam_dagster.resources import WarehouseResource
from latam_dagster.tables import REGISTRY, Endpoint, Table, columns
from latam_dagster.tables.rules import Rule, gxe
from latam_dagster.transform.curated import update_all
from tests.conftest import query
from tests.transform_helpers import chaos_events, write_raw

TOY_KEY = AssetKey(["curated", "toy_route_flights"])
TOY_SQL = """-- Flights per route, from the published flights.
INSERT INTO curated.toy_route_flights (route, flights)
SELECT origin || '-' || destination, count(*)
FROM curated.fact_flight
GROUP BY origin, destination
"""


def toy_table(sql_file: Path) -> Table:
    return Table(
        "curated",
        "toy_route_flights",
        key=("route",),
        api_name="ToyRouteFlights",
        columns=columns("route:text flights:int"),
        inputs=("curated.fact_flight",),
        sql_file=sql_file,
        rules=(
            Rule(
                "toy_routes_have_flights",
                "Every route counted has at least one flight.",
                (gxe.ExpectColumnValuesToBeBetween(column="flights", min_value=1),),
            ),
            Rule(
                "toy_routes_unique",
                "One row per route.",
                (gxe.ExpectColumnValuesToBeUnique(column="route"),),
            ),
        ),
        endpoint=Endpoint(
            path="/toy-routes/<route>",
            pattern=r"^[A-Z]{3}-[A-Z]{3}$",
            pattern_error="is not a route like SCL-LIM",
            example="SCL-LIM",
            scope="routes:read",
            tag="Routes",
            noun="route",
            summary="Get one route's flight count",
            description="Rows of the toy table, by route.",
        ),
    )


@pytest.fixture
def toy(tmp_path: Path) -> Table:
    sql_file = tmp_path / "toy_route_flights.sql"
    sql_file.write_text(TOY_SQL, encoding="utf-8")
    return toy_table(sql_file)


def test_the_declaration_gives_an_asset_with_its_dependency_and_one_check_per_rule(toy: Table):
    registry = REGISTRY.with_tables(toy)
    assets = build_curated_assets(registry)
    checks = build_asset_checks(registry)
    resources = {"warehouse": WarehouseResource(), "gx": GreatExpectationsResource()}
    defs = Definitions(assets=assets, asset_checks=checks, resources=resources)
    graph = defs.resolve_asset_graph()

    assert TOY_KEY in graph.get_all_asset_keys()
    assert graph.get(TOY_KEY).parent_keys == {AssetKey(["curated", "fact_flight"])}
    toy_checks = {k.name for k in graph.asset_check_keys if k.asset_key == TOY_KEY}
    assert toy_checks == {"toy_routes_have_flights", "toy_routes_unique"}
    # the platform's own definitions do not see it
    assert TOY_KEY not in {a.key for a in build_curated_assets()}


def test_the_toy_table_materializes_its_checks_pass_and_the_api_serves_it(
    toy: Table, warehouse: str, tmp_path: Path
):
    write_raw(warehouse, chaos_events(seed=7, flights=30, unknown_airport=False))
    update_all(warehouse)
    with connection(warehouse) as conn, conn.cursor() as cur:  # what its migration would do
        cur.execute(
            "CREATE TABLE curated.toy_route_flights (route text PRIMARY KEY, flights int NOT NULL)"
        )
        cur.execute(f"GRANT SELECT ON curated.toy_route_flights TO {READ_ONLY_ROLE}")

    registry = REGISTRY.with_tables(toy)
    toy_asset = next(a for a in build_curated_assets(registry) if TOY_KEY in a.keys)
    toy_checks = [
        c for c in build_asset_checks(registry) if TOY_KEY in {k.asset_key for k in c.check_keys}
    ]
    result = materialize(
        [toy_asset, *toy_checks],
        resources={
            "warehouse": WarehouseResource(url=warehouse),
            "gx": GreatExpectationsResource(
                warehouse_url=warehouse,
                quality_dir=str(tmp_path / "quality"),
                data_docs_dir=str(tmp_path / "docs"),
                build_data_docs=False,
            ),
        },
    )
    assert result.success
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name: e.passed for e in evaluations} == {
        "toy_routes_have_flights": True,
        "toy_routes_unique": True,
    }
    expected = dict(
        query(
            warehouse,
            "SELECT origin || '-' || destination, count(*) FROM curated.fact_flight GROUP BY 1",
        )
    )
    assert (
        dict(query(warehouse, "SELECT route, flights FROM curated.toy_route_flights")) == expected
    )

    with connection(warehouse) as conn:
        key = create_key(conn, "toy-reader", ["routes:read"])
    config = get_api_config(
        database_url=role_url(warehouse, READ_ONLY_ROLE),
        key_cache_seconds=0.0,
        data_docs_dir=str(tmp_path / "docs"),
    )
    app = create_app(config, registry=registry)
    try:
        client = app.test_client()
        auth = {"Authorization": f"Bearer {key}"}
        route, flights = sorted(expected.items())[0]
        answer = client.get(f"/api/v1/toy-routes/{route}", headers=auth)
        assert answer.status_code == 200, answer.get_data(as_text=True)
        assert answer.get_json() == {"data": {"route": route, "flights": flights}}

        assert client.get("/api/v1/toy-routes/ZZZ-ZZZ", headers=auth).status_code == 404
        bad = client.get("/api/v1/toy-routes/not-a-route", headers=auth)
        assert bad.status_code == 400
        assert "is not a route like SCL-LIM" in bad.get_data(as_text=True)
        assert client.get(f"/api/v1/toy-routes/{route}").status_code == 401

        spec = client.get("/openapi.json").get_json()
        operation = spec["paths"]["/api/v1/toy-routes/{route}"]["get"]
        assert operation["summary"] == "Get one route's flight count"
        schema = spec["components"]["schemas"]["ToyRouteFlights"]
        assert set(schema["properties"]) == {"route", "flights"}
    finally:
        app.extensions["latam_api"].db.close()
