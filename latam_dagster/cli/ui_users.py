"""`latam ui-user`: the users of the Dagster UI's proxy, and `latam ui-proxy-config`, its nginx
configuration (docs/ui-access.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from latam_dagster.uiproxy.users import ROLES, UserError, UserStore


def _store() -> UserStore:
    from latam_dagster.settings import get_ui_proxy_settings

    return UserStore(get_ui_proxy_settings().auth_dir)


def _read_password(from_stdin: bool) -> str:
    """One line from stdin (`--password-stdin`, or stdin is not a terminal), else a prompt."""
    if from_stdin or not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("ui-user")
def ui_user() -> None:
    """Users of the Dagster UI: analysts get the read-only UI, operators the full one.

    Stored in LATAM_UI_AUTH_DIR (htpasswd files with bcrypt hashes, read by nginx on every
    request). Adding or removing a user and changing a password take effect at once; a new role
    takes effect when nginx reloads (`latam demo` reloads it by itself)."""


@ui_user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="analyst or operator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option("--replace", is_flag=True, help="Change the role and password of an existing user.")
def add(name: str, role: str, password_stdin: bool, replace: bool) -> None:
    """Add a user NAME with a password from a prompt (or stdin)."""
    store = _store()
    try:
        existed = store.add(name, role, _read_password(password_stdin), replace=replace)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"{'updated' if existed else 'added'} {name} ({role}) in {store.dir}")


@ui_user.command("remove")
@click.argument("name")
def remove(name: str) -> None:
    """Remove the user NAME (refused from the next request on)."""
    store = _store()
    try:
        role = store.remove(name)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    click.echo(f"removed {name} ({role}) from {store.dir}")


@ui_user.command("list")
def list_users() -> None:
    """List the users and their roles."""
    store = _store()
    users = store.list()
    for user in users:
        click.echo(f"{user.name}\t{user.role}")
    click.echo(f"{len(users)} user(s) in {store.dir}", err=True)


@click.command("ui-proxy-config")
@click.option("--port", type=int, required=True, help="Port the proxy listens on.")
@click.option("--analyst-upstream", required=True, help="host:port of the read-only webserver.")
@click.option("--operator-upstream", required=True, help="host:port of the full webserver.")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory of nginx's pid file, logs and temporary files (its -p prefix).",
)
@click.option(
    "--api-upstream",
    default=None,
    help="host:port of the REST API: the proxy also serves it (TLS with the UI's certificate) "
    "on --api-port; run the API with LATAM_API_PROXY_HOPS=1.",
)
@click.option("--api-port", type=int, default=None, help="Port of the proxy's API server.")
def ui_proxy_config(
    port: int,
    analyst_upstream: str,
    operator_upstream: str,
    state_dir: Path,
    api_upstream: str | None,
    api_port: int | None,
) -> None:
    """Write the UI proxy's nginx configuration into STATE_DIR and print how to run it.

    Listen address, users and TLS come from LATAM_UI_HOST, LATAM_UI_AUTH_DIR,
    LATAM_UI_TLS_CERT and LATAM_UI_TLS_KEY."""
    from dataclasses import replace

    from latam_dagster.settings import get_ui_proxy_settings
    from latam_dagster.uiproxy import nginx

    if (api_upstream is None) != (api_port is None):
        raise click.UsageError("--api-upstream and --api-port go together")
    config = nginx.ProxyConfig.from_settings(
        get_ui_proxy_settings(), port, analyst_upstream, operator_upstream, state_dir
    )
    config = replace(config, api_upstream=api_upstream, api_port=api_port)
    path = nginx.write_config(config)
    click.echo(f"wrote {path}")
    try:
        click.echo("run: " + " ".join(nginx.command(config)))
    except nginx.NginxMissing as exc:
        click.echo(f"note: {exc}", err=True)


commands = [ui_user, ui_proxy_config]
