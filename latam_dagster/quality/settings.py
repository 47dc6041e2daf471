"""Settings of the data-quality layer, read from the environment with local defaults.

Kept beside the checks rather than in `latam_dagster.settings` so that the quality layer can be
configured (and tested) on its own; the README lists these variables with the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _flag(name: str, default: bool) -> bool:
    return _env(name, "true" if default else "false").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class QualitySettings:
    """Typed view of the quality variables. Field docs double as the README's settings table."""

    quality_dir: str
    """LATAM_QUALITY_DIR: stored GX validation results and the Data Docs build lock."""
    data_docs_dir: str
    """LATAM_QUALITY_DOCS_DIR: the Data Docs HTML site (index.html at its root), served by the API."""
    build_data_docs: bool
    """LATAM_QUALITY_BUILD_DOCS: rebuild Data Docs after every validation (true/false)."""
    docs_retention: int
    """LATAM_QUALITY_DOCS_RETENTION: validation results kept per suite in Data Docs."""
    sample_size: int
    """LATAM_QUALITY_SAMPLE_SIZE: failing rows sampled per failed expectation."""
    history_days: float
    """LATAM_QUALITY_HISTORY_DAYS: days of validation history kept in quality.* (0: forever)."""
    quarantine_max_pct: float
    """LATAM_QUALITY_QUARANTINE_MAX_PCT: highest acceptable share of quarantined messages per queue."""
    quarantine_window_hours: float
    """LATAM_QUALITY_QUARANTINE_WINDOW_HOURS: period the quarantine rate is measured over."""
    reject_max_pct: float
    """LATAM_QUALITY_REJECT_MAX_PCT: highest share of a micro-batch's rows that row rules may hold
    back before the batch is blocked as a whole (percent)."""
    reject_min_rows: int
    """LATAM_QUALITY_REJECT_MIN_ROWS: a batch is blocked by its reject share only when at least
    this many rows are held back, so one bad flight in a batch of 20 does not stop the warehouse."""


def get_quality_settings() -> QualitySettings:
    """Read the quality settings from the environment now."""
    root = _env("LATAM_QUALITY_DIR", str(Path.cwd() / ".latam_quality"))
    return QualitySettings(
        quality_dir=root,
        data_docs_dir=_env("LATAM_QUALITY_DOCS_DIR", str(Path(root) / "data_docs")),
        build_data_docs=_flag("LATAM_QUALITY_BUILD_DOCS", True),
        docs_retention=int(_env("LATAM_QUALITY_DOCS_RETENTION", "50")),
        sample_size=int(_env("LATAM_QUALITY_SAMPLE_SIZE", "20")),
        history_days=float(_env("LATAM_QUALITY_HISTORY_DAYS", "90")),
        quarantine_max_pct=float(_env("LATAM_QUALITY_QUARANTINE_MAX_PCT", "5.0")),
        quarantine_window_hours=float(_env("LATAM_QUALITY_QUARANTINE_WINDOW_HOURS", "24")),
        reject_max_pct=float(_env("LATAM_QUALITY_REJECT_MAX_PCT", "1.0")),
        reject_min_rows=int(_env("LATAM_QUALITY_REJECT_MIN_ROWS", "10")),
    )
