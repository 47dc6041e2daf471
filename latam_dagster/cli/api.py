"""`latam api` (serve the REST API with gunicorn) and `latam api-key create|revoke|list`."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import click

from latam_dagster.settings import get_settings


def _gunicorn() -> str:
    local = Path(sys.executable).parent / "gunicorn"
    return str(local) if local.exists() else (shutil.which("gunicorn") or "gunicorn")


@click.command("api")
@click.option("--host", default=None, help="Address to bind (default LATAM_API_HOST, 127.0.0.1).")
@click.option("--port", default=None, type=int, help="Port (default LATAM_API_PORT, 8080).")
@click.option("--workers", default=None, type=int, help="gunicorn workers (LATAM_API_WORKERS).")
@click.option("--no-migrate", is_flag=True, hidden=True, help="Ignored: the API never migrates.")
def api(host: str | None, port: int | None, workers: int | None, no_migrate: bool) -> None:
    """Serve the REST API with gunicorn, reading the warehouse as the read-only role.

    It never runs DDL: it checks the schema version first and refuses to start (exit status 2)
    when the warehouse does not match the code; `latam migrate` is the deploy step.
    """
    from api_service.config import get_api_config

    for name, value in (
        ("LATAM_API_HOST", host),
        ("LATAM_API_PORT", port),
        ("LATAM_API_WORKERS", workers),
    ):
        if value is not None:
            os.environ[name] = str(value)
    config = get_api_config()
    _require_schema(config.database_url)
    metrics_dir = tempfile.mkdtemp(prefix="latam-api-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    click.echo(
        f"serving the API on http://{config.host}:{config.port} "
        f"({config.workers} worker(s) x {config.threads} thread(s)); docs at /docs",
        err=True,
    )
    sys.stderr.flush()
    gunicorn = _gunicorn()
    os.execv(
        gunicorn,
        [gunicorn, "-c", "python:api_service.gunicorn_conf", "api_service:create_app()"],
    )


def _require_schema(api_url: str) -> None:
    """Check the schema as the API's own role (migration 0031 lets it read the applied versions),
    or as LATAM_WAREHOUSE_URL on a warehouse too old for that role."""
    from latam_dagster import db

    db.require_schema_as(api_url, get_settings().warehouse_url)


@click.group("api-key")
def api_key() -> None:
    """Create, revoke and list the REST API's keys.

    Admin commands run with the owner's credentials, yet they only check the schema version
    rather than migrate: a key written into a half-deployed schema would be an unnoticed deploy.
    """


def _scopes(values: tuple[str, ...]) -> list[str]:
    from api_service.auth import SCOPES

    chosen = [s.strip() for v in values for s in v.split(",") if s.strip()]
    return chosen or list(SCOPES)


@api_key.command("create")
@click.option(
    "--name", required=True, help="Who or what the key is for (unique among active keys)."
)
@click.option(
    "--scopes",
    "scopes",
    multiple=True,
    help="Scopes, comma-separated or repeated (default: all of them): flights:read, "
    "routes:read, airports:read, aircraft:read, quality:read.",
)
def api_key_create(name: str, scopes: tuple[str, ...]) -> None:
    """Create a key; the key is printed once, as the last line of the output."""
    from api_service.auth import KeyNameTaken, create_key
    from latam_dagster import db
    from latam_dagster.cli import refuse_default_secrets

    refuse_default_secrets("warehouse_url")

    url = get_settings().warehouse_url
    db.require_schema(url)
    chosen = _scopes(scopes)
    try:
        with db.connection(url) as conn:
            key = create_key(conn, name, chosen)
    except (KeyNameTaken, ValueError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    click.echo(f"created API key {name!r} with scopes {', '.join(sorted(chosen))}")
    click.echo("store it now: it is not shown again. Send it as 'Authorization: Bearer <key>'.")
    click.echo(key)


@api_key.command("revoke")
@click.argument("name")
def api_key_revoke(name: str) -> None:
    """Revoke the active key NAME (workers stop accepting it within LATAM_API_KEY_CACHE_SECONDS)."""
    from api_service.auth import revoke_key
    from latam_dagster import db
    from latam_dagster.cli import refuse_default_secrets

    refuse_default_secrets("warehouse_url")

    url = get_settings().warehouse_url
    db.require_schema(url)
    with db.connection(url) as conn:
        revoked = revoke_key(conn, name)
    if not revoked:
        click.echo(f"error: no active API key named {name!r}", err=True)
        sys.exit(1)
    click.echo(f"revoked API key {name!r}")


@api_key.command("list")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True)
def api_key_list(include_revoked: bool, as_json: bool) -> None:
    """List keys: name, first characters, scopes, when created and revoked."""
    from api_service.auth import list_keys
    from latam_dagster import db

    url = get_settings().warehouse_url
    db.require_schema(url)
    with db.connection(url) as conn:
        keys = list_keys(conn, include_revoked)
    if as_json:
        click.echo(json.dumps([k.__dict__ for k in keys], default=str, indent=2))
        return
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        click.echo(
            f"{k.name}\t{k.key_prefix}…\t{','.join(k.scopes)}\t"
            f"created {k.created_at:%Y-%m-%d %H:%M}\t{state}"
        )
    click.echo(f"{len(keys)} key(s)")


commands = [api, api_key]
"""Register with `for command in commands: main.add_command(command)` in latam_dagster/cli.py."""
