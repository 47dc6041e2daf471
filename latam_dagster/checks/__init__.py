"""Data-quality checks: GX suites defined in code (`suites`) and the Dagster asset checks built
from them (`asset_checks`). Import `latam_dagster.checks.asset_checks` for the definitions."""
