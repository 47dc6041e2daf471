"""The SQL transformations behind the curated and mart assets, callable without Dagster.

`curated` runs each curated table's SQL incrementally (watermarks on transaction ids) or as a full
rebuild; `marts` refreshes mart partitions and knows which ones are pending; `full_refresh`
rebuilds everything from raw. The Dagster assets, `latam run-once`, the tests and the benchmark all
go through these functions, so they exercise the same code.
"""
