"""The source registry: which systems may publish, which event types, on which routing keys.

The registry is a YAML file (infra/sources/sources.yaml, or LATAM_SOURCES_FILE) validated here.
A system's name is its `source_system` value and its RabbitMQ user name. Its routing keys are
`<prefix>.<name>` per event type by default (what `routing_key_for` gives its events); explicit
keys must start with the prefix of one of its event types and name the system as the second word,
so whatever arrives on a key is attributed to the system allowed to write it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from latam_dagster.ingest.topology import ROUTING_PREFIX

DEFAULT_REGISTRY = Path(__file__).resolve().parents[2] / "infra" / "sources" / "sources.yaml"
# the contract's source_system pattern; also a valid RabbitMQ user name
NAME_PATTERN = re.compile(r"[a-z0-9_-]{1,64}")
# a literal routing key: words of the contract's alphabet separated by dots (no * or # wildcard)
KEY_PATTERN = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+")


class RegistryError(ValueError):
    """The registry file cannot be used; the message names the file and each problem."""


class SourceSystem(BaseModel):
    """One source system of the registry."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = Field(min_length=1)
    owner: str = Field(min_length=1)
    event_types: tuple[str, ...] = Field(min_length=1)
    routing_keys: tuple[str, ...] = ()

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"name {value!r} must match [a-z0-9_-]{{1,64}} (the contract's pattern)"
            )
        return value

    @field_validator("event_types")
    @classmethod
    def _event_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for etype in value:
            if etype not in ROUTING_PREFIX:
                known = ", ".join(sorted(ROUTING_PREFIX))
                raise ValueError(f"unknown event type {etype!r} (known: {known})")
        if len(set(value)) != len(value):
            raise ValueError("an event type is listed twice")
        return value

    @model_validator(mode="after")
    def _keys(self) -> SourceSystem:
        prefixes = {ROUTING_PREFIX[e] for e in self.event_types}
        if not self.routing_keys:
            keys = tuple(f"{ROUTING_PREFIX[e]}.{self.name}" for e in self.event_types)
            object.__setattr__(self, "routing_keys", keys)
            return self
        for key in self.routing_keys:
            if not KEY_PATTERN.fullmatch(key):
                raise ValueError(
                    f"routing key {key!r} must be literal dot-separated words of [a-z0-9_-] "
                    "(no * or # wildcard)"
                )
            first, second = key.split(".")[:2]
            if first not in ROUTING_PREFIX.values():
                allowed = ", ".join(sorted(ROUTING_PREFIX.values()))
                raise ValueError(
                    f"routing key {key!r} is outside the topology's prefixes ({allowed})"
                )
            if first not in prefixes:
                raise ValueError(
                    f"routing key {key!r} is for another event type than the system's "
                    f"({', '.join(self.event_types)})"
                )
            if second != self.name:
                raise ValueError(
                    f"routing key {key!r} must name the system as its second word "
                    f"({first}.{self.name}...)"
                )
        if len(set(self.routing_keys)) != len(self.routing_keys):
            raise ValueError("a routing key is listed twice")
        return self

    def write_topic_pattern(self) -> str:
        """The regular expression of the routing keys this system may write (topic permission)."""
        return "^(?:" + "|".join(re.escape(k) for k in self.routing_keys) + ")$"


class Registry(BaseModel):
    """Every source system, by name."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: Literal[1]
    systems: tuple[SourceSystem, ...]

    @field_validator("systems")
    @classmethod
    def _unique(cls, value: tuple[SourceSystem, ...]) -> tuple[SourceSystem, ...]:
        seen: set[str] = set()
        for system in value:
            if system.name in seen:
                raise ValueError(f"duplicate name {system.name!r}")
            seen.add(system.name)
        return value

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.systems]

    def get(self, name: str) -> SourceSystem:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(name)


def _problems(exc: ValidationError, doc: object) -> str:
    lines = []
    for err in exc.errors():
        loc = list(err["loc"])
        where = ".".join(map(str, loc))
        # name the system rather than its index when there is one
        if len(loc) >= 2 and loc[0] == "systems" and isinstance(doc, dict):
            systems = doc.get("systems")
            if isinstance(systems, list) and isinstance(loc[1], int) and loc[1] < len(systems):
                item = systems[loc[1]]
                if isinstance(item, dict) and isinstance(item.get("name"), str):
                    where = f"{where} ({item['name']})"
        lines.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(lines)


def parse_registry(text: str, where: str = "<registry>") -> Registry:
    """Validate registry YAML text; raises RegistryError naming `where` and every problem."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise RegistryError(f"{where}: not valid YAML{at}") from exc
    if not isinstance(doc, dict):
        raise RegistryError(f"{where}: expected a mapping with `version` and `systems`")
    try:
        return Registry.model_validate(doc)
    except ValidationError as exc:
        raise RegistryError(f"{where}: {_problems(exc, doc)}") from None


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and validate the registry file (default: the repository's infra/sources/sources.yaml)."""
    path = Path(path) if path else DEFAULT_REGISTRY
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"{path}: cannot read the source registry ({exc.strerror})") from None
    return parse_registry(text, str(path))
