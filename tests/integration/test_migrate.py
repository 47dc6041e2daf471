"""Migrations as a deploy step: `latam migrate`, and every other process checking the version."""

from __future__ import annotations

import os
import subprocess

import pytest
from click.testing import CliRunner
from dagster import instance_for_test, materialize

from latam_dagster import db
from latam_dagster.assets.reference import reference_assets
from latam_dagster.cli import main
from latam_dagster.resources import WarehouseResource
from tests.conftest import LATAM, query
from tests.integration.test_drain_check_selection import _drain_job, _flights

pytestmark = pytest.mark.integration

NEEDED = f"{db.code_version():04d}"
OLD = f"{db.load_migrations()[-2].version:04d}"
OLD_MESSAGE = f"warehouse at version {OLD}, this code needs {NEEDED}: run `latam migrate`"


def latam(url: str, *args: str):
    return CliRunner().invoke(main, list(args), env={"LATAM_WAREHOUSE_URL": url})


def _applied(url: str) -> list[tuple]:
    return query(url, "SELECT version, checksum FROM public.schema_migrations ORDER BY version")


@pytest.fixture
def old_url(empty_db_url: str) -> str:
    """A warehouse one migration behind the code (as after deploying new code, before migrating)."""
    every = db.load_migrations()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(db, "load_migrations", lambda: every[:-1])
        db.migrate(empty_db_url)
    return empty_db_url


def test_migrate_applies_everything_once_and_seeds_airports(empty_db_url):
    first = latam(empty_db_url, "migrate")
    assert first.exit_code == 0, first.output
    names = [m.name for m in db.load_migrations()]
    assert [ln.removeprefix("applied ") for ln in first.output.splitlines()[: len(names)]] == names
    assert f"warehouse at version {NEEDED} ({len(names)} migration(s) applied)" in first.output
    assert "curated.dim_airport was empty: loaded" in first.output
    airports = query(empty_db_url, "SELECT count(*) FROM curated.dim_airport")[0][0]
    assert airports > 1000

    before = _applied(empty_db_url)
    again = latam(empty_db_url, "migrate")
    assert again.exit_code == 0, again.output
    assert "(0 migration(s) applied)" in again.output and "applied 0" not in again.output
    assert "dim_airport" not in again.output  # not empty: left alone
    assert _applied(empty_db_url) == before
    assert db.require_schema(empty_db_url) == int(NEEDED)


def test_check_lists_pending_and_exits_1(old_url, template_db):
    fresh_url = old_url.rsplit("/", 1)[0] + f"/{template_db}_none"
    fresh = latam(fresh_url, "migrate", "--check")
    assert fresh.exit_code == 1
    assert f"{len(db.load_migrations())} pending migration(s)" in fresh.output
    never_created = query(
        old_url, "SELECT 1 FROM pg_database WHERE datname = %s", (fresh_url.rsplit("/", 1)[1],)
    )
    assert never_created == []

    old = latam(old_url, "migrate", "--check")
    assert old.exit_code == 1
    assert old.output.splitlines()[0] == f"pending {db.load_migrations()[-1].name}"
    assert _applied(old_url)[-1][0] == int(OLD)  # --check changed nothing

    assert latam(old_url, "migrate").exit_code == 0
    current = latam(old_url, "migrate", "--check")
    assert current.exit_code == 0 and f"version {NEEDED}: up to date" in current.output


def test_check_refuses_a_warehouse_newer_than_the_code(warehouse_url):
    query(
        warehouse_url,
        "INSERT INTO public.schema_migrations (version, name, checksum) VALUES (9999, 'x', 'x')",
    )
    result = latam(warehouse_url, "migrate", "--check")
    assert result.exit_code == 2
    assert f"warehouse at version 9999, newer than this code ({NEEDED})" in result.output
    with pytest.raises(db.SchemaMismatch, match="newer than this code"):
        db.require_schema(warehouse_url)


def test_api_refuses_an_old_schema_and_runs_no_ddl(old_url):
    before = _applied(old_url)
    env = {**os.environ, "LATAM_WAREHOUSE_URL": old_url}
    done = subprocess.run(
        [LATAM, "api", "--port", "1"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert OLD_MESSAGE in done.stderr
    assert _applied(old_url) == before  # the API did not migrate


def test_api_key_commands_require_the_schema(old_url):
    result = latam(old_url, "api-key", "list")
    assert result.exit_code == 2 and OLD_MESSAGE in result.output
    assert _applied(old_url)[-1][0] == int(OLD)


def test_exporter_refuses_an_old_schema(old_url):
    env = {**os.environ, "LATAM_WAREHOUSE_URL": old_url}
    done = subprocess.run(
        [LATAM, "exporter", "--once", "--no-dagster"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert OLD_MESSAGE in done.stderr


def _error_text(result) -> str:
    """Every message in the chain of the run's failure events (the resource error is a cause)."""
    texts = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None)
        while error is not None:
            texts.append(error.message)
            error = error.cause
    return "\n".join(texts)


def test_a_dagster_run_on_an_old_schema_fails_with_the_message(old_url):
    with instance_for_test() as instance:
        result = materialize(
            reference_assets,
            instance=instance,
            resources={"warehouse": WarehouseResource(url=old_url)},
            raise_on_error=False,
        )
    assert not result.success
    assert OLD_MESSAGE in _error_text(result)
    assert query(old_url, "SELECT count(*) FROM curated.dim_airport") == [(0,)]


def test_a_new_warehouse_behind_an_old_instance_gets_airports(
    warehouse_url, empty_db_url, amqp_url, topology, tmp_path
):
    """The instance remembers dim_airport from the first warehouse; the new one is migrated
    (the deploy step) and a drain run that does not select dim_airport publishes its flights."""
    with instance_for_test() as instance:
        first = materialize(
            reference_assets,
            instance=instance,
            resources={"warehouse": WarehouseResource(url=warehouse_url)},
        )
        assert first.success

        assert latam(empty_db_url, "migrate").exit_code == 0
        job, assets, _checks = _drain_job(amqp_url, topology, empty_db_url, tmp_path)
        assert all(k.path[-1] != "dim_airport" for k in assets)
        _flights(amqp_url, topology, 5)
        result = job.get_subset(asset_selection=set(assets)).execute_in_process(instance=instance)
        assert result.success
        assert query(empty_db_url, "SELECT count(*) FROM curated.fact_flight")[0][0] > 0
        held = query(
            empty_db_url,
            "SELECT count(*) FROM quality.rejects WHERE rule = 'flight_airports_known'",
        )
        assert held == [(0,)]
