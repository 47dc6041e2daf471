"""The warehouse (Postgres) as a Dagster resource."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2.extensions
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from latam_dagster import db
from latam_dagster.settings import get_settings


class WarehouseResource(ConfigurableResource):
    """Connection details of the warehouse; `url` defaults to the pipeline role's URL
    (LATAM_PIPELINE_DATABASE_URL, else LATAM_WAREHOUSE_URL as the user latam_pipeline), which
    writes data and changes no schema."""

    url: str = Field(default_factory=lambda: get_settings().pipeline_url)

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Fail the run at its start, with the reason in the UI, when the schema does not match.

        Runs never migrate: `latam migrate` is the deploy step, so a run on an old (or newer)
        warehouse stops here instead of half-working on the wrong tables.
        """
        db.require_schema_as(self.url, get_settings().warehouse_url)

    @contextmanager
    def connection(self) -> Iterator[psycopg2.extensions.connection]:
        """A psycopg2 connection that commits on success and always closes."""
        with db.connection(self.url) as conn:
            yield conn
