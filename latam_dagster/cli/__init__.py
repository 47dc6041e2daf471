"""The `latam` command: set-up, simulation, publishing, the pipeline, and operations."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

import click

from latam_dagster.settings import PIPELINE_SECRETS, get_settings

if TYPE_CHECKING:
    from latam_dagster.ingest.topology import Topology


class FriendlyErrors(click.Group):
    """Turn 'service not reachable', schema-version and settings errors into one line and exit
    status 2. A settings error names the variable, never its value."""

    def invoke(self, ctx: click.Context):
        from pydantic import ValidationError

        from latam_dagster.db import SchemaMismatch, WarehouseUnavailable
        from latam_dagster.ingest.topology import BrokerUnavailable
        from latam_dagster.settings import SettingsProblem

        try:
            return super().invoke(ctx)
        except (WarehouseUnavailable, BrokerUnavailable, SchemaMismatch, SettingsProblem) as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(2)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            click.echo(f"error: {exc.title}: {problems}", err=True)
            ctx.exit(2)


def refuse_default_secrets(*names: str) -> None:
    """With LATAM_ENV=production, stop a command that writes while a secret it needs (by field
    name of `Settings.default_secrets`) is missing or a default."""
    from latam_dagster.settings import refuse_default_secrets as refuse

    settings = get_settings()
    refuse(settings.default_secrets(*names), settings)


@click.group(cls=FriendlyErrors)
def main() -> None:
    """LATAM airline data platform."""


def _echo_seeded(seeded: int | None) -> None:
    if seeded is not None:
        click.echo(f"curated.dim_airport was empty: loaded {seeded} airports")


@main.command()
@click.option("--check", is_flag=True, help="Only list pending migrations; exit 1 if any.")
def migrate(check: bool) -> None:
    """Apply pending warehouse migrations (the deploy step), then load airports if missing.

    Every other process only checks the schema version and refuses to start on a mismatch, so
    this is the one command that needs the owner's credentials.
    """
    from latam_dagster import db
    from latam_dagster.transform.airports import seed_dim_airport

    if not check:
        refuse_default_secrets("warehouse_url")
    url = get_settings().warehouse_url
    if check:
        pending = db.pending_migrations(url)
        for m in pending:
            click.echo(f"pending {m.name}")
        if pending:
            click.echo(f"{len(pending)} pending migration(s): run `latam migrate`")
            sys.exit(1)
        db.require_schema(url)  # a warehouse newer than the code is not "up to date" either
        click.echo(f"warehouse at version {db.schema_version(url):04d}: up to date")
        return
    applied = db.migrate(url)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(
        f"warehouse at version {db.schema_version(url):04d} ({len(applied)} migration(s) applied)"
    )
    _echo_seeded(seed_dim_airport(url))


@main.command()
def init() -> None:
    """Migrate the warehouse, load airports if missing, declare RabbitMQ, create DAGSTER_HOME."""
    refuse_default_secrets("warehouse_url", *PIPELINE_SECRETS)
    from latam_dagster.pipeline import ensure_dagster_home, prepare
    from latam_dagster.transform.airports import seed_dim_airport

    settings = get_settings()
    applied = prepare(settings)
    seeded = seed_dim_airport(settings.warehouse_url)
    home = ensure_dagster_home(settings)
    for name in applied:
        click.echo(f"applied {name}")
    click.echo(f"warehouse ready ({len(applied)} migration(s) applied)")
    _echo_seeded(seeded)
    click.echo(f"topology '{settings.topology_prefix}' declared on RabbitMQ")
    click.echo(f"DAGSTER_HOME={home}")


@main.command()
@click.argument("file", type=click.File("rb"))
@click.option("--no-validate", is_flag=True, help="Publish every line as it is (for testing).")
def publish(file, no_validate: bool) -> None:
    """Publish JSON Lines events (FILE or - for stdin) with publisher confirms.

    Each line is checked against the contract first; invalid lines are reported with their line
    number and not published, and the exit status is 1.
    """
    refuse_default_secrets("amqp_url")
    from latam_dagster.contracts import InvalidEvent, validate_body
    from latam_dagster.ingest.publish import Publisher, read_jsonl
    from latam_dagster.ingest.topology import Topology, routing_key_for

    settings = get_settings()
    topo = Topology(settings.topology_prefix, settings.delivery_limit)
    published = rejected = 0
    with Publisher(settings.amqp_url, topo) as pub:
        for lineno, line in read_jsonl(file):
            outcome = validate_body(line, settings.max_message_bytes)
            if isinstance(outcome, InvalidEvent) and not no_validate:
                click.echo(f"line {lineno}: not published: {outcome.reason}", err=True)
                rejected += 1
                continue
            try:
                event = json.loads(line)
            except ValueError:
                event = {}
            key = routing_key_for(event if isinstance(event, dict) else {})
            pub.publish_body(line, key)
            published += 1
    click.echo(f"published {published} event(s), rejected {rejected}")
    if rejected:
        sys.exit(1)


def _print_report(report, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(report.__dict__, default=str, indent=2))
        return
    keys = ("received", "inserted", "duplicates", "quarantined", "changed_rows", "rows")
    for step in report.steps:
        md = step["metadata"]
        summary = ", ".join(f"{k}={md[k]}" for k in keys if k in md)
        where = f" [{step['partition']}]" if step.get("partition") else ""
        click.echo(f"{step['asset']}{where}: {summary}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    for failure in report.failures:
        click.echo(f"FAILED {failure}", err=True)
    click.echo(f"run {'succeeded' if report.success else 'failed'}: {', '.join(report.run_ids)}")


def _run_pipeline(what: str, as_json: bool) -> None:
    """Run `latam_dagster.pipeline.<what>` and exit 0 when everything succeeded, else 1."""
    refuse_default_secrets("warehouse_url", *PIPELINE_SECRETS)
    from latam_dagster import pipeline

    report = getattr(pipeline, what)()
    _print_report(report, as_json)
    sys.exit(0 if report.success else 1)


@main.command("run-once")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def run_once_cmd(as_json: bool) -> None:
    """Run the whole pipeline once through Dagster; non-zero exit when anything fails."""
    _run_pipeline("run_once", as_json)


@main.command("full-refresh")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def full_refresh_cmd(as_json: bool) -> None:
    """Rebuild curated tables and every mart partition from raw (after a logic change)."""
    _run_pipeline("full_refresh", as_json)


@main.command()
@click.option("--port", default=3000, show_default=True, help="Dagster UI port (its proxy, nginx).")
@click.option("--api-port", default=8080, show_default=True, help="REST API port.")
@click.option("--rate", default=50.0, show_default=True, help="Simulated events per second.")
@click.option("--systems", default=12, show_default=True, help="Simulated source systems.")
@click.option("--seed", default=7, show_default=True)
def demo(port: int, api_port: int, rate: float, systems: int, seed: int) -> None:
    """Run the whole platform locally (Dagster UI, daemon, simulator, API) until Ctrl-C."""
    refuse_default_secrets("warehouse_url", *PIPELINE_SECRETS)
    from latam_dagster.demo import run_demo

    sys.exit(run_demo(port, api_port, rate, systems, seed))


@main.command()
def doctor() -> None:
    """Check that Postgres and RabbitMQ answer where the settings point."""
    from latam_dagster.demo import check_services

    problems = check_services(get_settings())
    for p in problems:
        click.echo(f"error: {p}", err=True)
    if problems:
        sys.exit(2)
    click.echo("Postgres and RabbitMQ answer")


SHOW_BODY_HELP = (
    "Show up to 4000 characters of each body instead of an 80-character preview "
    "(escaped text, or hex when it is not UTF-8)."
)


@main.group()
def quarantine() -> None:
    """Inspect and replay messages that broke the contract."""


@quarantine.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--all", "include_replayed", is_flag=True, help="Include replayed rows.")
@click.option("--show-body", is_flag=True, help=SHOW_BODY_HELP)
@click.option("--json", "as_json", is_flag=True)
def quarantine_list(
    limit: int, queue: str | None, include_replayed: bool, show_body: bool, as_json: bool
) -> None:
    """List quarantined messages, newest first, each with a safe preview of its body."""
    from latam_dagster.ingest.quarantine import list_quarantine

    rows = list_quarantine(get_settings().warehouse_url, limit, queue, include_replayed, show_body)
    if as_json:
        click.echo(json.dumps(rows, default=str, indent=2))
        return
    for r in rows:
        notes = ""
        if r["body_truncated"]:
            notes += f" [truncated: {r['stored_bytes']} of {r['body_bytes']} B kept, no replay]"
        if r["error_class"]:
            notes += f" [error: {r['error_class']}]"
        if r["replayed_at"]:
            notes += f" [replayed: {r['replay_result']}]"
        click.echo(
            f"#{r['quarantine_id']} {r['received_at']:%Y-%m-%d %H:%M:%S} {r['queue']} "
            f"({r['body_bytes']} B){notes}: {r['reason']}"
        )
        click.echo(f"    {r['body'] if show_body else r['body_preview']}")
    click.echo(f"{len(rows)} row(s)")


@quarantine.command("replay")
@click.option("--id", "ids", multiple=True, type=int, help="Only these quarantine ids.")
@click.option("--queue", default=None, help="Only this queue.")
@click.option("--dry-run", is_flag=True, help="Validate and report, change nothing.")
def quarantine_replay(ids: tuple[int, ...], queue: str | None, dry_run: bool) -> None:
    """Send open quarantine rows back through validation; the ones that pass go to raw.

    Rows kept truncated (over the size limit) cannot be replayed; they stay open."""
    refuse_default_secrets("warehouse_url")
    from latam_dagster.ingest.quarantine import replay

    s = get_settings()
    res = replay(s.warehouse_url, s.max_message_bytes, list(ids) or None, queue, dry_run)
    prefix = "dry run: " if dry_run else ""
    click.echo(
        f"{prefix}examined {res.examined}, inserted {res.inserted}, "
        f"already in raw {res.already_in_raw}, still invalid {res.still_invalid}, "
        f"truncated (not replayable) {res.truncated}"
    )


@main.group()
def dead() -> None:
    """Inspect and replay messages the broker dead-lettered (past the delivery limit)."""


def _topology() -> Topology:
    from latam_dagster.ingest.topology import Topology

    settings = get_settings()
    return Topology(settings.topology_prefix, settings.delivery_limit)


@dead.command("list")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000))
@click.option("--show-body", is_flag=True, help=SHOW_BODY_HELP)
@click.option("--json", "as_json", is_flag=True)
def dead_list(limit: int, show_body: bool, as_json: bool) -> None:
    """List dead letters, oldest first, leaving every one of them in the dead queue."""
    import pika.exceptions

    from latam_dagster.ingest.dead_letters import list_dead

    topo = _topology()
    try:
        letters = list_dead(get_settings().amqp_url, topo, limit, show_body)
    except pika.exceptions.AMQPError as exc:
        click.echo(
            f"error: broker connection lost while listing ({exc!r}); nothing was removed", err=True
        )
        sys.exit(2)
    if as_json:
        click.echo(json.dumps([d.as_dict() for d in letters], indent=2))
        return
    for d in letters:
        died = f"{d.reason or '?'} x{d.count}" if d.count is not None else d.reason or "?"
        click.echo(
            f"#{d.position} from {d.queue or '?'} key {d.routing_key or '?'} ({died}) "
            f"id {d.message_id or '-'} ({d.size} B)"
        )
        click.echo(f"    {d.body if show_body else d.body_preview}")
    click.echo(f"{len(letters)} dead letter(s) in {topo.dead_queue} (shown, not removed)")


@dead.command("replay")
@click.option("--limit", default=None, type=click.IntRange(1), help="At most this many.")
@click.option("--dry-run", is_flag=True, help="Count what would be replayed, change nothing.")
def dead_replay(limit: int | None, dry_run: bool) -> None:
    """Republish dead letters to their original routing keys (confirmed), then remove them.

    A dead letter leaves the dead queue only after the broker confirmed its copy, so an
    interrupted replay at worst publishes a message twice, which raw absorbs (one row per
    message_id)."""
    refuse_default_secrets("amqp_url")
    from latam_dagster.ingest.dead_letters import ReplayInterrupted, replay_dead

    try:
        res = replay_dead(get_settings().amqp_url, _topology(), limit, dry_run)
    except ReplayInterrupted as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    prefix = "dry run: " if dry_run else ""
    click.echo(
        f"{prefix}examined {res.examined}, replayed {res.replayed}, "
        f"no original routing key {res.no_origin}, refused by the broker {res.refused}"
    )
    if res.refused:
        sys.exit(1)


def _register_commands() -> None:
    from latam_dagster.cli.api import commands as api_commands
    from latam_dagster.cli.exporter import exporter
    from latam_dagster.cli.quality import quality
    from latam_dagster.cli.simulate import simulate
    from latam_dagster.cli.sources import sources
    from latam_dagster.cli.ui_users import commands as ui_commands

    main.add_command(simulate)
    main.add_command(sources)
    for command in ui_commands:
        main.add_command(command)
    main.add_command(exporter)
    main.add_command(quality)
    for command in api_commands:
        main.add_command(command)


_register_commands()
