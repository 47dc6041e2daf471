"""Great Expectations 1.x as a Dagster resource (`dagster-ge` only supports GX 0.x).

The resource validates a `TableSuite` against the warehouse through SQL push-down, records the
result in `quality.*`, and refreshes the Data Docs site. GX itself is imported on the first
validation, not when the definitions load.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dagster import ConfigurableResource
from pydantic import Field

from latam_dagster.quality import history
from latam_dagster.quality.outcome import SuiteOutcome
from latam_dagster.settings import get_quality_settings, get_settings
from latam_dagster.tables.rules import Scope, TableSuite


def _setting(name: str, description: str) -> Any:
    """A field that defaults to the quality setting `name`, read when the resource is built."""
    return Field(
        default_factory=lambda: getattr(get_quality_settings(), name), description=description
    )


class GreatExpectationsResource(ConfigurableResource):
    """Where to validate and where results go; every field defaults to its environment setting."""

    warehouse_url: str | None = Field(
        default=None,
        description=(
            "Warehouse to validate. Unset: the asset checks use the `warehouse` resource's URL "
            "(the database the assets wrote), anything else LATAM_WAREHOUSE_URL."
        ),
    )
    quality_dir: str = _setting("quality_dir", "Stored GX validation results (LATAM_QUALITY_DIR).")
    data_docs_dir: str = _setting("data_docs_dir", "Data Docs site (LATAM_QUALITY_DOCS_DIR).")
    build_data_docs: bool = _setting(
        "build_data_docs", "Rebuild Data Docs after each validation (LATAM_QUALITY_BUILD_DOCS)."
    )
    docs_retention: int = _setting(
        "docs_retention", "Validation results kept per suite (LATAM_QUALITY_DOCS_RETENTION)."
    )
    sample_size: int = _setting(
        "sample_size", "Failing rows sampled per failed expectation (LATAM_QUALITY_SAMPLE_SIZE)."
    )
    record_history: bool = Field(
        default=True, description="Store every validation in quality.validation/check_evaluation."
    )
    history_days: float = _setting(
        "history_days",
        "Days of history kept in quality.* (LATAM_QUALITY_HISTORY_DAYS; 0: forever).",
    )

    def url(self, warehouse_url: str | None = None) -> str:
        """The warehouse validated: the caller's, else this resource's, else the setting."""
        return warehouse_url or self.warehouse_url or get_settings().warehouse_url

    def engine(self, warehouse_url: str | None = None):
        """The process's GX engine for this configuration (imports GX on first use)."""
        from latam_dagster.quality.engine import EngineConfig, get_engine

        return get_engine(
            EngineConfig(
                warehouse_url=self.url(warehouse_url),
                quality_dir=self.quality_dir,
                data_docs_dir=self.data_docs_dir,
                sample_size=self.sample_size,
                build_data_docs=self.build_data_docs,
                docs_retention=self.docs_retention,
            )
        )

    def validate(
        self,
        suite: TableSuite,
        scope: Scope | None = None,
        rules: Iterable[str] | None = None,
        run_id: str | None = None,
        warehouse_url: str | None = None,
    ) -> SuiteOutcome:
        """Validate `rules` (default: all) of `suite` over `scope` and record the outcome."""
        outcome = self.engine(warehouse_url).validate(suite, scope, rules, run_id)
        if self.record_history:
            history.record(self.url(warehouse_url), outcome, self.history_days)
        return outcome

    def rebuild_data_docs(self, warehouse_url: str | None = None) -> str:
        """Rebuild the whole Data Docs site; returns the path of its index page."""
        return self.engine(warehouse_url).build_index()
