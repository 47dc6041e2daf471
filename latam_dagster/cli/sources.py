"""`latam sources`: the source registry and the RabbitMQ user of each source system."""

from __future__ import annotations

import json

import click

from latam_dagster.settings import get_settings


@click.group()
def sources() -> None:
    """The source systems allowed to publish (infra/sources/sources.yaml) and their users."""


def _registry(path: str | None):
    from latam_dagster.sources.registry import RegistryError, load_registry

    try:
        return load_registry(path or get_settings().sources_file)
    except RegistryError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


_REGISTRY_OPTION = click.option(
    "--registry",
    "registry_path",
    default=None,
    help="Registry file (default: LATAM_SOURCES_FILE, else infra/sources/sources.yaml).",
)


@sources.command("list")
@_REGISTRY_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the registry as JSON.")
def list_cmd(registry_path: str | None, as_json: bool) -> None:
    """List the registered source systems, their event types and routing keys."""
    registry = _registry(registry_path)
    if as_json:
        click.echo(json.dumps([s.model_dump(mode="json") for s in registry.systems], indent=2))
        return
    for s in registry.systems:
        click.echo(f"{s.name:<26} {s.owner:<18} {','.join(s.routing_keys)}")
    click.echo(f"{len(registry.systems)} source systems")


@sources.command("validate")
@_REGISTRY_OPTION
def validate_cmd(registry_path: str | None) -> None:
    """Check the registry file; exit 2 naming every problem."""
    registry = _registry(registry_path)
    click.echo(f"ok: {len(registry.systems)} source systems")


@sources.command("provision")
@_REGISTRY_OPTION
@click.option("--dry-run", is_flag=True, help="Show what would change; change nothing.")
@click.option("--prune", is_flag=True, help="Delete managed users of systems not in the registry.")
def provision_cmd(registry_path: str | None, dry_run: bool, prune: bool) -> None:
    """Create or update one RabbitMQ user per source system (write-only, its routing keys only).

    Passwords are read from, or generated into, LATAM_SOURCES_SECRETS_DIR/<name>.password
    (mode 0600) and never printed (`latam sources password NAME` prints one)."""
    from latam_dagster.ingest.topology import Topology
    from latam_dagster.observability.config import management_url_from_amqp, vhost_of
    from latam_dagster.sources.provision import ManagementAPI, ProvisionError, provision

    settings = get_settings()
    registry = _registry(registry_path)
    url = settings.sources_management_url or management_url_from_amqp(settings.amqp_url)
    try:
        plan = provision(
            ManagementAPI(url),
            registry,
            vhost_of(settings.amqp_url),
            Topology(prefix=settings.topology_prefix).exchange,
            settings.sources_secrets_dir,
            dry_run=dry_run,
            prune=prune,
        )
    except ProvisionError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    for line in plan.lines(dry_run):
        click.echo(line)
    if plan.passwords_written:
        click.echo(
            f"{len(plan.passwords_written)} new password(s) written to "
            f"{settings.sources_secrets_dir} (mode 0600)"
        )


@sources.command("password")
@click.argument("name")
@_REGISTRY_OPTION
def password_cmd(name: str, registry_path: str | None) -> None:
    """Print the password of one source system's user (to hand it to the system's owners)."""
    from latam_dagster.sources.provision import ProvisionError, read_secret, secret_path

    registry = _registry(registry_path)
    if name not in registry.names:
        click.echo(f"error: {name!r} is not in the source registry", err=True)
        raise SystemExit(2)
    path = secret_path(get_settings().sources_secrets_dir, name)
    try:
        password = read_secret(path)
    except ProvisionError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None
    if password is None:
        click.echo(f"error: no password file {path}: run `latam sources provision`", err=True)
        raise SystemExit(2)
    click.echo(password)
