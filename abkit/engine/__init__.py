"""The engine stage: one pass over the events on the engine that holds them (Polars,
DuckDB, Spark, SQLFrame through Narwhals) → one row per unit, daily looks and quantile
histograms; only per-unit rows and small summaries come back to Python."""
