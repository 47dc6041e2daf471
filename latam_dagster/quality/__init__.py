"""Data quality: validation outcomes, their history in `quality.*`, Data Docs and reports.

Nothing here imports Great Expectations at module load; the GX engine (`quality.engine`) is
imported only when a validation runs, so loading the Dagster definitions stays fast.
"""
