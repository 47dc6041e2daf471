"""`latam simulate`: publish simulated events to RabbitMQ, or write them as JSON Lines."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import IO

import click
from click.decorators import FC

from latam_dagster.simulator.generator import SimMessage, generate
from latam_dagster.simulator.runner import run

PROGRESS_EVERY_S = 10.0


@dataclass
class Tally:
    """What went out, for the closing summary (also correct after Ctrl-C)."""

    published: int = 0
    valid: int = 0
    invalid: int = 0
    duplicates: int = 0
    skipped: int = 0

    def count(self, msg: SimMessage) -> None:
        self.published += 1
        if msg.valid:
            self.valid += 1
            self.duplicates += msg.kind == "duplicate"
        else:
            self.invalid += 1

    def summary(self, verb: str) -> str:
        text = (
            f"{verb} {self.published} messages: {self.valid} valid "
            f"({self.duplicates} duplicates), {self.invalid} invalid"
        )
        return text + (f"; skipped {self.skipped} multi-line or non-UTF-8" if self.skipped else "")


def _jsonl_safe(body: bytes) -> bool:
    """Whether a body can be one line of a JSON Lines file and read back unchanged."""
    if not body or b"\n" in body or b"\r" in body:
        return False
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _paced(messages: Iterable[SimMessage], rate: float | None) -> Iterator[SimMessage]:
    interval = 1.0 / rate if rate else 0.0
    began = time.perf_counter()
    for i, msg in enumerate(messages):
        if interval:
            ahead = began + i * interval - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        yield msg


def _write(out: IO[bytes], messages: Iterable[SimMessage], tally: Tally) -> None:
    for msg in messages:
        if _jsonl_safe(msg.body):
            out.write(msg.body + b"\n")
            tally.count(msg)
        else:
            tally.skipped += 1


def _publish(
    messages: Iterable[SimMessage], rate: float | None, tally: Tally, forever: bool
) -> None:
    from latam_dagster.cli import refuse_default_secrets
    from latam_dagster.ingest.publish import Publisher
    from latam_dagster.ingest.topology import BrokerUnavailable, Topology
    from latam_dagster.settings import get_settings

    refuse_default_secrets("amqp_url")
    settings = get_settings()
    topo = Topology(prefix=settings.topology_prefix, delivery_limit=settings.delivery_limit)
    try:
        publisher = Publisher(settings.amqp_url, topo)
    except BrokerUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    last = [time.monotonic()]

    def progress(msg: SimMessage) -> None:
        tally.count(msg)
        if forever and time.monotonic() - last[0] >= PROGRESS_EVERY_S:
            last[0] = time.monotonic()
            click.echo(tally.summary("published"), err=True)

    try:
        run(publisher, messages, rate, on_published=progress)
    finally:
        with contextlib.suppress(Exception):  # the connection may be gone after Ctrl-C
            publisher.close()


def share_option(flag: str, most: float, help: str) -> Callable[[FC], FC]:
    """An option for the share of messages with some trait: 0 to `most`, none by default."""
    return click.option(flag, default=0.0, type=click.FloatRange(0, most), help=help)


@click.command("simulate")
@click.option(
    "--systems",
    default=10,
    show_default=True,
    type=click.IntRange(min=1),
    help="Number of distinct source systems.",
)
@click.option(
    "--rate",
    default=100.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Messages per second (publishing, and message count with --duration).",
)
@click.option(
    "--duration",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds of traffic at --rate; 0 runs until Ctrl-C.",
)
@click.option(
    "--events",
    default=None,
    type=click.IntRange(min=0),
    help="Exact number of messages (overrides --duration).",
)
@click.option("--forever", is_flag=True, help="Run until Ctrl-C (same as --duration 0).")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same messages.")
@click.option(
    "--start",
    default=None,
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d"]),
    help="Simulated start time (default 2026-11-27T00:00Z).",
)
@share_option("--duplicates", 1, "Share of messages that re-send an earlier message byte for byte.")
@share_option(
    "--out-of-order", 0.99, "Share of events delivered late (up to 1000 messages behind)."
)
@share_option("--invalid", 1, "Share of messages that break the contract.")
@click.option(
    "--output",
    default=None,
    type=click.Path(dir_okay=False, allow_dash=True),
    help="Write JSON Lines here ('-' for stdout) instead of publishing.",
)
def simulate(
    systems: int,
    rate: float,
    duration: float,
    events: int | None,
    forever: bool,
    seed: int,
    start: datetime | None,
    duplicates: float,
    out_of_order: float,
    invalid: float,
    output: str | None,
) -> None:
    """Simulate LATAM flight, passenger and position events (deterministic per --seed).

    Without --output the messages go to RabbitMQ (settings from LATAM_AMQP_URL and
    LATAM_TOPOLOGY_PREFIX; the topology is declared), paced at --rate. With --output they are
    written as JSON Lines, one body per line, as fast as possible (paced at --rate only when
    running forever). A JSON Lines file cannot hold every broken body, so the invalid messages
    that are empty, not UTF-8 or span lines are left out of the file (and counted as skipped);
    the other invalid ones are written.
    """
    forever = forever or (duration == 0 and events is None)
    try:
        messages = generate(
            seed,
            systems=systems,
            events=None if forever else events,
            duration_s=None if forever else duration,
            rate=rate,
            start=start,
            duplicate_share=duplicates,
            out_of_order_share=out_of_order,
            invalid_share=invalid,
        )
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    tally = Tally()
    to_file = output is not None
    verb = "wrote" if to_file else "published"
    try:
        if output is None:
            _publish(messages, rate, tally, forever)
        elif output == "-":
            stdout = click.get_binary_stream("stdout")
            _write(stdout, _paced(messages, rate if forever else None), tally)
            stdout.flush()
        else:
            with open(output, "wb") as out:
                _write(out, _paced(messages, rate if forever else None), tally)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
    click.echo(tally.summary(verb), err=to_file and output == "-")
