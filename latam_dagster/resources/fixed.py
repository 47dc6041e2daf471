"""Resources whose every value comes from the code location, never from a run's config.

A Dagster resource is normally configurable per run: the Launchpad (or the GraphQL API behind it)
can set `resources.warehouse.config.url` to any database, and a drain run would then copy every
event there and acknowledge it on the broker. In this platform, where data is read and written
(warehouse and broker URLs, topology names, GX and Data Docs directories, history and retention)
is deployment configuration: it comes from the environment through `latam_dagster.settings`, and
from nowhere else.

`fixed_resources` turns each resource of the code location into a definition configured once,
with the values the code gave it (its environment settings), and an empty config schema. A run
config that sets any field of such a resource fails validation: the launch is refused before a
run exists, with Dagster's own "unexpected config entry" error naming the field.

Op config stays: `full_refresh` and `only_pending` choose what a run does, not where.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import ConfigurableIOManagerFactory, ConfigurableResource, ResourceDefinition


def fixed(resource: Any) -> ResourceDefinition:
    """`resource` with its current values and no run config schema."""
    if isinstance(resource, ConfigurableResource | ConfigurableIOManagerFactory):
        definition = resource.get_resource_definition()
    elif isinstance(resource, ResourceDefinition):
        definition = resource
    else:
        raise TypeError(f"not a resource: {resource!r}")
    # a fixed config, and an empty schema (`{}`) so that any field in a run config is an error;
    # without a schema the run's config would be accepted and silently ignored
    return definition.configured({}, config_schema={})


def fixed_resources(resources: Mapping[str, Any]) -> dict[str, ResourceDefinition]:
    """Every resource of a code location, fixed (see the module docstring)."""
    return {key: fixed(resource) for key, resource in resources.items()}
