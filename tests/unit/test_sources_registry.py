"""The source registry: the repository's file is valid, and every kind of mistake is refused with
a message naming the file, the system and the rule."""

from __future__ import annotations

import re
import subprocess

import pytest

from latam_dagster.sources.registry import RegistryError, load_registry, parse_registry
from tests.conftest import LATAM


def test_the_repository_registry_names_fifty_systems():
    registry = load_registry()
    assert len(registry.systems) == 50
    dcs = registry.get("dcs_scl")
    assert dcs.routing_keys == ("passenger.dcs_scl", "flight.dcs_scl")
    pattern = re.compile(dcs.write_topic_pattern())
    assert pattern.fullmatch("flight.dcs_scl") and not pattern.fullmatch("flight.dcs_scl2")
    assert not pattern.fullmatch("position.dcs_scl")


def _one(**fields) -> str:
    system = {"name": "a", "description": "d", "owner": "o", "event_types": ["flight_status"]}
    system.update(fields)
    inner = ", ".join(f"{k}: {v}" for k, v in system.items())
    return f"version: 1\nsystems:\n  - {{{inner}}}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_one(event_types="[boarding]"), r"systems\.0\.event_types \(a\): unknown event type 'boarding'"),
        (_one(event_types="[]"), r"event_types \(a\): .*at least 1"),
        (_one(event_types="[flight_status, flight_status]"), "listed twice"),
        (_one() + "  - {name: a, description: d, owner: o, event_types: [flight_status]}\n",
         "duplicate name 'a'"),
        (_one(routing_keys="[cargo.a]"), r"'cargo\.a' is outside the topology's prefixes"),
        (_one(routing_keys="[passenger.a]"), "for another event type"),
        (_one(routing_keys="['flight.#']"), "no \\* or # wildcard"),
        (_one(routing_keys="[flight.b]"), "must name the system as its second word"),
        (_one(routing_keys="[flight.a, flight.a]"), "routing key is listed twice"),
        (_one(name="'Ops Control'"), "must match"),
        (_one(colour="red"), r"colour.*Extra inputs"),
        (_one(owner="''"), "owner"),
        ("version: 2\nsystems: []\n", "version"),
        ("version: 1\n", "systems: Field required"),
        ("systems: [\n", "not valid YAML at line"),
        ("- a\n", "expected a mapping"),
    ],
)  # fmt: skip
def test_bad_registries_are_refused_clearly(text, message):
    with pytest.raises(RegistryError, match=message) as refused:
        parse_registry(text, "sources.yaml")
    assert str(refused.value).startswith("sources.yaml: ")


def test_a_missing_registry_file(tmp_path):
    with pytest.raises(RegistryError, match="cannot read the source registry"):
        load_registry(tmp_path / "nope.yaml")


def test_cli_list_validate_and_bad_file(tmp_path):
    out = subprocess.run([LATAM, "sources", "list"], capture_output=True, text=True, check=True)
    assert "50 source systems" in out.stdout and "flight.ops_control_scl" in out.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(_one(event_types="[boarding]"))
    proc = subprocess.run(
        [LATAM, "sources", "validate", "--registry", str(bad)], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert "unknown event type 'boarding'" in proc.stderr and "Traceback" not in proc.stderr
